/**
 * The CA client: CSR + `CreateCertificate` against istiod (docs/protocols.md#ca-api, docs/protocols.md#certificates). The bearer token is re-read
 * on every call; in shared (node proxy) mode the request names the workload identity in
 * `metadata.ImpersonatedIdentity`.
 */
import type * as grpc from '@grpc/grpc-js';
import { errorMessage } from '@ambient-mesh/errors';
import { createWorkloadCsr, WorkloadCertificate } from '@ambient-mesh/spiffe-certs';
import type { SpiffeId } from '@ambient-mesh/spiffe-certs';
import { IstioCertificateService, toStruct } from '@ambient-mesh/xds-types';
import type { ca } from '@ambient-mesh/xds-types';
import { callMetadata } from '@ambient-mesh/xds';
import type { CallIdentity } from '@ambient-mesh/xds';
import { CaRequestError } from '../errors.ts';
import { tokenUnreadable } from '../xds/token.ts';

export interface CaClientOptions {
  /** The channel, or a getter for the current one (it may be replaced after a connect timeout). */
  readonly client: grpc.Client | (() => grpc.Client);
  readonly identity: CallIdentity;
  readonly ttlSeconds: number;
  /** Shared mode: ask for the workload's identity with `ImpersonatedIdentity`. */
  readonly impersonate: boolean;
  readonly deadlineMs?: number;
}

export class CaClient {
  readonly #options: CaClientOptions;

  constructor(options: CaClientOptions) {
    this.#options = options;
  }

  /** Fetches a fresh certificate for `identity`; rejects with `CaRequestError`. */
  async fetch(identity: SpiffeId, signal?: AbortSignal): Promise<WorkloadCertificate> {
    const { csrPem, privateKeyPem } = await createWorkloadCsr(identity);
    const request: ca.IstioCertificateRequestInit = {
      csr: csrPem,
      validityDuration: this.#options.ttlSeconds,
      metadata: this.#options.impersonate ? toStruct({ ImpersonatedIdentity: identity.uri }) : null,
    };
    const response = await this.#call(request, signal);
    try {
      const certificate = WorkloadCertificate.fromCreateCertificateResponse(
        response.certChain,
        privateKeyPem,
      );
      if (!certificate.identity.equals(identity)) {
        throw new Error(`istiod issued ${certificate.identity.uri}, not the requested ${identity.uri}`);
      }
      return certificate;
    } catch (err) {
      throw new CaRequestError(`unusable response for ${identity.uri}: ${errorMessage(err)}`, { cause: err });
    }
  }

  #call(
    request: ca.IstioCertificateRequestInit,
    signal: AbortSignal | undefined,
  ): Promise<ca.IstioCertificateResponse> {
    const method = IstioCertificateService.CreateCertificate;
    const metadata = callMetadata({ tokenError: tokenUnreadable, ...this.#options.identity });
    return new Promise((resolve, reject) => {
      const { client } = this.#options;
      const call = (typeof client === 'function' ? client() : client).makeUnaryRequest(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        request,
        metadata,
        { deadline: Date.now() + (this.#options.deadlineMs ?? 10_000) },
        (err, response) => {
          signal?.removeEventListener('abort', onAbort);
          if (err !== null || response === undefined) {
            reject(new CaRequestError(err?.details ?? 'empty response', { cause: err }));
          } else {
            resolve(response);
          }
        },
      );
      const onAbort = (): void => {
        call.cancel();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}
