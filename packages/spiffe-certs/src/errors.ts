import { MeshError } from '@ambient-mesh/errors';

/**
 * Every error of this package. Codes are stable API (see the README's table):
 * `instanceof SpiffeCertsError` catches them all, `err.code` tells them apart.
 */
export class SpiffeCertsError extends MeshError {}

/** `SPIFFE_INVALID_ID`: a string is not a strict `spiffe://<td>/ns/<ns>/sa/<sa>` identity. */
export class InvalidSpiffeIdError extends SpiffeCertsError {
  constructor(detail: string) {
    super(
      'SPIFFE_INVALID_ID',
      `invalid SPIFFE ID: ${detail}; expected spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`,
    );
  }
}

/** `SPIFFE_INVALID_SAN`: the certificate's SAN is missing, ambiguous or carries forbidden bytes. */
export class InvalidSanError extends SpiffeCertsError {
  constructor(detail: string, cause?: unknown) {
    super(
      'SPIFFE_INVALID_SAN',
      `certificate SAN rejected: ${detail}; a workload certificate carries exactly one URI SAN with a SPIFFE ID`,
      { cause },
    );
  }
}

/** `SPIFFE_INVALID_CERT`: PEM/DER that does not parse, or a certificate of the wrong kind. */
export class InvalidCertificateError extends SpiffeCertsError {
  constructor(detail: string, cause?: unknown) {
    super('SPIFFE_INVALID_CERT', `invalid certificate: ${detail}`, { cause });
  }
}

/** `SPIFFE_INVALID_CSR`: a CSR that does not parse or whose signature does not verify. */
export class InvalidCsrError extends SpiffeCertsError {
  constructor(detail: string, cause?: unknown) {
    super('SPIFFE_INVALID_CSR', `invalid CSR: ${detail}; send a PEM PKCS#10 request signed by its own key`, {
      cause,
    });
  }
}

/** `SPIFFE_TTL_TOO_LONG`: the requested certificate lifetime exceeds the CA's maximum. */
export class TtlTooLongError extends SpiffeCertsError {
  readonly requestedSeconds: number;
  readonly maxSeconds: number;

  constructor(requestedSeconds: number, maxSeconds: number) {
    super(
      'SPIFFE_TTL_TOO_LONG',
      `requested TTL ${requestedSeconds}s exceeds the maximum workload certificate TTL ${maxSeconds}s; ask for a shorter validity`,
    );
    this.requestedSeconds = requestedSeconds;
    this.maxSeconds = maxSeconds;
  }
}

/** `SPIFFE_CERT_EXPIRED`: a certificate in the chain is past its NotAfter. */
export class CertificateExpiredError extends SpiffeCertsError {
  readonly notAfter: Date;

  constructor(subject: string, notAfter: Date) {
    super(
      'SPIFFE_CERT_EXPIRED',
      `certificate ${subject} expired at ${notAfter.toISOString()}; check certificate rotation and the clock`,
    );
    this.notAfter = notAfter;
  }
}

/** `SPIFFE_CERT_NOT_YET_VALID`: a certificate in the chain is before its NotBefore. */
export class CertificateNotYetValidError extends SpiffeCertsError {
  readonly notBefore: Date;

  constructor(subject: string, notBefore: Date) {
    super(
      'SPIFFE_CERT_NOT_YET_VALID',
      `certificate ${subject} is not valid before ${notBefore.toISOString()}; check clock skew between peers`,
    );
    this.notBefore = notBefore;
  }
}

/** `SPIFFE_UNTRUSTED_CHAIN`: the chain does not lead to any root of the trust bundle. */
export class UntrustedChainError extends SpiffeCertsError {
  constructor(detail: string) {
    super(
      'SPIFFE_UNTRUSTED_CHAIN',
      `certificate chain is not trusted: ${detail}; check that the peer's CA root is in the trust bundle`,
    );
  }
}

/** `SPIFFE_TRUST_DOMAIN_MISMATCH`: the peer's identity belongs to another trust domain. */
export class TrustDomainMismatchError extends SpiffeCertsError {
  readonly expected: string;
  readonly actual: string;

  constructor(expected: string, actual: string) {
    super(
      'SPIFFE_TRUST_DOMAIN_MISMATCH',
      `peer trust domain "${actual}" is not "${expected}"; check the mesh trust domain configuration`,
    );
    this.expected = expected;
    this.actual = actual;
  }
}

/** `SPIFFE_IDENTITY_MISMATCH`: the peer's identity is not one the caller expected. */
export class IdentityMismatchError extends SpiffeCertsError {
  readonly actual: string;

  constructor(actual: string, expected: readonly string[]) {
    super(
      'SPIFFE_IDENTITY_MISMATCH',
      `peer identity ${actual} is not one of the expected identities [${expected.join(', ')}]; check the destination's service account`,
    );
    this.actual = actual;
  }
}

/** `SPIFFE_NO_PEER_CERT`: the TLS peer presented no certificate. */
export class NoPeerCertificateError extends SpiffeCertsError {
  constructor() {
    super(
      'SPIFFE_NO_PEER_CERT',
      'the TLS peer presented no certificate; mTLS requires a workload certificate',
    );
  }
}

/** `SPIFFE_CA_CONFIG`: the CA's key material is unusable (missing file, key/cert mismatch, not a CA). */
export class CaConfigError extends SpiffeCertsError {
  constructor(detail: string, cause?: unknown) {
    super('SPIFFE_CA_CONFIG', `CA configuration rejected: ${detail}`, { cause });
  }
}

/** `SPIFFE_CERT_UNAVAILABLE`: the certificate cache has no valid certificate for an identity. */
export class CertificateUnavailableError extends SpiffeCertsError {
  constructor(identity: string, cause?: unknown) {
    super(
      'SPIFFE_CERT_UNAVAILABLE',
      `no valid certificate for ${identity}; check that the CA is reachable and authorizes this identity`,
      { cause },
    );
  }
}

/** `SPIFFE_INVALID_SERVING_REQUEST`: a serving certificate request with bad DNS names, IPs or TTL. */
export class InvalidServingRequestError extends SpiffeCertsError {
  constructor(detail: string) {
    super(
      'SPIFFE_INVALID_SERVING_REQUEST',
      `serving certificate request rejected: ${detail}; give at least one DNS name (RFC 1123, optional leading "*.") or IP, and a positive TTL`,
    );
  }
}
