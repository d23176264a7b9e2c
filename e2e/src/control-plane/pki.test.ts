// The cluster PKI, checked by an independent implementation: the openssl CLI verifies each chain
// against the CA, for the purpose each cert is meant for, and prints the extensions it reads.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pki, writeKubeconfig, type CertPair } from './pki.ts';

const exec = promisify(execFile);

async function openssl(...args: string[]): Promise<string> {
  const { stdout } = await exec('openssl', args);
  return stdout;
}

let dir: string;
let pki: Pki;
let apiserver: CertPair;
let kubelet: CertPair;
const clients: Record<string, CertPair> = {};

/** The identities the local cluster gives its components (as control-plane.ts and cluster.ts do). */
const CLIENTS = {
  admin: { commonName: 'admin', organization: 'system:masters' },
  'controller-manager': { commonName: 'system:kube-controller-manager', organization: 'system:masters' },
  scheduler: { commonName: 'system:kube-scheduler' },
  'kubelet-node-a': { commonName: 'system:node:node-a', organization: 'system:nodes' },
  'kube-proxy-node-a': { commonName: 'system:kube-proxy' },
  'apiserver-kubelet-client': { commonName: 'kube-apiserver-kubelet-client', organization: 'system:masters' },
} as const;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'am-pki-'));
  pki = new Pki(join(dir, 'pki'));
  await pki.init();
  apiserver = await pki.serving(
    'apiserver',
    [
      'kubernetes',
      'kubernetes.default',
      'kubernetes.default.svc',
      'kubernetes.default.svc.cluster.local',
      'localhost',
    ],
    ['10.250.0.1', '10.96.0.1', '127.0.0.1'],
  );
  kubelet = await pki.serving('kubelet-serving-node-a', ['node-a'], ['10.250.0.11']);
  for (const [name, id] of Object.entries(CLIENTS)) clients[name] = await pki.client(name, id);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('cluster PKI', () => {
  it('makes a self-signed CA that may sign certificates and nothing else', async () => {
    const text = await openssl('x509', '-in', pki.ca.cert, '-noout', '-text');
    expect(text).toMatch(/Issuer: CN\s*=\s*ambient-mesh-local-ca/);
    expect(text).toMatch(/Subject: CN\s*=\s*ambient-mesh-local-ca/);
    expect(text).toMatch(/Basic Constraints: critical\s+CA:TRUE/);
    expect(text).toMatch(/Key Usage: critical\s+Digital Signature, Certificate Sign, CRL Sign/);
    expect(text).toContain('ASN1 OID: prime256v1');
    expect(await openssl('verify', '-CAfile', pki.ca.cert, pki.ca.cert)).toContain(': OK');
  });

  it('signs the apiserver serving cert for the apiserver address, the service IP and the service names', async () => {
    expect(
      await openssl(
        'verify',
        '-CAfile',
        pki.ca.cert,
        '-purpose',
        'sslserver',
        '-x509_strict',
        apiserver.cert,
      ),
    ).toContain(': OK');
    const text = await openssl('x509', '-in', apiserver.cert, '-noout', '-text');
    expect(text).toMatch(/Subject: CN\s*=\s*kubernetes\n/);
    expect(text).toMatch(/X509v3 Extended Key Usage:\s+TLS Web Server Authentication\n/);
    expect(text).toMatch(/Key Usage: critical\s+Digital Signature, Key Encipherment/);
    expect(text).toMatch(/Basic Constraints: critical\s+CA:FALSE/);
    const san = /Subject Alternative Name:\s*\n\s*(.*)\n/.exec(text)?.[1]?.split(', ');
    expect(san).toEqual([
      'DNS:kubernetes',
      'DNS:kubernetes.default',
      'DNS:kubernetes.default.svc',
      'DNS:kubernetes.default.svc.cluster.local',
      'DNS:localhost',
      'IP Address:10.250.0.1',
      'IP Address:10.96.0.1',
      'IP Address:127.0.0.1',
    ]);
    // The apiserver cert is not a client cert.
    await expect(
      openssl('verify', '-CAfile', pki.ca.cert, '-purpose', 'sslclient', apiserver.cert),
    ).rejects.toThrow();
  });

  it('signs a kubelet serving cert for its node name and address', async () => {
    expect(await openssl('verify', '-CAfile', pki.ca.cert, '-purpose', 'sslserver', kubelet.cert)).toContain(
      ': OK',
    );
    expect(await openssl('x509', '-in', kubelet.cert, '-noout', '-ext', 'subjectAltName')).toContain(
      'DNS:node-a, IP Address:10.250.0.11',
    );
  });

  it('signs client certs whose CN is the user and O the group, usable only as clients', async () => {
    for (const [name, id] of Object.entries(CLIENTS)) {
      const pair = clients[name]!;
      expect(
        await openssl('verify', '-CAfile', pki.ca.cert, '-purpose', 'sslclient', '-x509_strict', pair.cert),
        name,
      ).toContain(': OK');
      await expect(
        openssl('verify', '-CAfile', pki.ca.cert, '-purpose', 'sslserver', pair.cert),
        name,
      ).rejects.toThrow();
      const subject = (
        await openssl('x509', '-in', pair.cert, '-noout', '-subject', '-nameopt', 'RFC2253')
      ).trim();
      const expected =
        'organization' in id
          ? `subject=CN=${id.commonName},O=${id.organization}`
          : `subject=CN=${id.commonName}`;
      expect(subject, name).toBe(expected);
      const text = await openssl('x509', '-in', pair.cert, '-noout', '-text');
      expect(text, name).toMatch(/X509v3 Extended Key Usage:\s+TLS Web Client Authentication\n/);
      expect(text, name).not.toContain('Subject Alternative Name');
    }
  });

  it('writes each key as a P-256 key that matches its cert, readable only by its owner', async () => {
    for (const pair of [apiserver, kubelet, ...Object.values(clients), pki.ca]) {
      expect(await readFile(pair.key, 'utf8')).toMatch(
        /^-----BEGIN PRIVATE KEY-----\n[^\r]+\n-----END PRIVATE KEY-----\n$/,
      );
      expect(await readFile(pair.cert, 'utf8')).toMatch(
        /^-----BEGIN CERTIFICATE-----\n[^\r]+\n-----END CERTIFICATE-----\n$/,
      );
      expect((await stat(pair.key)).mode & 0o777).toBe(0o600);
      const fromKey = await openssl('pkey', '-in', pair.key, '-pubout');
      const fromCert = await openssl('x509', '-in', pair.cert, '-noout', '-pubkey');
      expect(fromKey).toBe(fromCert);
    }
  });

  it('makes a service-account signing key pair whose public half matches the private key', async () => {
    const { key, pub } = pki.serviceAccount;
    expect(await openssl('pkey', '-in', key, '-noout', '-text')).toContain('ASN1 OID: prime256v1');
    expect(await openssl('pkey', '-in', key, '-pubout')).toBe(await readFile(pub, 'utf8'));
    expect((await stat(key)).mode & 0o777).toBe(0o600);
  });

  it('keeps what is on disk: a second init and a second request reuse the files', async () => {
    const caBefore = await readFile(pki.ca.cert, 'utf8');
    const certBefore = await readFile(apiserver.cert, 'utf8');
    const again = new Pki(pki.dir);
    await again.init();
    await again.serving('apiserver', ['other'], []);
    expect(await readFile(again.ca.cert, 'utf8')).toBe(caBefore);
    expect(await readFile(apiserver.cert, 'utf8')).toBe(certBefore);
    // New certs from a reloaded CA still chain to it.
    const late = await again.client('late', { commonName: 'late' });
    expect(await openssl('verify', '-CAfile', again.ca.cert, late.cert)).toContain(': OK');
  });

  it('writes a kubeconfig that embeds the CA and the client pair', async () => {
    const path = join(dir, 'admin.kubeconfig');
    await writeKubeconfig(path, {
      server: 'https://10.250.0.1:6443',
      caFile: pki.ca.cert,
      client: clients.admin!,
      user: 'admin',
      clusterName: 'am-test',
    });
    const doc = JSON.parse(await readFile(path, 'utf8')) as {
      clusters: { cluster: { 'certificate-authority-data': string } }[];
      users: { user: { 'client-certificate-data': string } }[];
    };
    expect(Buffer.from(doc.clusters[0]!.cluster['certificate-authority-data'], 'base64').toString()).toBe(
      await readFile(pki.ca.cert, 'utf8'),
    );
    expect(Buffer.from(doc.users[0]!.user['client-certificate-data'], 'base64').toString()).toBe(
      await readFile(clients.admin!.cert, 'utf8'),
    );
  });
});
