/**
 * The local cluster's PKI, made in-process with `@peculiar/x509` (the library under
 * `@ambient-mesh/spiffe-certs`): one CA that signs the apiserver's serving cert, every client
 * cert (admin, controller-manager, scheduler, kubelets, kube-proxy, the apiserver's kubelet
 * client) and the kubelets' serving certs, plus a separate key pair that signs service-account
 * tokens. All keys are ECDSA P-256 in PKCS#8 PEM; each file is written once and reused.
 *
 * Files under `dir`: `ca.crt`/`ca.key`, `sa.key`/`sa.pub`, `<name>.crt`/`<name>.key`.
 */
import 'reflect-metadata';
import { createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import type { CommandRunner } from '../exec.ts';

// @peculiar/x509 signs through WebCrypto; Node's is the provider (as in @ambient-mesh/spiffe-certs).
x509.cryptoProvider.set(webcrypto);

/** A certificate and key pair on disk (PEM). */
export interface CertPair {
  readonly cert: string;
  readonly key: string;
}

export interface ClientIdentity {
  readonly commonName: string;
  readonly organization?: string | undefined;
}

const EC_KEY = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;
const OID = { commonName: '2.5.4.3', organization: '2.5.4.10' } as const;
const CA_COMMON_NAME = 'ambient-mesh-local-ca';
/** Lifetime of every certificate: a local cluster lives for a test run, not a month. */
const VALIDITY_MS = 30 * 24 * 60 * 60 * 1000;
/** NotBefore is backdated this much, so a cert is valid at once on every clock of the machine. */
const BACKDATE_MS = 60 * 1000;

type KeyPair = webcrypto.CryptoKeyPair;

/** A random positive serial number of 128 bits, in hex. */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return bytes.toString('hex');
}

function validity(now: number): { notBefore: Date; notAfter: Date } {
  const whole = (ms: number): Date => new Date(Math.floor(ms / 1000) * 1000);
  return { notBefore: whole(now - BACKDATE_MS), notAfter: whole(now + VALIDITY_MS) };
}

async function generateKeys(): Promise<KeyPair> {
  return webcrypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify']);
}

async function privateKeyPem(keys: KeyPair): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return x509.PemConverter.encode(der, 'PRIVATE KEY') + '\n';
}

async function publicKeyPem(keys: KeyPair): Promise<string> {
  const der = await webcrypto.subtle.exportKey('spki', keys.publicKey);
  return x509.PemConverter.encode(der, 'PUBLIC KEY') + '\n';
}

/** Loads a PEM private key (PKCS#8 or SEC1) for signing. */
async function importSigningKey(pem: string): Promise<webcrypto.CryptoKey> {
  const der = createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });
  return webcrypto.subtle.importKey('pkcs8', der, EC_KEY, false, ['sign']);
}

function subject(id: ClientIdentity): x509.Name {
  const rdns: x509.JsonName = [];
  if (id.organization !== undefined) rdns.push({ [OID.organization]: [id.organization] });
  rdns.push({ [OID.commonName]: [id.commonName] });
  return new x509.Name(rdns);
}

/** The CA as loaded for signing. */
interface Issuer {
  readonly cert: x509.X509Certificate;
  readonly key: webcrypto.CryptoKey;
}

export class Pki {
  readonly dir: string;
  private issuer: Promise<Issuer> | undefined;

  /**
   * `_run` is no longer used (nothing is shelled out); it is accepted so callers written for the
   * openssl-based PKI keep compiling.
   */
  constructor(dir: string, _run?: CommandRunner) {
    this.dir = dir;
  }

  get ca(): CertPair {
    return { cert: join(this.dir, 'ca.crt'), key: join(this.dir, 'ca.key') };
  }

  /** Service-account signing key (private, PKCS#8) and its public half (SPKI). */
  get serviceAccount(): { key: string; pub: string } {
    return { key: join(this.dir, 'sa.key'), pub: join(this.dir, 'sa.pub') };
  }

  /** Creates the CA and the service-account key pair unless they are already on disk. */
  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    if (!existsSync(this.ca.cert)) {
      const keys = await generateKeys();
      const cert = await x509.X509CertificateGenerator.createSelfSigned({
        serialNumber: serialNumber(),
        name: new x509.Name([{ [OID.commonName]: [CA_COMMON_NAME] }]),
        ...validity(Date.now()),
        keys,
        signingAlgorithm: SIGNING,
        extensions: [
          new x509.BasicConstraintsExtension(true, undefined, true),
          new x509.KeyUsagesExtension(
            x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
            true,
          ),
          await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        ],
      });
      await writeFile(this.ca.key, await privateKeyPem(keys), { mode: 0o600 });
      await writeFile(this.ca.cert, cert.toString('pem') + '\n');
    }
    if (!existsSync(this.serviceAccount.key)) {
      const keys = await generateKeys();
      await writeFile(this.serviceAccount.key, await privateKeyPem(keys), { mode: 0o600 });
      await writeFile(this.serviceAccount.pub, await publicKeyPem(keys));
    }
  }

  /** A serving cert (serverAuth) for the given DNS names and IPs; CN is the first name. */
  async serving(name: string, dnsNames: readonly string[], ips: readonly string[]): Promise<CertPair> {
    return this.issue(name, subject({ commonName: dnsNames[0] ?? ips[0] ?? name }), [
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        ...dnsNames.map(value => ({ type: 'dns' as const, value })),
        ...ips.map(value => ({ type: 'ip' as const, value })),
      ]),
    ]);
  }

  /** A client cert (clientAuth): CN is the user, O the group. */
  async client(name: string, id: ClientIdentity): Promise<CertPair> {
    return this.issue(name, subject(id), [
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
    ]);
  }

  private loadIssuer(): Promise<Issuer> {
    this.issuer ??= (async () => ({
      cert: new x509.X509Certificate(await readFile(this.ca.cert, 'utf8')),
      key: await importSigningKey(await readFile(this.ca.key, 'utf8')),
    }))();
    return this.issuer;
  }

  private async issue(name: string, subjectName: x509.Name, extensions: x509.Extension[]): Promise<CertPair> {
    const pair = { cert: join(this.dir, `${name}.crt`), key: join(this.dir, `${name}.key`) };
    if (existsSync(pair.cert)) return pair;
    const issuer = await this.loadIssuer();
    const keys = await generateKeys();
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serialNumber(),
      subject: subjectName,
      issuer: issuer.cert.subjectName,
      ...validity(Date.now()),
      publicKey: keys.publicKey,
      signingKey: issuer.key,
      signingAlgorithm: SIGNING,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
          true,
        ),
        ...extensions,
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        await x509.AuthorityKeyIdentifierExtension.create(issuer.cert),
      ],
    });
    await writeFile(pair.key, await privateKeyPem(keys), { mode: 0o600 });
    await writeFile(pair.cert, cert.toString('pem') + '\n');
    return pair;
  }
}

/** Writes a kubeconfig with an embedded CA and client cert. */
export async function writeKubeconfig(
  path: string,
  opts: { server: string; caFile: string; client: CertPair; user: string; clusterName: string },
): Promise<void> {
  const b64 = async (p: string): Promise<string> => (await readFile(p)).toString('base64');
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: opts.clusterName,
        cluster: { server: opts.server, 'certificate-authority-data': await b64(opts.caFile) },
      },
    ],
    users: [
      {
        name: opts.user,
        user: {
          'client-certificate-data': await b64(opts.client.cert),
          'client-key-data': await b64(opts.client.key),
        },
      },
    ],
    contexts: [{ name: opts.clusterName, context: { cluster: opts.clusterName, user: opts.user } }],
    'current-context': opts.clusterName,
  };
  await writeFile(path, JSON.stringify(doc, null, 2) + '\n', { mode: 0o600 });
}
