/**
 * A CreateCertificate server for tests (grpc-js, loopback) backed by spiffe-certs' test CA. It
 * records each call's token and impersonated identity, and can be told to fail.
 */
import * as grpc from '@grpc/grpc-js';
import { SpiffeId } from '@ambient-mesh/spiffe-certs';
import type { CertificateAuthority } from '@ambient-mesh/spiffe-certs';
import { fromStruct, IstioCertificateService } from '@ambient-mesh/xds-types';
import type { ca } from '@ambient-mesh/xds-types';

export interface CaCall {
  readonly authorization: string | undefined;
  readonly clusterId: string | undefined;
  readonly impersonated: string | undefined;
  readonly ttlSeconds: number;
}

export class TestCaServer {
  readonly calls: CaCall[] = [];
  /** When set, calls fail with this status. */
  failWith: grpc.status | undefined;
  readonly #ca: CertificateAuthority;
  readonly #server = new grpc.Server();

  constructor(authority: CertificateAuthority) {
    this.#ca = authority;
  }

  async start(): Promise<string> {
    this.#server.addService(IstioCertificateService, {
      CreateCertificate: (
        call: grpc.ServerUnaryCall<ca.IstioCertificateRequest, ca.IstioCertificateResponseInit>,
        callback: grpc.sendUnaryData<ca.IstioCertificateResponseInit>,
      ) => {
        const meta = fromStruct(call.request.metadata);
        const impersonated =
          typeof meta.ImpersonatedIdentity === 'string' ? meta.ImpersonatedIdentity : undefined;
        const authorization = call.metadata.get('authorization')[0];
        const clusterId = call.metadata.get('clusterid')[0];
        this.calls.push({
          authorization: typeof authorization === 'string' ? authorization : undefined,
          clusterId: typeof clusterId === 'string' ? clusterId : undefined,
          impersonated,
          ttlSeconds: call.request.validityDuration,
        });
        if (this.failWith !== undefined) {
          callback({ code: this.failWith, details: 'request impersonation authentication failure' });
          return;
        }
        if (impersonated === undefined) {
          callback({ code: grpc.status.UNAUTHENTICATED, details: 'no identity' });
          return;
        }
        this.#ca
          .sign({
            csrPem: call.request.csr,
            identity: SpiffeId.parse(impersonated),
            ttlSeconds: call.request.validityDuration,
          })
          .then(
            issued => {
              callback(null, { certChain: [...issued.certChain] });
            },
            (err: unknown) => {
              callback({ code: grpc.status.INVALID_ARGUMENT, details: String(err) });
            },
          );
      },
    });
    const port = await new Promise<number>((resolve, reject) => {
      this.#server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, bound) => {
        if (err) reject(err);
        else resolve(bound);
      });
    });
    return `http://127.0.0.1:${port}`;
  }

  stop(): void {
    this.#server.forceShutdown();
  }
}
