import { afterEach, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { X509Certificate } from 'node:crypto';
import { createWorkloadCsr, SpiffeId } from '@ambient-mesh/spiffe-certs';
import { IstioCertificateService, toStruct, type ca } from '@ambient-mesh/xds-types';
import type { TokenReviewer } from './auth/token-review.ts';
import { loadConfig } from './config.ts';
import { build, type AppDeps, type Bound } from './app.ts';
import { LeaseName, staticElection, type Election } from './kube/leader-election.ts';
import { buildInfo } from './build-info.ts';
import type { WatchedKind } from './kube/informers.ts';
import { staticInformerFactory } from './kube/static-informers.ts';
import { silentLogger } from '@ambient-mesh/runtime';
import { DeltaTestClient, ztunnelNode } from './testing/delta-client.ts';
import { goldenFixture, makeAuthorizationPolicy, makePod } from './testing/fixtures.ts';
import { ObjectKinds, TypeUrls, type ObjectKind } from './wds/wds-index.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Tokens: "<ns>:<sa>[:<pod>:<uid>]". */
const reviewer: TokenReviewer = token => {
  const [ns, sa, pod, uid] = token.split(':');
  return Promise.resolve({
    authenticated: ns !== undefined && sa !== undefined,
    username: `system:serviceaccount:${ns}:${sa}`,
    ...(pod !== undefined
      ? {
          extra: {
            'authentication.kubernetes.io/pod-name': [pod],
            'authentication.kubernetes.io/pod-uid': [uid ?? ''],
          },
        }
      : {}),
  });
};

/** Informers that list a fixed set of objects per path. */
const staticInformers = staticInformerFactory;

const kinds: WatchedKind[] = (
  [
    [ObjectKinds.NAMESPACE, 'ns'],
    [ObjectKinds.NODE, 'nodes'],
    [ObjectKinds.SERVICE, 'services'],
    [ObjectKinds.POD, 'pods'],
    [ObjectKinds.AUTHORIZATION_POLICY, 'aps'],
    [ObjectKinds.PEER_AUTHENTICATION, 'pas'],
  ] as [ObjectKind, string][]
).map(([kind, path]) => ({ kind, path, list: () => Promise.resolve({ items: [] }) }));

interface Started {
  istiod: Bound;
  configMaps: Map<string, Record<string, string>>;
  statuses: Map<string, unknown>;
}

async function start(
  extra: Partial<AppDeps> = {},
  more: {
    readonly env?: Record<string, string>;
    readonly argv?: readonly string[];
    readonly nodes?: readonly object[];
    readonly pods?: readonly object[];
    readonly policies?: readonly object[];
  } = {},
): Promise<Started> {
  const f = goldenFixture();
  const ztunnel = makePod({
    name: 'ztunnel-a',
    namespace: 'istio-system',
    node: 'node-a',
    ip: '10.244.1.2',
    serviceAccount: 'ztunnel',
  });
  const secrets = new Map<string, Record<string, string>>();
  const configMaps = new Map<string, Record<string, string>>();
  const statuses = new Map<string, unknown>();
  const broken = makeAuthorizationPolicy('broken', 'golden', {
    selector: { matchLabels: { app: 'web' } },
    rules: [{ from: [{ source: { ipBlocks: ['10.0.0.0/99'] } }] }],
  });
  const config = loadConfig({
    env: { DEFAULT_WORKLOAD_CERT_TTL: '1h', PILOT_DEBOUNCE_AFTER: '5ms', ...more.env },
    argv: [
      '--secureGRPCAddr=127.0.0.1:0',
      '--httpAddr=127.0.0.1:0',
      '--monitoringAddr=127.0.0.1:0',
      '--debugAddr=127.0.0.1:0',
      ...(more.argv ?? []),
    ],
  });
  const istiod = await build(config, {
    logger: silentLogger(),
    reviewer,
    rootKeyAlgorithm: 'ecdsa-p256',
    secrets: {
      read: (ns, name) => Promise.resolve(secrets.get(`${ns}/${name}`)),
      create: (ns, name, _t, data) => {
        secrets.set(`${ns}/${name}`, data);
        return Promise.resolve(true);
      },
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
    informerFactory: staticInformers({
      ns: f.namespaces,
      nodes: [...f.nodes, ...(more.nodes ?? [])],
      services: f.services,
      pods: [...f.pods, ztunnel, ...(more.pods ?? [])],
      aps: [...f.policies, broken, ...(more.policies ?? [])],
      pas: f.peerAuthentications,
    }),
    kinds,
    statusPatcher: (_plural, ns, name, status) => {
      statuses.set(`${ns}/${name}`, status);
      return Promise.resolve();
    },
    ...extra,
  });
  cleanups.push(() => istiod.stop());
  return { istiod, configMaps, statuses };
}

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text() };
}

describe('istiod in process', () => {
  it('becomes ready, serves WDS and metrics, publishes the root and exposes debug views on localhost', async () => {
    const { istiod, configMaps, statuses } = await start();
    for (let i = 0; i < 100 && !istiod.ready(); i++) await new Promise(r => setImmediate(r));
    expect(await get(istiod.ports.http, '/ready')).toEqual({ status: 200, body: 'ready\n' });

    const client = new DeltaTestClient({
      address: `127.0.0.1:${istiod.ports.grpc}`,
      rootCertPem: istiod.meshCa.rootCertPem,
      token: 'istio-system:ztunnel',
    });
    cleanups.push(() => {
      client.close();
    });
    client.send({ node: ztunnelNode(), typeUrl: TypeUrls.ADDRESS });
    const addresses = await client.next();
    expect(addresses.resources.map(r => r.name)).toContain('Kubernetes//Pod/golden/web-7d4b9c-abcde');
    client.ack(addresses);

    const metrics = await get(istiod.ports.monitoring, '/metrics');
    expect(metrics.body).toMatch(/^pilot_xds 1$/m);
    expect(metrics.body).toContain('pilot_xds_pushes');

    const syncz = JSON.parse((await get(istiod.ports.debug, '/debug/syncz')).body) as unknown[];
    expect(syncz).toHaveLength(1);
    const wds = JSON.parse((await get(istiod.ports.debug, '/debug/wds?type=authorization')).body) as {
      name: string;
    }[];
    expect(wds.map(w => w.name)).toContain('istio-system/istio_converted_static_strict');
    // ControlZ's logging scopes (istioctl admin log) on the same port.
    const scopes = JSON.parse((await get(istiod.ports.debug, '/scopej')).body) as { name: string }[];
    expect(scopes.map(x => x.name)).toEqual(expect.arrayContaining(['ca', 'xds']));

    for (let i = 0; i < 100 && configMaps.size < 2; i++) await new Promise(r => setImmediate(r));
    expect(configMaps.get('golden/istio-ca-root-cert')?.['root-cert.pem']).toBe(istiod.meshCa.rootCertPem);

    // The malformed policy is reported in its status with the field path, and sent nowhere.
    expect(JSON.stringify(statuses.get('golden/broken'))).toContain(
      'spec.rules[0].from[0].source.ipBlocks[0]',
    );
    expect(statuses.get('golden/allow-web')).toMatchObject({ conditions: [{ reason: 'Accepted' }] });
    expect(istiod.index.authorizations.has('golden/broken')).toBe(false);
    expect(istiod.index.authorizations.has('golden/allow-web')).toBe(true);
  });

  it('writes policy status only while it leads the istio-status-leader lock, and releases it on stop', async () => {
    const listeners = new Set<(leader: boolean) => void>();
    let leader = false;
    const events: string[] = [];
    const election: Election = {
      isLeader: () => leader,
      onChange: listener => {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
      start: () => events.push('start'),
      stop: () => {
        events.push('stop');
        return Promise.resolve();
      },
    };
    const locks: string[] = [];
    const { istiod, statuses } = await start({
      elect: lock => {
        locks.push(lock);
        return lock === LeaseName.status ? election : staticElection;
      },
    });
    for (let i = 0; i < 100 && !istiod.ready(); i++) await new Promise(r => setImmediate(r));
    expect(locks).toEqual([LeaseName.status, LeaseName.gatewayDeployment()]);
    expect(istiod.leadership(LeaseName.status).isLeader()).toBe(false);
    // Every replica serves xDS regardless of leadership; a follower writes no status.
    expect(istiod.index.authorizations.has('golden/allow-web')).toBe(true);
    expect(statuses.size).toBe(0);

    leader = true;
    for (const listener of listeners) listener(true);
    for (let i = 0; i < 200 && !statuses.has('golden/broken'); i++) await new Promise(r => setImmediate(r));
    expect(statuses.get('golden/allow-web')).toMatchObject({ conditions: [{ reason: 'Accepted' }] });
    expect(JSON.stringify(statuses.get('golden/broken'))).toContain('ipBlocks');

    await istiod.stop();
    expect(events).toEqual(['start', 'stop']);
  });

  it("names an unknown CUSTOM provider in the policy's WaypointAccepted message", async () => {
    const custom = makeAuthorizationPolicy('ext', 'istio-system', {
      targetRefs: [{ kind: 'GatewayClass', group: 'gateway.networking.k8s.io', name: 'istio-waypoint' }],
      action: 'CUSTOM',
      provider: { name: 'missing-authz' },
      rules: [{ to: [{ operation: { paths: ['/admin'] } }] }],
    });
    const { statuses } = await start({}, { policies: [custom] });
    for (let i = 0; i < 500 && !statuses.has('istio-system/ext'); i++)
      await new Promise(r => setImmediate(r));
    const status = statuses.get('istio-system/ext') as {
      conditions: { type: string; status: string; reason: string; message: string }[];
    };
    const accepted = status.conditions.find(c => c.type === 'WaypointAccepted');
    // The binding stays upstream's verdict; the message tells why the policy denies instead.
    expect(accepted).toMatchObject({ status: 'True', reason: 'Accepted' });
    expect(accepted?.message).toBe(
      'bound to istio-waypoint; CUSTOM action cannot be enforced, requests matching its rules are ' +
        'denied: available providers are [] but found "missing-authz"',
    );
  });

  it('with PILOT_ENABLE_NODE_UNTAINT_CONTROLLERS, removes the not-ready taint where the CNI agent is Ready', async () => {
    const taint = { key: 'cni.istio.io/not-ready', value: 'true', effect: 'NoSchedule' };
    const tainted = (name: string) => ({
      metadata: { name, resourceVersion: '7', labels: {} },
      spec: { taints: [taint] },
    });
    const agent = (name: string, node: string, ready: boolean) => ({
      metadata: {
        name,
        namespace: 'istio-system',
        uid: `uid-${name}`,
        labels: { 'k8s-app': 'istio-cni-node' },
      },
      spec: { nodeName: node },
      status: { phase: 'Running', conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
    });
    const writes: { node: string; taints: readonly unknown[] }[] = [];
    const locks: string[] = [];
    const { istiod } = await start(
      {
        elect: lock => {
          locks.push(lock);
          return staticElection;
        },
        nodeTaintPatcher: (node, _rv, taints) => {
          writes.push({ node, taints });
          return Promise.resolve();
        },
      },
      {
        env: { PILOT_ENABLE_NODE_UNTAINT_CONTROLLERS: 'true' },
        nodes: [tainted('node-ready'), tainted('node-waiting')],
        pods: [agent('cni-1', 'node-ready', true), agent('cni-2', 'node-waiting', false)],
      },
    );
    for (let i = 0; i < 200 && writes.length === 0; i++) await new Promise(r => setImmediate(r));
    expect(istiod.ready()).toBe(true);
    expect(locks).toContain(LeaseName.nodeUntaint);
    expect(writes).toEqual([{ node: 'node-ready', taints: [] }]);
  });

  it('with --cniNamespace, waits for the CNI agent pods of that namespace, not of its own', async () => {
    const taint = { key: 'cni.istio.io/not-ready', value: 'true', effect: 'NoSchedule' };
    const tainted = (name: string) => ({
      metadata: { name, resourceVersion: '3', labels: {} },
      spec: { taints: [taint, { key: 'other', effect: 'NoExecute' }] },
    });
    const agent = (name: string, namespace: string, node: string) => ({
      metadata: { name, namespace, uid: `uid-${name}`, labels: { 'k8s-app': 'istio-cni-node' } },
      spec: { nodeName: node },
      status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] },
    });
    const writes: { node: string; taints: readonly unknown[] }[] = [];
    const { istiod } = await start(
      {
        elect: () => staticElection,
        nodeTaintPatcher: (node, _rv, taints) => {
          writes.push({ node, taints });
          return Promise.resolve();
        },
      },
      {
        env: { PILOT_ENABLE_NODE_UNTAINT_CONTROLLERS: 'true' },
        argv: ['--cniNamespace=kube-system'],
        nodes: [tainted('node-cni'), tainted('node-istiod-ns')],
        pods: [
          agent('istio-cni-node-a', 'kube-system', 'node-cni'),
          // A pod with the CNI label in istiod's namespace is not the CNI agent here.
          agent('impostor', 'istio-system', 'node-istiod-ns'),
        ],
      },
    );
    for (let i = 0; i < 200 && writes.length === 0; i++) await new Promise(r => setImmediate(r));
    expect(istiod.ready()).toBe(true);
    expect(writes).toEqual([{ node: 'node-cni', taints: [{ key: 'other', effect: 'NoExecute' }] }]);
  });

  it('runs no untaint controller unless PILOT_ENABLE_NODE_UNTAINT_CONTROLLERS is set', async () => {
    const locks: string[] = [];
    const writes: string[] = [];
    const { istiod } = await start(
      {
        elect: lock => {
          locks.push(lock);
          return staticElection;
        },
        nodeTaintPatcher: node => {
          writes.push(node);
          return Promise.resolve();
        },
      },
      {
        nodes: [
          {
            metadata: { name: 'n' },
            spec: { taints: [{ key: 'cni.istio.io/not-ready', effect: 'NoSchedule' }] },
          },
        ],
      },
    );
    for (let i = 0; i < 100 && !istiod.ready(); i++) await new Promise(r => setImmediate(r));
    expect(locks).not.toContain(LeaseName.nodeUntaint);
    expect(writes).toEqual([]);
  });

  it('serves /version and upstream-shaped /debug views and build metrics on the monitoring port', async () => {
    const { istiod } = await start();
    const f = goldenFixture();
    for (let i = 0; i < 100 && !istiod.ready(); i++) await new Promise(r => setImmediate(r));
    const version = await get(istiod.ports.monitoring, '/version');
    expect(version.status).toBe(200);
    expect(version.body).toBe(`${buildInfo.version}-unknown-Clean`);
    expect(buildInfo.version).toMatch(/^\d+\.\d+\.\d+/);

    const client = new DeltaTestClient({
      address: `127.0.0.1:${istiod.ports.grpc}`,
      rootCertPem: istiod.meshCa.rootCertPem,
      token: 'istio-system:ztunnel',
    });
    cleanups.push(() => {
      client.close();
    });
    client.send({ node: ztunnelNode(), typeUrl: TypeUrls.ADDRESS });
    client.ack(await client.next());

    const syncz = JSON.parse((await get(istiod.ports.monitoring, '/debug/syncz')).body) as Record<
      string,
      unknown
    >[];
    expect(syncz).toHaveLength(1);
    expect(syncz[0]).toMatchObject({
      proxy: 'ztunnel-abcde.istio-system',
      proxy_type: 'ztunnel',
      cluster_id: 'Kubernetes',
    });
    expect(Object.keys(syncz[0]?.['resources'] as object)).toEqual([TypeUrls.ADDRESS]);

    const registryz = JSON.parse((await get(istiod.ports.monitoring, '/debug/registryz')).body) as {
      hostname: string;
      Attributes: { ServiceRegistry: string; Namespace: string };
    }[];
    expect(registryz.length).toBe(f.services.length);
    expect(registryz[0]?.Attributes.ServiceRegistry).toBe('Kubernetes');
    expect(registryz.map(s => s.hostname)).toContain(
      `${f.services[0]?.metadata?.name ?? ''}.${f.services[0]?.metadata?.namespace ?? ''}.svc.cluster.local`,
    );

    const configz = JSON.parse((await get(istiod.ports.monitoring, '/debug/configz')).body) as {
      kind: string;
      metadata: { name: string };
    }[];
    expect(configz.map(c => `${c.kind}/${c.metadata.name}`)).toContain('AuthorizationPolicy/allow-web');

    const metrics = (await get(istiod.ports.monitoring, '/metrics')).body;
    expect(metrics).toContain(`istio_build{component="pilot",tag="${buildInfo.version}"} 1`);
    expect(metrics).toContain(`pilot_info{version="${buildInfo.version}-unknown-Clean"} 1`);
    expect(metrics).toMatch(new RegExp(`^pilot_services ${f.services.length}$`, 'm'));
    expect(metrics).toContain('pilot_proxy_convergence_time_bucket');
  });

  it('issues certificates over gRPC TLS for pods on the node proxy node only', async () => {
    const { istiod } = await start();
    const Client = grpc.makeGenericClientConstructor(IstioCertificateService, 'ca');
    const client = new Client(
      `127.0.0.1:${istiod.ports.grpc}`,
      grpc.credentials.createSsl(Buffer.from(istiod.meshCa.rootCertPem)),
      { 'grpc.ssl_target_name_override': 'istiod.istio-system.svc' },
    );
    cleanups.push(() => {
      client.close();
    });
    type Callback = (err: grpc.ServiceError | null, res: ca.IstioCertificateResponse) => void;
    const stub = client as unknown as {
      CreateCertificate: (req: ca.IstioCertificateRequestInit, md: grpc.Metadata, cb: Callback) => void;
    };
    const createCertificate = stub.CreateCertificate.bind(client);
    const csr = await createWorkloadCsr(SpiffeId.parse('spiffe://cluster.local/ns/golden/sa/web'));
    const call = (identity: string): Promise<ca.IstioCertificateResponse> => {
      const md = new grpc.Metadata();
      md.set('authorization', 'Bearer istio-system:ztunnel:ztunnel-a:uid-ztunnel-a');
      const req: ca.IstioCertificateRequestInit = {
        csr: csr.csrPem,
        validityDuration: 3600,
        metadata: toStruct({ ImpersonatedIdentity: identity }),
      };
      return new Promise((resolve, reject) => {
        createCertificate(req, md, (err, res) => {
          if (err !== null) reject(err);
          else resolve(res);
        });
      });
    };
    const ok = await call('spiffe://cluster.local/ns/golden/sa/web'); // web-…-abcde runs on node-a
    expect(new X509Certificate(ok.certChain[0]!).subjectAltName).toBe(
      'URI:spiffe://cluster.local/ns/golden/sa/web',
    );
    await expect(call('spiffe://cluster.local/ns/golden/sa/db')).rejects.toMatchObject({
      code: grpc.status.UNAUTHENTICATED,
    }); // db-0 runs on node-b
  });
});
