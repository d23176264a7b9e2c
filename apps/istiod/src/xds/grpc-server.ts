/**
 * The TLS gRPC listener on 15012 that carries delta xDS and the CA: TLS 1.3 only, ALPN h2,
 * with istiod's serving certificate (rotatable without restarting the listener).
 */
import * as grpc from '@grpc/grpc-js';
import type { ListenAddress } from '../config.ts';

export interface ServingCredentials {
  readonly certPem: string;
  readonly keyPem: string;
}

/** grpc-js server credentials pinned to TLS 1.3 + ALPN h2, whose certificate can be swapped. */
export class Tls13ServerCredentials extends grpc.ServerCredentials {
  constructor(creds: ServingCredentials) {
    super(
      { requestCert: false, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3', ALPNProtocols: ['h2'] },
      { cert: creds.certPem, key: creds.keyPem, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' },
    );
  }

  /** Serves a new certificate on new connections. */
  rotate(creds: ServingCredentials): void {
    this.updateSecureContextOptions({
      cert: creds.certPem,
      key: creds.keyPem,
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
    });
  }

  _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}

export interface RunningGrpcServer {
  readonly server: grpc.Server;
  readonly port: number;
  readonly credentials: Tls13ServerCredentials;
  /** Graceful shutdown, forced after `graceMs` (long-lived xDS streams never end by themselves). */
  close(graceMs?: number): Promise<void>;
}

/** What istiod may send (a full WDS or waypoint push can be large). */
const MAX_SEND_MESSAGE_BYTES = 200 * 1024 * 1024;
/** Upstream's `ISTIO_GPRC_MAXRECVMSGSIZE` default: requests are small (DeltaDiscoveryRequest, CSR). */
export const DEFAULT_MAX_RECEIVE_MESSAGE_BYTES = 4 * 1024 * 1024;

/** Binds a gRPC server; `register` adds the services before it starts. */
export async function startGrpcServer(options: {
  readonly address: ListenAddress;
  readonly credentials: ServingCredentials;
  readonly register: (server: grpc.Server) => void;
  /**
   * Largest message a client may send; a larger one ends that call with RESOURCE_EXHAUSTED (the
   * connection and every other call go on). Default 4 MiB, as upstream.
   */
  readonly maxReceiveMessageBytes?: number;
}): Promise<RunningGrpcServer> {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': options.maxReceiveMessageBytes ?? DEFAULT_MAX_RECEIVE_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_SEND_MESSAGE_BYTES,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': 10_000,
  });
  options.register(server);
  const credentials = new Tls13ServerCredentials(options.credentials);
  const host = options.address.host.includes(':') ? `[${options.address.host}]` : options.address.host;
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${host}:${options.address.port}`, credentials, (err, bound) => {
      if (err) reject(err);
      else resolve(bound);
    });
  });
  return {
    server,
    port,
    credentials,
    close: (graceMs = 1000) =>
      new Promise<void>(resolve => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        force.unref();
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}
