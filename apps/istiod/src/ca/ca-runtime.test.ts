import { afterEach, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { X509Certificate } from 'node:crypto';
import { connect } from 'node:tls';
import { Informer, type WatchEvent } from '@ambient-mesh/kube';
import { silentLogger } from '@ambient-mesh/runtime';
import { createWorkloadCsr, SpiffeId, type PluggedCaCerts } from '@ambient-mesh/spiffe-certs';
import { createTestCa, createTestPluggedCerts } from '@ambient-mesh/spiffe-certs/testing';
import { IstioCertificateService, type ca } from '@ambient-mesh/xds-types';
import { build, type Bound } from '../app.ts';
import type { TokenReviewer } from '../auth/token-review.ts';
import { loadConfig } from '../config.ts';
import type { InformerFactory, WatchedKind } from '../kube/informers.ts';
import type { KubeObject } from '../kube/objects.ts';
import { staticInformerFactory } from '../kube/static-informers.ts';
import { goldenFixture } from '../testing/fixtures.ts';
import { ObjectKinds } from '../wds/wds-index.ts';
import { publishedRoots } from './ca-runtime.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const SECRETS_PATH = '/api/v1/namespaces/istio-system/secrets';
const id = SpiffeId.parse('spiffe://cluster.local/ns/golden/sa/web');

const reviewer: TokenReviewer = token => {
  const [ns, sa, pod, uid] = token.split(':');
  return Promise.resolve({
    authenticated: true,
    username: `system:serviceaccount:${ns}:${sa}`,
    extra: {
      'authentication.kubernetes.io/pod-name': [pod ?? ''],
      'authentication.kubernetes.io/pod-uid': [uid ?? ''],
    },
  });
};

function cacertsData(p: PluggedCaCerts): Record<string, string> {
  return {
    'ca-cert.pem': p.caCertPem,
    'ca-key.pem': p.caKeyPem,
    'root-cert.pem': p.rootCertPem,
    'cert-chain.pem': p.certChainPem ?? '',
  };
}

function secretObject(name: string, data: Record<string, string>, rv: string): KubeObject {
  return {
    metadata: { name, namespace: 'istio-system', resourceVersion: rv },
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
  } as KubeObject;
}

/** Static informers, except istiod's Secrets, whose events the test sends. */
function informers(initialSecrets: KubeObject[]): {
  factory: InformerFactory;
  send: (event: WatchEvent<KubeObject>) => void;
} {
  const f = goldenFixture();
  const fixed = staticInformerFactory({ ns: f.namespaces, nodes: f.nodes, services: [], pods: f.pods });
  let emit: ((event: WatchEvent<KubeObject>) => void) | undefined;
  const factory: InformerFactory = (k, onError) =>
    k.path !== SECRETS_PATH
      ? fixed(k, onError)
      : new Informer<KubeObject>({
          name: k.kind,
          source: {
            list: () => Promise.resolve({ items: initialSecrets, metadata: { resourceVersion: '1' } }),
            watch: (_rv, signal, onEvent) =>
              new Promise<void>(resolve => {
                emit = onEvent;
                signal.addEventListener('abort', () => {
                  resolve();
                });
              }),
          },
          onError,
        });
  return {
    factory,
    send: event => {
      if (emit === undefined) throw new Error('the Secrets watch has not started');
      emit(event);
    },
  };
}

const kinds: WatchedKind[] = [
  { kind: ObjectKinds.NAMESPACE, path: 'ns' },
  { kind: ObjectKinds.NODE, path: 'nodes' },
  { kind: ObjectKinds.SERVICE, path: 'services' },
  { kind: ObjectKinds.POD, path: 'pods' },
];

async function start(
  secrets: Record<string, Record<string, string>>,
  env: Record<string, string> = {},
): Promise<{
  istiod: Bound;
  configMaps: Map<string, Record<string, string>>;
  send: (event: WatchEvent<KubeObject>) => void;
}> {
  const configMaps = new Map<string, Record<string, string>>();
  const inf = informers(Object.entries(secrets).map(([name, data]) => secretObject(name, data, '1')));
  const config = loadConfig({
    env,
    argv: [
      '--secureGRPCAddr=127.0.0.1:0',
      '--httpAddr=127.0.0.1:0',
      '--monitoringAddr=127.0.0.1:0',
      '--debugAddr=127.0.0.1:0',
    ],
  });
  const istiod = await build(config, {
    logger: silentLogger(),
    reviewer,
    rootKeyAlgorithm: 'ecdsa-p256',
    secrets: {
      read: (_ns, name) => Promise.resolve(secrets[name]),
      create: () => Promise.resolve(true),
    },
    configMaps: {
      read: (ns, name) => Promise.resolve(configMaps.get(`${ns}/${name}`)),
      create: (ns, name, data) => {
        configMaps.set(`${ns}/${name}`, data);
        return Promise.resolve();
      },
      replace: (ns, name, data) => {
        configMaps.set(`${ns}/${name}`, data);
        return Promise.resolve();
      },
    },
    informerFactory: inf.factory,
    kinds,
  });
  cleanups.push(() => istiod.stop());
  return { istiod, configMaps, send: inf.send };
}

/** Waits for `check` over event-loop turns (bounded), returning its last value. */
async function until(check: () => boolean | Promise<boolean>, turns = 2000): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (await check()) return;
    await new Promise(r => setTimeout(r, 5));
  }
  throw new Error('condition not met');
}

function caClient(
  istiod: Bound,
  rootPem: string,
): (req: ca.IstioCertificateRequestInit) => Promise<string[]> {
  const Client = grpc.makeGenericClientConstructor(IstioCertificateService, 'ca');
  const client = new Client(
    `127.0.0.1:${istiod.ports.grpc}`,
    grpc.credentials.createSsl(Buffer.from(rootPem)),
    {
      'grpc.ssl_target_name_override': 'istiod.istio-system.svc',
    },
  );
  cleanups.push(() => {
    client.close();
  });
  const stub = client as unknown as {
    CreateCertificate: (
      req: ca.IstioCertificateRequestInit,
      md: grpc.Metadata,
      cb: (err: grpc.ServiceError | null, res: ca.IstioCertificateResponse) => void,
    ) => void;
  };
  return req =>
    new Promise((resolve, reject) => {
      const md = new grpc.Metadata();
      md.set('authorization', 'Bearer golden:web:web-1:uid-1');
      stub.CreateCertificate.call(client, req, md, (err, res) => {
        if (err !== null) reject(err);
        else resolve(res.certChain);
      });
    });
}

/** The certificate chain istiod's gRPC port presents. */
function servingChain(port: number, rootPem: string): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = connect(
      { host: '127.0.0.1', port, ca: rootPem, servername: 'istiod.istio-system.svc', ALPNProtocols: ['h2'] },
      () => {
        const peer = socket.getPeerX509Certificate();
        socket.end();
        if (peer === undefined) reject(new Error('no peer certificate'));
        else resolve(peer);
      },
    );
    socket.on('error', reject);
  });
}

describe('plug-in CA in a running istiod', () => {
  it('signs with the cacerts intermediate, moves to a new root after distributing it, and refuses a bad one', async () => {
    const first = await createTestPluggedCerts();
    const { istiod, configMaps, send } = await start({ cacerts: cacertsData(first) });
    await until(() => istiod.ready());
    const create = caClient(istiod, first.rootCertPem);
    const csr = await createWorkloadCsr(id);
    // A short lifetime: its refresh point (the middle of its validity window, NotBefore being
    // backdated) is already past, so a new root needs only the grace to reach every workload.
    const chain1 = await create({ csr: csr.csrPem, validityDuration: 60 });
    expect(chain1).toHaveLength(3);
    expect(new X509Certificate(chain1[1]!).fingerprint256).toBe(
      new X509Certificate(first.caCertPem).fingerprint256,
    );
    await until(() => configMaps.get('golden/istio-ca-root-cert') !== undefined);
    expect(configMaps.get('golden/istio-ca-root-cert')?.['root-cert.pem']).toBe(first.rootCertPem);

    // A new intermediate under a new root, with both roots published (migration without a flag day).
    const second = await createTestPluggedCerts({ keyAlgorithm: 'rsa-2048' });
    const both = second.rootCertPem + first.rootCertPem;
    send({
      type: 'MODIFIED',
      object: secretObject('cacerts', { ...cacertsData(second), 'root-cert.pem': both }, '2'),
    });
    // First the new root is distributed: both roots published and in every answer, while the
    // previous intermediate still signs workload certificates and istiod's serving certificate.
    await until(() => configMaps.get('golden/istio-ca-root-cert')?.['root-cert.pem'] === both);
    const during = await caClient(istiod, first.rootCertPem)({ csr: csr.csrPem, validityDuration: 60 });
    expect(new X509Certificate(during[0]!).verify(new X509Certificate(first.caCertPem).publicKey)).toBe(true);
    expect(during[2]).toBe(both);
    expect(
      (await servingChain(istiod.ports.grpc, first.rootCertPem)).checkIssued(
        new X509Certificate(first.caCertPem),
      ),
    ).toBe(true);
    const metrics = async (): Promise<string> =>
      (await fetch(`http://127.0.0.1:${istiod.ports.monitoring}/metrics`)).text();
    expect(await metrics()).toContain('istiod_cacerts_updates_total{result="staged"} 1');
    // Then (after the grace) the new intermediate signs.
    await until(
      () =>
        istiod.meshCa.ca.signingCertificate.fingerprint256 ===
        new X509Certificate(second.caCertPem).fingerprint256,
      8000,
    );
    expect(configMaps.get('golden/istio-ca-root-cert')?.['root-cert.pem']).toBe(both);
    // The serving certificate is re-signed by the new intermediate; clients trusting either root connect.
    await until(async () =>
      (await servingChain(istiod.ports.grpc, both)).checkIssued(new X509Certificate(second.caCertPem)),
    );
    const chain2 = await caClient(istiod, both)({ csr: csr.csrPem, validityDuration: 3600 });
    expect(new X509Certificate(chain2[0]!).verify(new X509Certificate(second.caCertPem).publicKey)).toBe(
      true,
    );
    expect(chain2[2]).toBe(both);

    // A key that does not match: refused, the CA in use stays, the metric says so.
    const other = await createTestPluggedCerts();
    send({
      type: 'MODIFIED',
      object: secretObject(
        'cacerts',
        { ...cacertsData(second), 'root-cert.pem': both, 'ca-key.pem': other.caKeyPem },
        '3',
      ),
    });
    await until(async () => (await metrics()).includes('istiod_cacerts_updates_total{result="refused"} 1'));
    expect(istiod.meshCa.ca.signingCertificate.fingerprint256).toBe(
      new X509Certificate(second.caCertPem).fingerprint256,
    );
    // The distribution grace (10 s) is waited for in real time.
  }, 90_000);
});

describe('istiod with ENABLE_CA_SERVER=false', () => {
  it('serves no CA, and serves xDS with the certificate of Secret istiod-tls', async () => {
    const external = await createTestCa({ intermediate: true });
    const serving = await external.signServingCertificate({
      dnsNames: ['istiod.istio-system.svc'],
      ttlSeconds: 3600,
    });
    const { istiod, configMaps } = await start(
      {
        'istiod-tls': {
          'tls.crt': serving.certChainPem,
          'tls.key': serving.keyPem,
          'ca.crt': serving.rootBundlePem,
        },
      },
      { ENABLE_CA_SERVER: 'false' },
    );
    await until(() => istiod.ready());
    const peer = await servingChain(istiod.ports.grpc, serving.rootBundlePem);
    expect(peer.serialNumber).toBe(serving.serialNumber);
    const csr = await createWorkloadCsr(id);
    await expect(
      caClient(istiod, serving.rootBundlePem)({ csr: csr.csrPem, validityDuration: 3600 }),
    ).rejects.toMatchObject({
      code: grpc.status.UNIMPLEMENTED,
    });
    // Only the external CA's root is published: istiod's own root signs nothing here.
    await until(() => configMaps.get('golden/istio-ca-root-cert') !== undefined);
    expect(configMaps.get('golden/istio-ca-root-cert')?.['root-cert.pem']).toBe(serving.rootBundlePem);
  });
});

describe('publishedRoots', () => {
  it('merges the signer roots into the mesh roots, without duplicates', async () => {
    const a = await createTestCa();
    const b = await createTestCa();
    expect(
      publishedRoots({
        caServer: true,
        meshRootsPem: a.trustBundle.pem,
        signerRootsPem: b.trustBundle.pem + a.trustBundle.pem,
      }),
    ).toBe(a.trustBundle.pem + b.trustBundle.pem);
    expect(
      publishedRoots({ caServer: false, meshRootsPem: a.trustBundle.pem, servingCaPem: b.trustBundle.pem }),
    ).toBe(b.trustBundle.pem);
    expect(
      publishedRoots({ caServer: true, meshRootsPem: a.trustBundle.pem, servingCaPem: b.trustBundle.pem }),
    ).toBe(a.trustBundle.pem + b.trustBundle.pem);
  });
});
