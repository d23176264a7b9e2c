/**
 * The waypoint's workload certificate from istiod's CA (docs/waypoint.md#identity): a CSR for
 * `spiffe://<trust domain>/ns/<namespace>/sa/<service account>` sent to
 * `IstioCertificateService/CreateCertificate` with the pod's projected token (audience
 * `istio-ca`), as istio-agent does for upstream's waypoint. The app keeps it in spiffe-certs'
 * `CertificateManager`, which calls this again at half of the certificate's lifetime (`SECRET_TTL`,
 * 24 h by default), retries failures with backoff and keeps the old certificate until it expires.
 */
import type * as grpc from '@grpc/grpc-js';
import { errorMessage } from '@ambient-mesh/errors';
import { SpiffeId, WorkloadCertificate, createWorkloadCsr } from '@ambient-mesh/spiffe-certs';
import { IstioCertificateService } from '@ambient-mesh/xds-types';
import type { ca } from '@ambient-mesh/xds-types';
import { CertificateRequestError } from '../errors.ts';
import { callMetadata } from '@ambient-mesh/xds';
import type { CallIdentity } from '@ambient-mesh/xds';

export interface CaIdentityOptions {
  readonly client: grpc.Client;
  readonly call: CallIdentity;
  readonly identity: SpiffeId;
  readonly ttlSeconds?: number;
  readonly deadlineMs?: number;
}

function createCertificate(
  options: CaIdentityOptions,
  request: ca.IstioCertificateRequestInit,
  signal: AbortSignal | undefined,
): Promise<ca.IstioCertificateResponse> {
  const method = IstioCertificateService.CreateCertificate;
  return new Promise((resolve, reject) => {
    const call = options.client.makeUnaryRequest(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      request,
      callMetadata(options.call),
      { deadline: Date.now() + (options.deadlineMs ?? 10_000) },
      (err, response) => {
        signal?.removeEventListener('abort', onAbort);
        if (err !== null || response === undefined) {
          reject(
            new CertificateRequestError(options.identity.uri, err?.details ?? 'empty response', {
              cause: err,
            }),
          );
        } else resolve(response);
      },
    );
    const onAbort = (): void => {
      call.cancel();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Asks istiod for a certificate of `options.identity`; rejects with `CertificateRequestError`. */
export async function fetchCaCertificate(
  options: CaIdentityOptions,
  signal?: AbortSignal,
): Promise<WorkloadCertificate> {
  const { csrPem, privateKeyPem } = await createWorkloadCsr(options.identity);
  const response = await createCertificate(
    options,
    { csr: csrPem, validityDuration: options.ttlSeconds ?? 24 * 3600, metadata: null },
    signal,
  );
  let certificate: WorkloadCertificate;
  try {
    certificate = WorkloadCertificate.fromCreateCertificateResponse(response.certChain, privateKeyPem);
  } catch (err) {
    throw new CertificateRequestError(options.identity.uri, `unusable response: ${errorMessage(err)}`, {
      cause: err,
    });
  }
  if (!certificate.identity.equals(options.identity)) {
    throw new CertificateRequestError(
      options.identity.uri,
      `istiod issued ${certificate.identity.uri} instead`,
    );
  }
  return certificate;
}

/** The waypoint's SPIFFE ID from its trust domain, namespace and service account. */
export function waypointSpiffeId(trustDomain: string, namespace: string, serviceAccount: string): SpiffeId {
  return SpiffeId.of({ trustDomain, namespace, serviceAccount });
}
