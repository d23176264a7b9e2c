// Identity
export { SpiffeId, DEFAULT_TRUST_DOMAIN } from './spiffe-id.ts';
export type { SpiffeIdParts } from './spiffe-id.ts';
export { readSubjectAltNames, spiffeIdFromCertificateDer } from './san.ts';
export type { SubjectAltNames } from './san.ts';

// Keys and CSRs
export {
  generateWorkloadKeyPair,
  createWorkloadCsr,
  parseWorkloadCsr,
  WORKLOAD_KEY_ALGORITHM,
} from './csr.ts';
export type { WorkloadKeyPair, WorkloadCsr, ParsedCsr } from './csr.ts';

// CA
export { CertificateAuthority, CA_DEFAULTS, CACERTS_FILES } from './certificate-authority.ts';
export type {
  CaOptions,
  SelfSignedCaOptions,
  PluggedCaCerts,
  SignRequest,
  IssuedCertificate,
  CacertsData,
  ServingCertificateRequest,
  ServingCertificate,
} from './certificate-authority.ts';
export { CA_KEY_ALGORITHMS } from './ca-key-algorithm.ts';
export type { CaKeyAlgorithm } from './ca-key-algorithm.ts';

// Certificates, bundles and verification
export { splitPemCertificates, parseCertificates, derToPem } from './pem.ts';
export type { CertificateInput } from './pem.ts';
export { TrustBundle } from './trust-bundle.ts';
export { verifyPeerChain, MAX_CHAIN_DEPTH } from './verify.ts';
export type { PeerVerificationPolicy, VerifyResult } from './verify.ts';

// node:tls helpers
export {
  buildSecureContextOptions,
  clientTlsOptions,
  serverTlsOptions,
  createCheckServerIdentity,
  verifyTlsPeer,
  withPeerVerification,
  peerChainDer,
} from './tls.ts';
export type { TlsCredentials, ClientPeerPolicy, ServerPeerPolicy } from './tls.ts';

// Rotation
export { CertificateCache, BACKOFF_DEFAULTS } from './certificate-cache.ts';
export { WorkloadCertificate } from './workload-certificate.ts';
export { CertificateManager, certificateDump } from './certificate-manager.ts';
export type {
  CertDumpEntry,
  CertificateDump,
  CertificateHealth,
  CertificateListener,
  CertificateManagerOptions,
} from './certificate-manager.ts';
export type {
  CertificateCacheOptions,
  CertificateCacheEvents,
  CertificateFetcher,
  BackoffOptions,
} from './certificate-cache.ts';
export { systemClock } from './clock.ts';
export type { Clock, TimerHandle } from './clock.ts';

// Errors
export {
  SpiffeCertsError,
  InvalidSpiffeIdError,
  InvalidSanError,
  InvalidCertificateError,
  InvalidCsrError,
  TtlTooLongError,
  CertificateExpiredError,
  CertificateNotYetValidError,
  UntrustedChainError,
  TrustDomainMismatchError,
  IdentityMismatchError,
  NoPeerCertificateError,
  CaConfigError,
  CertificateUnavailableError,
  InvalidServingRequestError,
} from './errors.ts';
