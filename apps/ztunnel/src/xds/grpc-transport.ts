/**
 * gRPC channels to istiod (XDS and CA share the shape, not the channel). `https://` targets use
 * TLS with the root from `XDS_ROOT_CA` / `CA_ROOT_CA`; `http://` targets are plaintext (tests and
 * local development only). Per-call metadata carries the bearer token, re-read on every call,
 * `clusterid`, and the `*_HEADER_*` extras.
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { deltaStreamFactory as adsDeltaStreamFactory, type DeltaStreamFactory } from '@ambient-mesh/xds';
import { TokenUnreadableError } from '../errors.ts';

export interface GrpcTarget {
  /** `https://host:port` or `http://host:port`. */
  readonly address: string;
  /** PEM root for https targets. */
  readonly rootCaPem?: Buffer | undefined;
  /** Alternate name to verify the server certificate against. */
  readonly altHostname?: string | undefined;
}

export interface CallIdentity {
  /** Path of the bearer token, re-read on every call; undefined sends none. */
  readonly tokenPath: string | undefined;
  readonly clusterId: string;
  readonly headers: Readonly<Record<string, string>>;
}

export function createGrpcClient(target: GrpcTarget): grpc.Client {
  const url = new URL(target.address);
  const port = url.port === '' ? (url.protocol === 'https:' ? '443' : '80') : url.port;
  const host = `${url.hostname}:${port}`;
  const options: grpc.ChannelOptions = {
    'grpc.max_receive_message_length': 200 * 1024 * 1024,
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
  };
  if (url.protocol === 'https:') {
    if (target.altHostname !== undefined) options['grpc.ssl_target_name_override'] = target.altHostname;
    return new grpc.Client(host, grpc.credentials.createSsl(target.rootCaPem ?? null), options);
  }
  return new grpc.Client(host, grpc.credentials.createInsecure(), options);
}

/** Builds the metadata of one call; throws `TokenUnreadableError` if the token file is missing. */
export function callMetadata(identity: CallIdentity): grpc.Metadata {
  const metadata = new grpc.Metadata();
  if (identity.tokenPath !== undefined) {
    let token: string;
    try {
      token = readFileSync(identity.tokenPath, 'utf8').trim();
    } catch (err) {
      throw new TokenUnreadableError(identity.tokenPath, { cause: err });
    }
    metadata.set('authorization', `Bearer ${token}`);
  }
  metadata.set('clusterid', identity.clusterId);
  for (const [name, value] of Object.entries(identity.headers)) metadata.set(name, value);
  return metadata;
}

/** Opens a DeltaAggregatedResources stream per call of the returned factory, with fresh metadata. */
export function deltaStreamFactory(client: grpc.Client, identity: CallIdentity): DeltaStreamFactory {
  return adsDeltaStreamFactory(client, () => callMetadata(identity));
}
