/**
 * Validation of plug-in CA material (the `cacerts` Secret, upstream's file names) into a
 * `CertificateAuthority`. A pure decision: returns a tagged result, never throws, so a bad
 * update can be refused while the previous CA keeps signing.
 *
 * Checks, in order, each with its own stable code:
 * - the required files are present (`ISTIOD_CACERTS_INCOMPLETE`);
 * - `ca-cert.pem` and `ca-key.pem` parse and the key is the certificate's (`ISTIOD_CACERTS_KEY_MISMATCH`);
 * - `ca-cert.pem` and every certificate of `cert-chain.pem` are valid now (`ISTIOD_CACERTS_EXPIRED`);
 * - `ca-cert.pem` chains to a root of `root-cert.pem` (`ISTIOD_CACERTS_INVALID` otherwise).
 */
import { X509Certificate, createHash, createPrivateKey, createPublicKey } from 'node:crypto';
import { errorMessage } from '@ambient-mesh/errors';
import {
  CACERTS_FILES,
  CertificateAuthority,
  parseCertificates,
  type CaOptions,
} from '@ambient-mesh/spiffe-certs';
import { CacertsError, CacertsErrorCode } from '../errors.ts';

export interface CacertsValidation {
  /** Time source, ms since the epoch (tests move it). */
  readonly now?: () => number;
  readonly caOptions?: CaOptions;
}

export type CacertsResult =
  | { readonly ok: true; readonly ca: CertificateAuthority }
  | { readonly ok: false; readonly error: CacertsError };

const fail = (code: CacertsErrorCode, detail: string, cause?: unknown): CacertsResult => ({
  ok: false,
  error: new CacertsError(code, detail, cause),
});

function spki(key: ReturnType<typeof createPublicKey>): Buffer {
  return key.export({ type: 'spki', format: 'der' });
}

function outsideValidity(cert: X509Certificate, nowMs: number): string | undefined {
  const from = new Date(cert.validFrom).getTime();
  const to = new Date(cert.validTo).getTime();
  if (nowMs > to) return `${cert.subject.replaceAll('\n', ', ')} expired at ${new Date(to).toISOString()}`;
  if (nowMs < from)
    return `${cert.subject.replaceAll('\n', ', ')} is not valid before ${new Date(from).toISOString()}`;
  return undefined;
}

/** Validates `cacerts` data (file name → PEM) and builds the CA that signs with it. */
export async function validateCacerts(
  files: Readonly<Record<string, string | undefined>>,
  options: CacertsValidation = {},
): Promise<CacertsResult> {
  const caCertPem = files[CACERTS_FILES.caCert];
  const caKeyPem = files[CACERTS_FILES.caKey];
  const rootCertPem = files[CACERTS_FILES.rootCert];
  const missing = [
    [CACERTS_FILES.caCert, caCertPem],
    [CACERTS_FILES.caKey, caKeyPem],
    [CACERTS_FILES.rootCert, rootCertPem],
  ]
    .filter(([, v]) => v === undefined || v.trim() === '')
    .map(([name]) => name);
  if (caCertPem === undefined || caKeyPem === undefined || rootCertPem === undefined || missing.length > 0) {
    return fail(CacertsErrorCode.INCOMPLETE, `missing or empty ${missing.join(', ')}`);
  }
  let signing: X509Certificate;
  try {
    signing = new X509Certificate(caCertPem);
  } catch (err) {
    return fail(CacertsErrorCode.INVALID, `${CACERTS_FILES.caCert} is not a PEM certificate`, err);
  }
  let publicOfKey: Buffer;
  try {
    publicOfKey = spki(createPublicKey(createPrivateKey(caKeyPem)));
  } catch (err) {
    return fail(CacertsErrorCode.INVALID, `${CACERTS_FILES.caKey} is not a PEM private key`, err);
  }
  if (!publicOfKey.equals(spki(signing.publicKey))) {
    return fail(
      CacertsErrorCode.KEY_MISMATCH,
      `${CACERTS_FILES.caKey} is not the private key of ${CACERTS_FILES.caCert}`,
    );
  }
  const chainPem = files[CACERTS_FILES.certChain] ?? '';
  let chain: X509Certificate[];
  try {
    chain = chainPem.trim() === '' ? [] : parseCertificates(chainPem);
  } catch (err) {
    return fail(CacertsErrorCode.INVALID, `${CACERTS_FILES.certChain} does not hold PEM certificates`, err);
  }
  const nowMs = (options.now ?? Date.now)();
  for (const cert of [signing, ...chain]) {
    const problem = outsideValidity(cert, nowMs);
    if (problem !== undefined) return fail(CacertsErrorCode.EXPIRED, problem);
  }
  try {
    const ca = await CertificateAuthority.fromPluggedCerts(
      chainPem.trim() === ''
        ? { caCertPem, caKeyPem, rootCertPem }
        : { caCertPem, caKeyPem, rootCertPem, certChainPem: chainPem },
      options.caOptions ?? {},
    );
    return { ok: true, ca };
  } catch (err) {
    return fail(CacertsErrorCode.INVALID, errorMessage(err), err);
  }
}

/** A SHA-256 of the four files, to skip re-validating an unchanged Secret (no key copy kept). */
export function cacertsFingerprint(files: Readonly<Record<string, string | undefined>>): string {
  const hash = createHash('sha256');
  for (const name of [
    CACERTS_FILES.caCert,
    CACERTS_FILES.caKey,
    CACERTS_FILES.rootCert,
    CACERTS_FILES.certChain,
  ]) {
    hash.update(files[name] ?? '').update('\u0000');
  }
  return hash.digest('hex');
}
