import {
  randomBytes,
  X509Certificate,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  type webcrypto as WebCrypto,
} from 'node:crypto';
import { CaConfigError } from './errors.ts';
import { derToPem } from './pem.ts';
import type { CaKeyAlgorithm } from './ca-key-algorithm.ts';
import { webcrypto, x509 } from './x509-provider.ts';

/** WebCrypto parameters for generating, importing and signing with each supported CA key. */
interface AlgorithmParams {
  readonly generate: WebCrypto.RsaHashedKeyGenParams | WebCrypto.EcKeyGenParams;
  readonly import: WebCrypto.RsaHashedImportParams | WebCrypto.EcKeyImportParams;
  readonly sign: WebCrypto.Algorithm | WebCrypto.EcdsaParams;
}

const RSA_PARAMS: AlgorithmParams = {
  generate: {
    name: 'RSASSA-PKCS1-v1_5',
    modulusLength: 2048,
    publicExponent: new Uint8Array([1, 0, 1]),
    hash: 'SHA-256',
  },
  import: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
  sign: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
};

function ecParams(curve: 'P-256' | 'P-384'): AlgorithmParams {
  const hash = curve === 'P-256' ? 'SHA-256' : 'SHA-384';
  return {
    generate: { name: 'ECDSA', namedCurve: curve },
    import: { name: 'ECDSA', namedCurve: curve },
    sign: { name: 'ECDSA', hash },
  };
}

/**
 * A CA certificate with its private key, ready to sign. Internal: built by
 * `CertificateAuthority` and the `testing` entry.
 */
export interface Signer {
  /** The issuing certificate, parsed both ways. */
  readonly cert: x509.X509Certificate;
  readonly nodeCert: X509Certificate;
  readonly key: WebCrypto.CryptoKey;
  readonly signingAlgorithm: WebCrypto.Algorithm | WebCrypto.EcdsaParams;
  /** Hex key identifier to put in the AuthorityKeyIdentifier of issued certificates. */
  readonly keyId: string;
}

/** A random positive 128-bit serial number in hex (as Istio's Go CA uses). */
export function randomSerialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return bytes.toString('hex');
}

/** Truncates to whole seconds, the precision of X.509 validity times. */
export function wholeSeconds(ms: number): Date {
  return new Date(Math.floor(ms / 1000) * 1000);
}

async function keyIdOf(cert: x509.X509Certificate): Promise<string> {
  const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension);
  if (ski !== null) return ski.keyId;
  return (await x509.SubjectKeyIdentifierExtension.create(cert.publicKey)).keyId;
}

async function signerFrom(
  cert: x509.X509Certificate,
  key: WebCrypto.CryptoKey,
  params: AlgorithmParams,
): Promise<Signer> {
  return {
    cert,
    nodeCert: new X509Certificate(Buffer.from(cert.rawData)),
    key,
    signingAlgorithm: params.sign,
    keyId: await keyIdOf(cert),
  };
}

export interface SelfSignedRootOptions {
  readonly keyAlgorithm: CaKeyAlgorithm;
  /** Subject organization; Istio uses the trust domain. */
  readonly organization: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** Creates a self-signed root CA (BasicConstraints CA, KeyUsage keyCertSign|cRLSign). */
export async function createSelfSignedRoot(options: SelfSignedRootOptions): Promise<Signer> {
  return (await generateSelfSignedRoot(options, false)).signer;
}

/**
 * {@link createSelfSignedRoot} with a key that can be exported: also returns the PKCS#8 PEM of
 * the private key, so the root can be persisted (istiod keeps it in Secret `istio-ca-secret`).
 */
export async function createExportableSelfSignedRoot(
  options: SelfSignedRootOptions,
): Promise<{ readonly signer: Signer; readonly privateKeyPem: string }> {
  const { signer, privateKeyPem } = await generateSelfSignedRoot(options, true);
  return { signer, privateKeyPem: privateKeyPem! };
}

async function generateSelfSignedRoot(
  options: SelfSignedRootOptions,
  extractable: boolean,
): Promise<{ readonly signer: Signer; readonly privateKeyPem: string | undefined }> {
  const params = options.keyAlgorithm === 'rsa-2048' ? RSA_PARAMS : ecParams('P-256');
  const keys = await webcrypto.subtle.generateKey(params.generate, extractable, ['sign', 'verify']);
  const name = new x509.Name([{ '2.5.4.10': [options.organization] }]);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerialNumber(),
    subject: name,
    issuer: name,
    notBefore: options.notBefore,
    notAfter: options.notAfter,
    publicKey: keys.publicKey,
    signingKey: keys.privateKey,
    signingAlgorithm: params.sign,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const privateKeyPem = extractable
    ? derToPem(new Uint8Array(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)), 'PRIVATE KEY')
    : undefined;
  return { signer: await signerFrom(cert, keys.privateKey, params), privateKeyPem };
}

/** Issues an intermediate CA certificate signed by `parent` (for plug-in CA set-ups and tests). */
export async function createIntermediate(
  parent: Signer,
  options: SelfSignedRootOptions,
): Promise<{ readonly signer: Signer; readonly privateKeyPem: string }> {
  const params = options.keyAlgorithm === 'rsa-2048' ? RSA_PARAMS : ecParams('P-256');
  const keys = await webcrypto.subtle.generateKey(params.generate, true, ['sign', 'verify']);
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerialNumber(),
    subject: new x509.Name([{ '2.5.4.10': [options.organization] }, { '2.5.4.3': ['Intermediate CA'] }]),
    issuer: parent.cert.subjectName,
    notBefore: options.notBefore,
    notAfter: options.notAfter,
    publicKey: keys.publicKey,
    signingKey: parent.key,
    signingAlgorithm: parent.signingAlgorithm,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      new x509.AuthorityKeyIdentifierExtension(parent.keyId),
    ],
  });
  return {
    signer: await signerFrom(cert, keys.privateKey, params),
    privateKeyPem: derToPem(new Uint8Array(pkcs8), 'PRIVATE KEY'),
  };
}

/** The DER SubjectPublicKeyInfo of a key, for comparing keys. */
export function spkiDer(key: KeyObject): Buffer {
  return key.export({ type: 'spki', format: 'der' });
}

/**
 * Loads a CA certificate and its PEM private key (PKCS#1, SEC1 or PKCS#8; RSA or ECDSA
 * P-256/P-384). Throws {@link CaConfigError} when the key does not match the certificate or the
 * certificate cannot sign certificates.
 */
export async function loadSigner(caCertPem: string, caKeyPem: string): Promise<Signer> {
  let cert: x509.X509Certificate;
  let nodeCert: X509Certificate;
  try {
    cert = new x509.X509Certificate(caCertPem);
    nodeCert = new X509Certificate(Buffer.from(cert.rawData));
  } catch (err) {
    throw new CaConfigError('ca-cert.pem is not a PEM certificate', err);
  }
  if (!nodeCert.ca)
    throw new CaConfigError('ca-cert.pem is not a CA certificate (BasicConstraints CA=false)');
  const keyUsage = cert.getExtension(x509.KeyUsagesExtension);
  if (keyUsage !== null && (keyUsage.usages & x509.KeyUsageFlags.keyCertSign) === 0) {
    throw new CaConfigError('ca-cert.pem lacks the keyCertSign key usage');
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(caKeyPem);
  } catch (err) {
    throw new CaConfigError('ca-key.pem is not a PEM private key', err);
  }
  if (!spkiDer(createPublicKey(privateKey)).equals(spkiDer(nodeCert.publicKey))) {
    throw new CaConfigError('ca-key.pem does not match the public key of ca-cert.pem');
  }
  const params = paramsForKey(privateKey);
  const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
  const key = await webcrypto.subtle.importKey('pkcs8', pkcs8, params.import, false, ['sign']);
  return signerFrom(cert, key, params);
}

function paramsForKey(key: KeyObject): AlgorithmParams {
  if (key.asymmetricKeyType === 'rsa') return RSA_PARAMS;
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1') return ecParams('P-256');
    if (curve === 'secp384r1') return ecParams('P-384');
    throw new CaConfigError(`unsupported EC curve ${curve ?? 'unknown'} for the CA key; use P-256 or P-384`);
  }
  throw new CaConfigError(`unsupported CA key type ${key.asymmetricKeyType ?? 'unknown'}; use RSA or ECDSA`);
}

export interface LeafParams {
  /** The SAN URI, written byte for byte (tests use this to mint malformed SANs). */
  readonly uri: string;
  readonly publicKey: x509.PublicKey | WebCrypto.CryptoKey | KeyObject;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/**
 * Signs a workload leaf as istiod does (docs/protocols.md#certificates): empty subject, critical SAN with one URI,
 * KeyUsage digitalSignature|keyEncipherment (critical), ExtKeyUsage serverAuth+clientAuth,
 * BasicConstraints CA=false (critical), AuthorityKeyIdentifier of the issuer.
 */
export async function signLeaf(signer: Signer, leaf: LeafParams): Promise<X509Certificate> {
  return issueLeaf(signer, leaf.publicKey, leaf.notBefore, leaf.notAfter, [{ type: 'url', value: leaf.uri }]);
}

/**
 * The one leaf profile this CA issues, for workload and serving certificates alike: empty subject,
 * critical SAN, KeyUsage digitalSignature|keyEncipherment (critical), ExtKeyUsage
 * serverAuth+clientAuth, BasicConstraints CA=false (critical), AuthorityKeyIdentifier of the issuer.
 */
function isKeyObject(key: x509.PublicKey | WebCrypto.CryptoKey | KeyObject): key is KeyObject {
  return 'asymmetricKeyType' in key;
}

async function issueLeaf(
  signer: Signer,
  publicKey: x509.PublicKey | WebCrypto.CryptoKey | KeyObject,
  notBefore: Date,
  notAfter: Date,
  sans: x509.JsonGeneralNames,
): Promise<X509Certificate> {
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerialNumber(),
    subject: new x509.Name([]),
    issuer: signer.cert.subjectName,
    notBefore,
    notAfter,
    publicKey: isKeyObject(publicKey)
      ? new x509.PublicKey(publicKey.export({ type: 'spki', format: 'der' }))
      : publicKey,
    signingKey: signer.key,
    signingAlgorithm: signer.signingAlgorithm,
    extensions: [
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
        true,
      ),
      new x509.ExtendedKeyUsageExtension([
        x509.ExtendedKeyUsage.serverAuth,
        x509.ExtendedKeyUsage.clientAuth,
      ]),
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.AuthorityKeyIdentifierExtension(signer.keyId),
      new x509.SubjectAlternativeNameExtension(sans, true),
    ],
  });
  return new X509Certificate(Buffer.from(cert.rawData));
}

export interface ServingLeafParams {
  /** DNS names for the SAN extension (already validated by the caller). */
  readonly dnsNames: readonly string[];
  /** IP addresses (text form) for the SAN extension. */
  readonly ipAddresses: readonly string[];
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/**
 * Signs a TLS serving certificate with a fresh ECDSA P-256 key: empty subject, critical SAN with
 * the DNS names and IPs, KeyUsage digitalSignature|keyEncipherment (critical), ExtKeyUsage
 * serverAuth+clientAuth, BasicConstraints CA=false (critical), AuthorityKeyIdentifier of the
 * issuer. This is the shape istiod's own certificate for `istiod.<ns>.svc` has.
 */
export async function signServingLeaf(
  signer: Signer,
  leaf: ServingLeafParams,
): Promise<{ readonly cert: X509Certificate; readonly privateKeyPem: string }> {
  const params = ecParams('P-256');
  const keys = await webcrypto.subtle.generateKey(params.generate, true, ['sign', 'verify']);
  const cert = await issueLeaf(signer, keys.publicKey, leaf.notBefore, leaf.notAfter, [
    ...leaf.dnsNames.map(value => ({ type: 'dns' as const, value })),
    ...leaf.ipAddresses.map(value => ({ type: 'ip' as const, value })),
  ]);
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return {
    cert,
    privateKeyPem: derToPem(new Uint8Array(pkcs8), 'PRIVATE KEY'),
  };
}
