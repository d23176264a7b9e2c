/**
 * Chooses and loads the mesh CA, in upstream istiod's order:
 * 1. plug-in CA files in `ROOT_CA_DIR` (the mounted `cacerts` Secret);
 * 2. the `cacerts` Secret read through the API (when not mounted);
 * 3. the self-signed root kept in Secret `istio-ca-secret`;
 * 4. otherwise a new self-signed root, stored in `istio-ca-secret` for the next start.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CACERTS_FILES, CertificateAuthority, type CaKeyAlgorithm } from '@ambient-mesh/spiffe-certs';
import { CaMaterialError } from '../errors.ts';
import { cacertsFingerprint, validateCacerts } from './cacerts.ts';
import type { Logger } from '@ambient-mesh/runtime';

export const CA_SECRET_NAME = 'istio-ca-secret';
export const CACERTS_SECRET_NAME = 'cacerts';
export const CA_SECRET_TYPE = 'istio.io/ca-root';

/** Reads and creates Secrets (decoded string data). */
export interface SecretStore {
  read(namespace: string, name: string): Promise<Record<string, string> | undefined>;
  /** Creates the Secret; resolves false when it already exists (another replica won the race). */
  create(namespace: string, name: string, type: string, data: Record<string, string>): Promise<boolean>;
}

export const CaSources = {
  PLUGGED_DIRECTORY: 'cacerts-directory',
  PLUGGED_SECRET: 'cacerts-secret',
  SELF_SIGNED_SECRET: 'istio-ca-secret',
  SELF_SIGNED_NEW: 'self-signed-new',
} as const;
export type CaSource = (typeof CaSources)[keyof typeof CaSources];

export interface MeshCa {
  /** Signs workload certificates and istiod's own serving certificate. */
  readonly ca: CertificateAuthority;
  /** The roots to publish as `root-cert.pem`. */
  readonly rootCertPem: string;
  readonly source: CaSource;
  /** For a plug-in CA: the fingerprint of the files it was loaded from (see `cacertsFingerprint`). */
  readonly cacertsFingerprint?: string;
}

export interface CaBootstrapOptions {
  readonly namespace: string;
  readonly rootCaDir: string;
  readonly trustDomain: string;
  readonly selfSignedTtlSeconds: number;
  readonly defaultTtlSeconds: number;
  readonly maxTtlSeconds: number;
  readonly secrets: SecretStore;
  readonly logger: Logger;
  readonly keyAlgorithm?: CaKeyAlgorithm;
  readonly readFile?: (path: string) => Promise<string>;
}

async function readOptional(read: (p: string) => Promise<string>, path: string): Promise<string | undefined> {
  try {
    return await read(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CaMaterialError(`cannot read ${path}`, err);
  }
}

export async function loadMeshCa(opts: CaBootstrapOptions): Promise<MeshCa> {
  const read = opts.readFile ?? ((p: string) => readFile(p, 'utf8'));
  const caOptions = { defaultTtlSeconds: opts.defaultTtlSeconds, maxTtlSeconds: opts.maxTtlSeconds };
  const plugged = async (files: Record<string, string | undefined>, source: CaSource): Promise<MeshCa> => {
    const result = await validateCacerts(files, { caOptions });
    if (!result.ok) throw result.error;
    return {
      ca: result.ca,
      rootCertPem: result.ca.trustBundle.pem,
      source,
      cacertsFingerprint: cacertsFingerprint(files),
    };
  };

  const dirCert = await readOptional(read, join(opts.rootCaDir, CACERTS_FILES.caCert));
  if (dirCert !== undefined) {
    const files: Record<string, string | undefined> = { [CACERTS_FILES.caCert]: dirCert };
    for (const f of [CACERTS_FILES.caKey, CACERTS_FILES.rootCert, CACERTS_FILES.certChain]) {
      files[f] = await readOptional(read, join(opts.rootCaDir, f));
    }
    opts.logger.info({ dir: opts.rootCaDir }, 'using the plug-in CA from the cacerts directory');
    return plugged(files, CaSources.PLUGGED_DIRECTORY);
  }
  const cacerts = await opts.secrets.read(opts.namespace, CACERTS_SECRET_NAME);
  if (cacerts !== undefined) {
    opts.logger.info('using the plug-in CA from Secret cacerts');
    return plugged(cacerts, CaSources.PLUGGED_SECRET);
  }
  interface KeyAndCert {
    readonly certPem: string;
    readonly keyPem: string;
  }
  const selfSigned = async (keyAndCert: KeyAndCert, source: CaSource): Promise<MeshCa> => {
    const ca = await CertificateAuthority.fromPluggedCerts(
      { caCertPem: keyAndCert.certPem, caKeyPem: keyAndCert.keyPem, rootCertPem: keyAndCert.certPem },
      caOptions,
    );
    return { ca, rootCertPem: ca.trustBundle.pem, source };
  };
  const existing = await opts.secrets.read(opts.namespace, CA_SECRET_NAME);
  const fromSecret = (data: Record<string, string>): KeyAndCert | undefined => {
    const certPem = data[CACERTS_FILES.caCert];
    const keyPem = data[CACERTS_FILES.caKey];
    return certPem && keyPem ? { certPem, keyPem } : undefined;
  };
  if (existing !== undefined) {
    const kc = fromSecret(existing);
    if (kc === undefined)
      throw new CaMaterialError(`Secret ${CA_SECRET_NAME} lacks ca-cert.pem or ca-key.pem`);
    opts.logger.info(`using the self-signed root from Secret ${CA_SECRET_NAME}`);
    return selfSigned(kc, CaSources.SELF_SIGNED_SECRET);
  }
  const root = await CertificateAuthority.createSelfSigned({
    ...caOptions,
    trustDomain: opts.trustDomain,
    rootTtlSeconds: opts.selfSignedTtlSeconds,
    keyAlgorithm: opts.keyAlgorithm ?? 'rsa-2048',
    extractable: true,
  });
  // Upstream's istio-ca-secret layout: the root as ca-cert.pem and root-cert.pem, its key, and
  // empty cert-chain.pem and key.pem.
  const created = await opts.secrets.create(opts.namespace, CA_SECRET_NAME, CA_SECRET_TYPE, {
    ...root.exportCaCerts(),
    'key.pem': '',
  });
  if (!created) {
    // Another replica stored its root first: use that one so the mesh has a single root.
    const raced = await opts.secrets.read(opts.namespace, CA_SECRET_NAME);
    const kc = raced === undefined ? undefined : fromSecret(raced);
    if (kc === undefined) throw new CaMaterialError(`Secret ${CA_SECRET_NAME} exists but cannot be read`);
    return selfSigned(kc, CaSources.SELF_SIGNED_SECRET);
  }
  opts.logger.info(`created a self-signed root and stored it in Secret ${CA_SECRET_NAME}`);
  return { ca: root, rootCertPem: root.trustBundle.pem, source: CaSources.SELF_SIGNED_NEW };
}
