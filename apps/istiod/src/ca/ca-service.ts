/**
 * `istio.v1.auth.IstioCertificateService/CreateCertificate` (docs/protocols.md#ca-api).
 *
 * 1. The caller's bearer token is reviewed (audience `istio-ca`) and must be pod-bound.
 * 2. Without `ImpersonatedIdentity` the certificate is for the caller's own service account.
 * 3. With it, the caller must be in `CA_TRUSTED_NODE_ACCOUNTS`, its pod must exist with the
 *    token's UID and service account, and a pod of the requested identity must run on the
 *    caller pod's node. Every failure is the same opaque `Unauthenticated`.
 * 4. A lifetime above the maximum gets its own `InvalidArgument` error.
 * The SAN is always the decided identity; the CSR's SANs are ignored by the CA.
 */
import type * as grpc from '@grpc/grpc-js';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { errorMessage, isMeshError } from '@ambient-mesh/errors';
import type { CertificateAuthority } from '@ambient-mesh/spiffe-certs';
import { SpiffeId } from '@ambient-mesh/spiffe-certs';
import { fromStruct, IstioCertificateService, type ca } from '@ambient-mesh/xds-types';
import type { TokenReviewer } from '../auth/token-review.ts';
import { authenticateBearer } from '../auth/token-review.ts';
import type { ServiceAccountRef } from '../config.ts';
import { AuthenticationError, CertificateRequestError, CertificateTtlError } from '../errors.ts';
import type { Pod } from '../kube/objects.ts';
import type { Logger } from '@ambient-mesh/runtime';
import type { IstiodMetrics } from '../metrics.ts';

export const IMPERSONATED_IDENTITY = 'ImpersonatedIdentity';
const OPAQUE_IMPERSONATION_FAILURE = 'request impersonation authentication failure';

/** Reads pods for node authorization (an informer cache in production, a fake in tests). */
export interface PodLookup {
  getPod(namespace: string, name: string): Pod | undefined;
  podsOnNode(nodeName: string): Iterable<Pod>;
}

/** A narrow view of the CA: the one call the service needs. */
export type CertificateSigner = Pick<CertificateAuthority, 'sign'>;

export interface CaServiceOptions {
  readonly signer: CertificateSigner;
  readonly reviewer: TokenReviewer;
  readonly audiences: readonly string[];
  readonly trustedNodeAccounts: readonly ServiceAccountRef[];
  readonly pods: PodLookup;
  readonly trustDomain: string;
  readonly maxTtlSeconds: number;
  readonly metrics: IstiodMetrics;
  readonly logger: Logger;
}

export type CreateCertificateResult =
  | { ok: true; certChain: string[]; identity: string }
  | {
      ok: false;
      code: grpc.status;
      error: AuthenticationError | CertificateTtlError | CertificateRequestError;
    };

export class CaService {
  readonly #opts: CaServiceOptions;

  constructor(opts: CaServiceOptions) {
    this.#opts = opts;
  }

  register(server: grpc.Server): void {
    server.addService(IstioCertificateService, {
      CreateCertificate: (
        call: grpc.ServerUnaryCall<ca.IstioCertificateRequest, ca.IstioCertificateResponseInit>,
        callback: grpc.sendUnaryData<ca.IstioCertificateResponseInit>,
      ) => {
        this.createCertificate(call.metadata.get('authorization')[0], call.request).then(
          res => {
            if (res.ok) callback(null, { certChain: res.certChain });
            else callback({ code: res.code, details: res.error.message });
          },
          (err: unknown) => {
            callback({ code: GrpcStatus.INTERNAL, details: `CA failure: ${errorMessage(err)}` });
          },
        );
      },
    });
  }

  /** Decides and signs one request. Never throws for request problems; returns the gRPC status. */
  async createCertificate(
    authorization: unknown,
    request: ca.IstioCertificateRequest,
  ): Promise<CreateCertificateResult> {
    const { metrics, logger } = this.#opts;
    metrics.csrCount.inc();
    const unauthenticated = (detail: string, opaque = false): CreateCertificateResult => {
      metrics.authFailures.inc({ service: 'ca' });
      logger.warn({ reason: detail }, 'certificate request refused');
      return {
        ok: false,
        code: GrpcStatus.UNAUTHENTICATED,
        error: new AuthenticationError(opaque ? OPAQUE_IMPERSONATION_FAILURE : detail),
      };
    };
    const auth = await authenticateBearer(authorization, this.#opts.reviewer, this.#opts.audiences);
    if (!auth.ok) return unauthenticated(auth.error.message);
    const caller = auth.identity;
    if (caller.podName === undefined || caller.podUid === undefined) {
      return unauthenticated('the token is not bound to a pod; use a projected service account token');
    }
    let metadata: Record<string, unknown>;
    try {
      metadata = fromStruct(request.metadata);
    } catch (err) {
      return unauthenticated(`invalid request metadata: ${errorMessage(err)}`);
    }
    const impersonated = metadata[IMPERSONATED_IDENTITY];
    let identity: SpiffeId;
    if (impersonated === undefined || impersonated === '') {
      identity = SpiffeId.of({
        trustDomain: this.#opts.trustDomain,
        namespace: caller.namespace,
        serviceAccount: caller.serviceAccount,
      });
    } else {
      const decided = this.#authorizeImpersonation(caller, impersonated);
      if (!decided.ok) return unauthenticated(decided.reason, true);
      identity = decided.identity;
    }
    const ttl = request.validityDuration;
    if (ttl > this.#opts.maxTtlSeconds) {
      return {
        ok: false,
        code: GrpcStatus.INVALID_ARGUMENT,
        error: new CertificateTtlError(ttl, this.#opts.maxTtlSeconds),
      };
    }
    try {
      const issued = await this.#opts.signer.sign({ csrPem: request.csr, identity, ttlSeconds: ttl });
      metrics.certsIssued.inc();
      return { ok: true, certChain: [...issued.certChain], identity: identity.uri };
    } catch (err) {
      if (isMeshError(err, 'ISTIOD_EXTERNAL_SIGNER_FAILED')) {
        // The external signer (Kubernetes CSR path) is down or refused: the client retries.
        logger.warn({ identity: identity.uri, err: errorMessage(err) }, 'external signer failed');
        return {
          ok: false,
          code: GrpcStatus.UNAVAILABLE,
          error: new CertificateRequestError(errorMessage(err), err),
        };
      }
      if (isMeshError(err, 'SPIFFE_TTL_TOO_LONG')) {
        return {
          ok: false,
          code: GrpcStatus.INVALID_ARGUMENT,
          error: new CertificateTtlError(ttl, this.#opts.maxTtlSeconds),
        };
      }
      return {
        ok: false,
        code: GrpcStatus.INVALID_ARGUMENT,
        error: new CertificateRequestError(errorMessage(err), err),
      };
    }
  }

  #authorizeImpersonation(
    caller: { namespace: string; serviceAccount: string; podName?: string; podUid?: string },
    requested: unknown,
  ): { ok: true; identity: SpiffeId } | { ok: false; reason: string } {
    const trusted = this.#opts.trustedNodeAccounts;
    if (trusted.length === 0) return { ok: false, reason: 'CA_TRUSTED_NODE_ACCOUNTS is empty' };
    if (!trusted.some(t => t.namespace === caller.namespace && t.serviceAccount === caller.serviceAccount)) {
      return {
        ok: false,
        reason: `caller ${caller.namespace}/${caller.serviceAccount} is not a trusted node account`,
      };
    }
    if (typeof requested !== 'string') return { ok: false, reason: 'ImpersonatedIdentity is not a string' };
    const parsed = SpiffeId.tryParse(requested);
    if (!parsed.ok) return { ok: false, reason: `ImpersonatedIdentity is invalid: ${parsed.error.message}` };
    const target = parsed.value;
    if (target.trustDomain !== this.#opts.trustDomain) {
      return { ok: false, reason: `ImpersonatedIdentity trust domain ${target.trustDomain} is not ours` };
    }
    const callerPod = this.#opts.pods.getPod(caller.namespace, caller.podName ?? '');
    if (callerPod === undefined) return { ok: false, reason: `caller pod ${caller.podName} not found` };
    if (callerPod.metadata?.uid !== caller.podUid)
      return { ok: false, reason: 'caller pod UID does not match the token' };
    if ((callerPod.spec?.serviceAccountName ?? 'default') !== caller.serviceAccount) {
      return { ok: false, reason: 'caller pod service account does not match the token' };
    }
    const node = callerPod.spec?.nodeName ?? '';
    if (node === '') return { ok: false, reason: 'caller pod is not scheduled on a node' };
    for (const pod of this.#opts.pods.podsOnNode(node)) {
      if (
        pod.metadata?.namespace === target.namespace &&
        (pod.spec?.serviceAccountName ?? 'default') === target.serviceAccount &&
        pod.spec?.nodeName === node
      ) {
        return { ok: true, identity: target };
      }
    }
    return { ok: false, reason: `no pod of ${target.uri} on node ${node}` };
  }
}
