import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CommandRunner } from '../exec.ts';

/** A certificate and key pair on disk (PEM). */
export interface CertPair {
  readonly cert: string;
  readonly key: string;
}

export interface ClientIdentity {
  readonly commonName: string;
  readonly organization?: string;
}

/**
 * The cluster's PKI, made with the openssl CLI: one CA (ECDSA P-256) that signs the apiserver's
 * serving cert, every client cert and the kubelets' serving certs, plus a separate ECDSA key
 * pair that signs service-account tokens.
 */
export class Pki {
  readonly dir: string;
  private readonly run: CommandRunner;

  constructor(dir: string, run: CommandRunner) {
    this.dir = dir;
    this.run = run;
  }

  get ca(): CertPair {
    return { cert: join(this.dir, 'ca.crt'), key: join(this.dir, 'ca.key') };
  }

  /** Service-account signing key (private) and its public half. */
  get serviceAccount(): { key: string; pub: string } {
    return { key: join(this.dir, 'sa.key'), pub: join(this.dir, 'sa.pub') };
  }

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    if (!existsSync(this.ca.cert)) {
      await this.genKey(this.ca.key);
      await this.run([
        'openssl', 'req', '-x509', '-new', '-key', this.ca.key, '-sha256', '-days', '30',
        '-subj', '/CN=ambient-mesh-local-ca', '-out', this.ca.cert,
        '-addext', 'basicConstraints=critical,CA:TRUE',
        '-addext', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
      ]); // prettier-ignore
    }
    if (!existsSync(this.serviceAccount.key)) {
      await this.genKey(this.serviceAccount.key);
      await this.run([
        'openssl',
        'pkey',
        '-in',
        this.serviceAccount.key,
        '-pubout',
        '-out',
        this.serviceAccount.pub,
      ]);
    }
  }

  /** A serving cert for the given DNS names and IPs. */
  async serving(name: string, dnsNames: readonly string[], ips: readonly string[]): Promise<CertPair> {
    const san = [...dnsNames.map(d => `DNS:${d}`), ...ips.map(i => `IP:${i}`)].join(',');
    return this.issue(name, `/CN=${dnsNames[0] ?? ips[0] ?? name}`, [
      `subjectAltName=${san}`,
      'extendedKeyUsage=serverAuth',
    ]);
  }

  /** A client cert: CN is the user, O the group. */
  async client(name: string, id: ClientIdentity): Promise<CertPair> {
    const subject =
      id.organization === undefined ? `/CN=${id.commonName}` : `/O=${id.organization}/CN=${id.commonName}`;
    return this.issue(name, subject, ['extendedKeyUsage=clientAuth']);
  }

  private async issue(name: string, subject: string, extensions: readonly string[]): Promise<CertPair> {
    const pair = { cert: join(this.dir, `${name}.crt`), key: join(this.dir, `${name}.key`) };
    if (existsSync(pair.cert)) return pair;
    const csr = join(this.dir, `${name}.csr`);
    const ext = join(this.dir, `${name}.ext`);
    await this.genKey(pair.key);
    await this.run(['openssl', 'req', '-new', '-key', pair.key, '-subj', subject, '-out', csr]);
    await writeFile(
      ext,
      ['keyUsage=critical,digitalSignature,keyEncipherment', ...extensions].join('\n') + '\n',
    );
    await this.run([
      'openssl', 'x509', '-req', '-in', csr, '-CA', this.ca.cert, '-CAkey', this.ca.key, '-CAcreateserial',
      '-days', '30', '-sha256', '-extfile', ext, '-out', pair.cert,
    ]); // prettier-ignore
    return pair;
  }

  private async genKey(path: string): Promise<void> {
    await this.run([
      'openssl',
      'genpkey',
      '-algorithm',
      'EC',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-out',
      path,
    ]);
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
