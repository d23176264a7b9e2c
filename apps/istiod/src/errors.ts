/**
 * The typed errors of istiod. Codes are stable API and prefixed `ISTIOD_`.
 *
 * Errors that cross a stream or event boundary travel as values (result objects, NACK counters,
 * log records); these classes are what those values carry.
 */
import { MeshError } from '@ambient-mesh/errors';

/**
 * Flags or environment variables have values istiod cannot use: the runtime's `ConfigError`,
 * thrown with code `ISTIOD_CONFIG_INVALID` and one `problems` line per setting.
 */
export { ConfigError } from '@ambient-mesh/runtime';

/** The xDS node id or metadata sent by a proxy does not follow the Istio node format. */
export class NodeMetadataError extends MeshError {
  constructor(detail: string) {
    super(
      'ISTIOD_NODE_INVALID',
      `invalid xDS node: ${detail}; the id must be "<type>~<ip>~<pod>.<namespace>~<namespace>.svc.<domain>"`,
    );
  }
}

/** A caller could not be authenticated (bad token, wrong namespace, unknown pod, impersonation refused). */
export class AuthenticationError extends MeshError {
  constructor(detail: string, cause?: unknown) {
    super('ISTIOD_UNAUTHENTICATED', `authentication failed: ${detail}`, { cause });
  }
}

/** A certificate request asked for a lifetime above the allowed maximum. */
export class CertificateTtlError extends MeshError {
  constructor(requestedSeconds: number, maxSeconds: number) {
    super(
      'ISTIOD_CERT_TTL_TOO_LONG',
      `requested certificate TTL ${requestedSeconds}s exceeds the maximum ${maxSeconds}s; request a shorter validity_duration`,
    );
  }
}

/** A certificate request could not be signed (bad CSR, CA failure). */
export class CertificateRequestError extends MeshError {
  constructor(detail: string, cause?: unknown) {
    super('ISTIOD_CERT_REQUEST_FAILED', `certificate request failed: ${detail}`, { cause });
  }
}

/** The mesh CA material (cacerts Secret or istio-ca-secret) is missing or unusable. */
export class CaMaterialError extends MeshError {
  constructor(detail: string, cause?: unknown) {
    super(
      'ISTIOD_CA_MATERIAL_INVALID',
      `CA material unusable: ${detail}; check the cacerts / istio-ca-secret Secret`,
      {
        cause,
      },
    );
  }
}

/** The `mesh` key of the `istio` ConfigMap is not a MeshConfig istiod can use. */
export class MeshConfigError extends MeshError {
  constructor(detail: string, cause?: unknown) {
    super('ISTIOD_MESH_CONFIG_INVALID', `invalid mesh config (ConfigMap "istio", key "mesh"): ${detail}`, {
      cause,
    });
  }
}

/** Stable codes of {@link CacertsError}: why a plug-in CA (`cacerts`) was refused. */
export const CacertsErrorCode = {
  /** A required file (`ca-cert.pem`, `ca-key.pem`, `root-cert.pem`) is missing or empty. */
  INCOMPLETE: 'ISTIOD_CACERTS_INCOMPLETE',
  /** `ca-key.pem` is not the private key of `ca-cert.pem`. */
  KEY_MISMATCH: 'ISTIOD_CACERTS_KEY_MISMATCH',
  /** `ca-cert.pem` or a certificate of `cert-chain.pem` is expired or not yet valid. */
  EXPIRED: 'ISTIOD_CACERTS_EXPIRED',
  /** Unparseable PEM, not a CA certificate, or no chain to a root of `root-cert.pem`. */
  INVALID: 'ISTIOD_CACERTS_INVALID',
} as const;
export type CacertsErrorCode = (typeof CacertsErrorCode)[keyof typeof CacertsErrorCode];

/** Plug-in CA material istiod refuses; the CA in use (if any) stays in use. */
export class CacertsError extends MeshError {
  constructor(code: CacertsErrorCode, detail: string, cause?: unknown) {
    super(
      code,
      `plug-in CA (Secret cacerts) refused: ${detail}; fix the Secret (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem)`,
      { cause },
    );
  }
}

/** The external signer of the Kubernetes CSR path did not issue a usable certificate. */
export class ExternalSignerError extends MeshError {
  constructor(detail: string, cause?: unknown) {
    super('ISTIOD_EXTERNAL_SIGNER_FAILED', `Kubernetes CSR signing failed: ${detail}`, { cause });
  }
}
