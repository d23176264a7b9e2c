import { describe, expect, it } from 'vitest';
import { X509Certificate } from 'node:crypto';
import { createWorkloadCsr, SpiffeId } from '@ambient-mesh/spiffe-certs';
import { createTestPluggedCerts } from '@ambient-mesh/spiffe-certs/testing';
import { silentLogger } from '@ambient-mesh/runtime';
import { CA_SECRET_NAME, CaSources, loadMeshCa, type SecretStore } from './ca-bootstrap.ts';
import { RootCertPublisher, type ConfigMapStore } from './root-cert-publisher.ts';

function memorySecrets(
  initial: Record<string, Record<string, string>> = {},
): SecretStore & { data: typeof initial } {
  const data = { ...initial };
  return {
    data,
    read: (ns, name) => Promise.resolve(data[`${ns}/${name}`]),
    create: (ns, name, _type, d) => {
      if (data[`${ns}/${name}`] !== undefined) return Promise.resolve(false);
      data[`${ns}/${name}`] = d;
      return Promise.resolve(true);
    },
  };
}

const noFiles = (p: string): Promise<string> =>
  Promise.reject(Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' }));

const base = {
  namespace: 'istio-system',
  rootCaDir: '/cacerts',
  trustDomain: 'cluster.local',
  selfSignedTtlSeconds: 86_400,
  defaultTtlSeconds: 86_400,
  maxTtlSeconds: 90 * 86_400,
  logger: silentLogger(),
  keyAlgorithm: 'ecdsa-p256' as const,
  readFile: noFiles,
};

describe('loadMeshCa', () => {
  it('creates a self-signed root once, stores it in istio-ca-secret and reuses it on restart', async () => {
    const secrets = memorySecrets();
    const first = await loadMeshCa({ ...base, secrets });
    expect(first.source).toBe(CaSources.SELF_SIGNED_NEW);
    const stored = secrets.data[`istio-system/${CA_SECRET_NAME}`];
    expect(stored?.['ca-key.pem']).toContain('PRIVATE KEY');
    // Upstream's layout: the root is both ca-cert.pem and root-cert.pem; cert-chain.pem and key.pem empty.
    expect(stored?.['root-cert.pem']).toBe(stored?.['ca-cert.pem']);
    expect(stored?.['cert-chain.pem']).toBe('');
    expect(stored?.['key.pem']).toBe('');
    const second = await loadMeshCa({ ...base, secrets });
    expect(second.source).toBe(CaSources.SELF_SIGNED_SECRET);
    expect(second.rootCertPem).toBe(first.rootCertPem);
    const csr = await createWorkloadCsr(SpiffeId.parse('spiffe://cluster.local/ns/a/sa/b'));
    const issued = await second.ca.sign({
      csrPem: csr.csrPem,
      identity: SpiffeId.parse('spiffe://cluster.local/ns/a/sa/b'),
    });
    expect(new X509Certificate(issued.leafPem).verify(new X509Certificate(first.rootCertPem).publicKey)).toBe(
      true,
    );
  });

  it('prefers the plug-in CA from the cacerts directory, then the cacerts Secret', async () => {
    const plugged = await createTestPluggedCerts({ intermediate: true });
    const files: Record<string, string> = {
      '/cacerts/ca-cert.pem': plugged.caCertPem,
      '/cacerts/ca-key.pem': plugged.caKeyPem,
      '/cacerts/root-cert.pem': plugged.rootCertPem,
    };
    const readFile = (p: string): Promise<string> =>
      files[p] !== undefined ? Promise.resolve(files[p]) : noFiles(p);
    const fromDir = await loadMeshCa({ ...base, secrets: memorySecrets(), readFile });
    expect(fromDir.source).toBe(CaSources.PLUGGED_DIRECTORY);
    expect(fromDir.rootCertPem).toContain(plugged.rootCertPem.trim().split('\n')[1]);
    expect(fromDir.ca.intermediatesPem).not.toEqual([]);
    const fromSecret = await loadMeshCa({
      ...base,
      secrets: memorySecrets({
        'istio-system/cacerts': {
          'ca-cert.pem': plugged.caCertPem,
          'ca-key.pem': plugged.caKeyPem,
          'root-cert.pem': plugged.rootCertPem,
        },
      }),
    });
    expect(fromSecret.source).toBe(CaSources.PLUGGED_SECRET);
    // The serving certificate chains to the plug-in root through the intermediate.
    const serving = await fromSecret.ca.signServingCertificate({
      dnsNames: ['istiod.istio-system.svc'],
      ttlSeconds: 60,
    });
    expect(serving.certChainPem).toBe(serving.certPem + fromSecret.ca.intermediatesPem.join(''));
    const leaf = new X509Certificate(serving.certPem);
    expect(leaf.subjectAltName).toBe('DNS:istiod.istio-system.svc');
    expect(leaf.verify(new X509Certificate(plugged.caCertPem).publicKey)).toBe(true);
  });

  it('names the missing file of an incomplete cacerts Secret', async () => {
    const secrets = memorySecrets({ 'istio-system/cacerts': { 'ca-cert.pem': 'x' } });
    await expect(loadMeshCa({ ...base, secrets })).rejects.toThrow(/ca-key.pem/);
  });
});

describe('RootCertPublisher', () => {
  it('creates, leaves alone and updates istio-ca-root-cert', async () => {
    const maps = new Map<string, Record<string, string>>();
    const store: ConfigMapStore = {
      read: (ns, name) => Promise.resolve(maps.get(`${ns}/${name}`)),
      create: (ns, name, data) => {
        maps.set(`${ns}/${name}`, data);
        return Promise.resolve();
      },
      replace: (ns, name, data) => {
        maps.set(`${ns}/${name}`, data);
        return Promise.resolve();
      },
    };
    const pub = new RootCertPublisher(store, 'ROOT-A', silentLogger());
    expect(await pub.publish('apps')).toBe('created');
    expect(await pub.publish('apps')).toBe('unchanged');
    expect(await new RootCertPublisher(store, 'ROOT-B', silentLogger()).publish('apps')).toBe('updated');
    expect(maps.get('apps/istio-ca-root-cert')).toEqual({ 'root-cert.pem': 'ROOT-B' });
    const failing = new RootCertPublisher(
      { ...store, read: () => Promise.reject(new Error('forbidden')) },
      'R',
      silentLogger(),
    );
    expect(await failing.publish('apps')).toBe('failed');
  });
});
