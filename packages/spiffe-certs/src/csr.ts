import { createPublicKey } from 'node:crypto';
import type { KeyObject, webcrypto as WebCrypto } from 'node:crypto';
import { InvalidCsrError } from './errors.ts';
import { derToPem } from './pem.ts';
import type { SpiffeId } from './spiffe-id.ts';
import { webcrypto, x509 } from './x509-provider.ts';

/** ECDSA P-256 with SHA-256: the key and signature algorithm of a ztunnel workload CSR (docs/protocols.md#certificates). */
export const WORKLOAD_KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface WorkloadKeyPair {
  readonly publicKey: WebCrypto.CryptoKey;
  readonly privateKey: WebCrypto.CryptoKey;
  /** The private key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), as ztunnel keeps it. */
  readonly privateKeyPem: string;
}

/** Generates a fresh ECDSA P-256 key pair for a workload certificate. */
export async function generateWorkloadKeyPair(): Promise<WorkloadKeyPair> {
  const keys = await webcrypto.subtle.generateKey(WORKLOAD_KEY_ALGORITHM, true, ['sign', 'verify']);
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return {
    publicKey: keys.publicKey,
    privateKey: keys.privateKey,
    privateKeyPem: derToPem(new Uint8Array(pkcs8), 'PRIVATE KEY'),
  };
}

export interface WorkloadCsr {
  /** The PKCS#10 request as PEM. */
  readonly csrPem: string;
  /** The key the CSR was signed with, as PKCS#8 PEM; keep it to use the issued certificate. */
  readonly privateKeyPem: string;
}

/**
 * Creates a workload CSR as ztunnel does: an empty subject and a critical SAN extension holding
 * exactly one URI, the SPIFFE ID. Pass `keyPair` to reuse a key; otherwise a new one is made.
 */
export async function createWorkloadCsr(identity: SpiffeId, keyPair?: WorkloadKeyPair): Promise<WorkloadCsr> {
  const keys = keyPair ?? (await generateWorkloadKeyPair());
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys: { publicKey: keys.publicKey, privateKey: keys.privateKey },
    signingAlgorithm: WORKLOAD_KEY_ALGORITHM,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: identity.uri }], true)],
  });
  return { csrPem: csr.toString('pem') + '\n', privateKeyPem: keys.privateKeyPem };
}

export interface ParsedCsr {
  /** The requester's public key (its SubjectPublicKeyInfo), as node:crypto's KeyObject. */
  readonly publicKey: KeyObject;
  /** URI SANs the requester asked for. Informational only: a CA never copies them. */
  readonly requestedUris: readonly string[];
  /** SANs of every other type (DNS, IP, email, ...), as `type:value`. Informational, like `requestedUris`. */
  readonly requestedOtherNames: readonly string[];
}

/** Bounds the accepted CSR size; a P-256 or RSA-4096 request is far below it. */
const MAX_CSR_PEM_LENGTH = 64 * 1024;

/**
 * Parses a PEM CSR and checks its self-signature (proof of possession of the key).
 * Throws {@link InvalidCsrError}.
 */
export async function parseWorkloadCsr(csrPem: string): Promise<ParsedCsr> {
  if (csrPem.length > MAX_CSR_PEM_LENGTH)
    throw new InvalidCsrError(`larger than ${MAX_CSR_PEM_LENGTH} bytes`);
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(csrPem);
  } catch (err) {
    throw new InvalidCsrError('cannot parse the PEM PKCS#10 request', err);
  }
  let valid: boolean;
  try {
    valid = await csr.verify();
  } catch (err) {
    throw new InvalidCsrError('cannot check the request signature (unsupported key or algorithm?)', err);
  }
  if (!valid) throw new InvalidCsrError('the request signature does not verify');
  // On a parsed CSR the typed lookup returns null; the OID lookup works (platform notes §6).
  const sanExtension = csr.getExtension('2.5.29.17');
  const sanNames =
    sanExtension === null ? [] : new x509.SubjectAlternativeNameExtension(sanExtension.rawData).names.items;
  const requestedUris = sanNames.filter(n => n.type === 'url').map(n => n.value);
  const requestedOtherNames = sanNames.filter(n => n.type !== 'url').map(n => `${n.type}:${n.value}`);
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: 'der', type: 'spki' });
  } catch (err) {
    throw new InvalidCsrError('cannot read the request public key', err);
  }
  return { publicKey, requestedUris, requestedOtherNames };
}
