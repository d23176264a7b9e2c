/* eslint-disable @typescript-eslint/no-unsafe-class-instance-assignment -- client-node's models are classes, but the API speaks plain JSON: plain objects of those shapes are what we send and receive. */
// Cluster tier: upstream istiod (the oracle of the differential check) on the local cluster, read
// with the delta-xDS test client. Builds or finds the binary with
// tools/install-deps.d/istio-upstream.sh (a cold build takes about 15 minutes), needs root.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:tls';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { V1Pod, V1Service } from '@kubernetes/client-node';
import { security, workload } from '@ambient-mesh/xds-types';
import { startCluster, type Cluster } from '../cluster.ts';
import { waitFor } from '../exec.ts';
import { DeltaXdsClient } from '../xds-client/delta-client.ts';
import { ztunnelNode } from '../xds-client/node.ts';
import { diffNormalized, normalizeSnapshot, snapshotToJson } from '../xds-client/normalize.ts';
import { ensureUpstreamIstio, type UpstreamIstio } from './install.ts';
import { startUpstreamIstiod, type UpstreamIstiod } from './istiod.ts';

const NS = 'oracle-demo';
// Istio 1.27.3's own CRDs from shared/ beside the clone when present (the fallback build's 1.30
// CRD file has schemas this Kubernetes refuses; see docs/compatibility.md).
const SHARED_CRDS = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  '..',
  '..',
  'shared',
  'crds',
  'istio-1.27.3',
  'crd-all.gen.yaml',
);
const GOLDEN = join(dirname(fileURLToPath(import.meta.url)), 'testdata', 'fixture-snapshot.json');

let istio: UpstreamIstio;
let cluster: Cluster;
let istiod: UpstreamIstiod;
const clients: DeltaXdsClient[] = [];

function pod(name: string, node: string, labels: Record<string, string>, serviceAccount: string): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS, labels },
    spec: {
      nodeName: node,
      serviceAccountName: serviceAccount,
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'app',
          image: 'ambient-mesh/shell:0.1.0',
          command: ['sleep', '86400'],
          ports: [{ name: 'http', containerPort: 8080 }],
        },
      ],
    },
  };
}

const webService: V1Service = {
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'web', namespace: NS },
  spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
};

const allowPolicy = {
  apiVersion: 'security.istio.io/v1',
  kind: 'AuthorizationPolicy',
  metadata: { name: 'allow-web', namespace: NS },
  spec: {
    selector: { matchLabels: { app: 'web' } },
    action: 'ALLOW',
    rules: [{ from: [{ source: { namespaces: [NS] } }], to: [{ operation: { ports: ['8080'] } }] }],
  },
};

function uid(name: string): string {
  return `Kubernetes//Pod/${NS}/${name}`;
}

function newClient(resume?: DeltaXdsClient): DeltaXdsClient {
  const c = new DeltaXdsClient({
    address: istiod.xdsAddress,
    rootCert: istiod.rootCert,
    token: istiod.ztunnel.token,
    node: ztunnelNode({
      ip: istiod.ztunnel.ip,
      podName: istiod.ztunnel.podName,
      namespace: istiod.ztunnel.namespace,
      nodeName: istiod.ztunnel.nodeName,
    }),
    resume: resume?.resumeState(),
  });
  clients.push(c);
  return c.start();
}

/** Pod IP → `pod:<name>`, ClusterIP → `svc:<name>`, so snapshots of different runs compare equal. */
async function ipAliases(): Promise<Map<string, string>> {
  const aliases = new Map<string, string>();
  const pods = await cluster.client.get<{ items: V1Pod[] }>(`/api/v1/namespaces/${NS}/pods`);
  for (const p of pods.items)
    if (p.status?.podIP) aliases.set(p.status.podIP, `pod:${p.metadata?.name ?? ''}`);
  const svcs = await cluster.client.get<{ items: V1Service[] }>(`/api/v1/namespaces/${NS}/services`);
  for (const s of svcs.items)
    if (s.spec?.clusterIP) aliases.set(s.spec.clusterIP, `svc:${s.metadata?.name ?? ''}`);
  return aliases;
}

function inFixture(c: DeltaXdsClient): Parameters<typeof normalizeSnapshot>[0] {
  return {
    addresses: new Map(
      [...c.addresses].filter(([, a]) => (a.workload?.namespace ?? a.service?.namespace) === NS),
    ),
    authorizations: new Map([...c.authorizations].filter(([, a]) => a.namespace === NS)),
  };
}

describe('upstream istiod as the oracle', () => {
  beforeAll(async () => {
    istio = await ensureUpstreamIstio(line => {
      console.log(line);
    });
    cluster = await startCluster({
      name: 'oracle',
      slot: 8,
      nodes: 2,
      progress: line => {
        console.log(`[cluster] ${line}`);
      },
    });
    const c = cluster.client;
    await c.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
    for (const sa of ['web', 'db'])
      await c.create(`/api/v1/namespaces/${NS}/serviceaccounts`, { metadata: { name: sa, namespace: NS } });
    await c.create(`/api/v1/namespaces/${NS}/pods`, pod('web-a', 'node-0', { app: 'web' }, 'web'));
    await c.create(`/api/v1/namespaces/${NS}/pods`, pod('web-b', 'node-1', { app: 'web' }, 'web'));
    await c.create(`/api/v1/namespaces/${NS}/pods`, pod('db-a', 'node-0', { app: 'db' }, 'db'));
    await c.create(`/api/v1/namespaces/${NS}/services`, webService);
    istiod = await startUpstreamIstiod({
      cluster,
      istio,
      workDir: join(cluster.layout.stateDir, 'upstream-istiod'),
      crdFiles: existsSync(SHARED_CRDS) ? [SHARED_CRDS, ...istio.crdFiles.slice(1)] : undefined,
      progress: line => {
        console.log(`[istiod] ${line}`);
      },
    });
  }, 2_400_000);

  afterAll(async () => {
    for (const c of clients) await c.close();
    // beforeAll may have failed before assigning these.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- see above
    await istiod?.stop();
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- see above
    await cluster?.stop();
  }, 180_000);

  it('serves xDS on its secure port with TLS 1.3 and ALPN h2 for istiod.istio-system.svc', async () => {
    const [host, port] = istiod.xdsAddress.split(':');
    const info = await new Promise<{ protocol: string | null; alpn: string | false | null }>(
      (resolve, reject) => {
        const socket = connect(
          {
            host,
            port: Number(port),
            ca: istiod.rootCert,
            servername: 'istiod.istio-system.svc',
            ALPNProtocols: ['h2'],
          },
          () => {
            resolve({ protocol: socket.getProtocol(), alpn: socket.alpnProtocol });
            socket.end();
          },
        );
        socket.on('error', reject);
      },
    );
    expect(info).toEqual({ protocol: 'TLSv1.3', alpn: 'h2' });
  });

  it('sends the fixture Workloads (uid <cluster>//Pod/<ns>/<name>) and the Service (<ns>/<hostname>) to a ztunnel client', async () => {
    const c = newClient();
    await c.waitForSync(60_000);
    const ready = await c.waitFor(
      'three healthy fixture workloads and the web service',
      x => {
        const ws = ['web-a', 'web-b', 'db-a'].map(n => x.addresses.get(uid(n))?.workload);
        const svc = x.addresses.get(`${NS}/web.${NS}.svc.cluster.local`)?.service;
        return ws.every(w => w !== undefined && w.status === workload.WorkloadStatus.HEALTHY) && svc
          ? { ws, svc }
          : undefined;
      },
      { timeoutMs: 60_000 },
    );
    const webA = ready.ws[0];
    expect(webA?.name).toBe('web-a');
    expect(webA?.namespace).toBe(NS);
    expect(webA?.serviceAccount).toBe('web');
    expect(webA?.node).toBe('node-0');
    expect(webA?.clusterId).toBe('Kubernetes');
    expect(webA?.workloadType).toBe(workload.WorkloadType.POD);
    const podA = await cluster.client.get<V1Pod>(`/api/v1/namespaces/${NS}/pods/web-a`);
    expect(webA?.addresses.map(a => [...a].join('.'))).toEqual([podA.status?.podIP]);
    expect(webA?.services[`${NS}/web.${NS}.svc.cluster.local`]?.ports).toEqual([
      { servicePort: 80, targetPort: 8080 },
    ]);
    expect(ready.ws[2]?.services).toEqual({});
    const svc = await cluster.client.get<V1Service>(`/api/v1/namespaces/${NS}/services/web`);
    expect(ready.svc.hostname).toBe(`web.${NS}.svc.cluster.local`);
    expect(ready.svc.addresses.map(a => [...a.address].join('.'))).toEqual([svc.spec?.clusterIP]);
    expect(ready.svc.ports).toEqual([{ servicePort: 80, targetPort: 0 }]);
    await c.close();
  }, 120_000);

  it('pushes an Authorization for an AuthorizationPolicy and lists it on the selected workloads; the normalized fixture matches the golden file', async () => {
    const c = newClient();
    await cluster.client.create(
      `/apis/security.istio.io/v1/namespaces/${NS}/authorizationpolicies`,
      allowPolicy,
    );
    const policy = await c.waitFor(
      'Authorization oracle-demo/allow-web',
      x => x.authorizations.get(`${NS}/allow-web`),
      {
        timeoutMs: 60_000,
      },
    );
    expect(policy.scope).toBe(security.Scope.WORKLOAD_SELECTOR);
    expect(policy.action).toBe(security.Action.ALLOW);
    await c.waitFor(
      'web workloads to list the policy',
      x =>
        ['web-a', 'web-b'].every(n =>
          x.addresses.get(uid(n))?.workload?.authorizationPolicies.includes(`${NS}/allow-web`),
        ) && x.addresses.get(uid('db-a'))?.workload?.authorizationPolicies.length === 0,
      { timeoutMs: 60_000 },
    );
    const normalized = normalizeSnapshot(inFixture(c), { ipAliases: await ipAliases() });
    const out = join(cluster.layout.stateDir, 'upstream-fixture-snapshot.json');
    writeFileSync(out, snapshotToJson(normalized));
    console.log(`normalized upstream snapshot written to ${out}`);
    if (process.env.UPDATE_GOLDEN === '1' || !existsSync(GOLDEN))
      writeFileSync(GOLDEN, snapshotToJson(normalized));
    const golden = JSON.parse(readFileSync(GOLDEN, 'utf8')) as Parameters<typeof diffNormalized>[0];
    expect(diffNormalized(golden, normalized)).toEqual([]);
    await c.close();
  }, 120_000);

  it('on a reconnect with initial_resource_versions removes exactly the announced names that are gone and resends the current resources', async () => {
    const first = newClient();
    await first.waitFor(
      'db-a and the policy',
      x => x.addresses.has(uid('db-a')) && x.authorizations.size > 0,
      {
        timeoutMs: 60_000,
      },
    );
    await first.close();
    const before = first.resumeState();

    // Changes while disconnected: one pod deleted, one added.
    await cluster.client.delete(`/api/v1/namespaces/${NS}/pods/db-a`, { gracePeriodSeconds: 0 });
    await cluster.client.create(`/api/v1/namespaces/${NS}/pods`, pod('db-b', 'node-1', { app: 'db' }, 'db'));
    await waitFor(
      'db-b to get an IP and db-a to be gone',
      async () => {
        const pods = await cluster.client.get<{ items: V1Pod[] }>(`/api/v1/namespaces/${NS}/pods`);
        const names = pods.items.map(p => p.metadata?.name);
        const b = pods.items.find(p => p.metadata?.name === 'db-b');
        return !names.includes('db-a') && b?.status?.podIP ? true : undefined;
      },
      { timeoutMs: 60_000 },
    );

    const second = newClient(first);
    const addressResponse = await second.waitFor(
      'the first Address response after the reconnect',
      x => x.responses.find(r => r.typeUrl === 'type.googleapis.com/istio.workload.Address'),
      { timeoutMs: 60_000 },
    );
    await second.waitFor(
      'db-b present and db-a removed',
      x =>
        x.addresses.get(uid('db-b'))?.workload?.status === workload.WorkloadStatus.HEALTHY &&
        !x.addresses.has(uid('db-a')),
      { timeoutMs: 60_000 },
    );
    const allResponses = second.responses.filter(
      r => r.typeUrl === 'type.googleapis.com/istio.workload.Address',
    );
    const removed = allResponses.flatMap(r => r.removedResources);
    const sent = allResponses.flatMap(r => r.resourceNames);
    console.log(
      `reconnect: first Address response carried ${addressResponse.resourceNames.length} resources ` +
        `(client announced ${before.get('type.googleapis.com/istio.workload.Address')?.size ?? 0}), ` +
        `removed ${JSON.stringify(addressResponse.removedResources)}; all: sent ${JSON.stringify(sent)}, removed ${JSON.stringify(removed)}`,
    );
    // Upstream's answer to a ztunnel-style resume ("" versions): removed_resources holds exactly
    // the announced names that are gone, and every current resource is sent again, unchanged ones
    // included (docs/compatibility.md, "Reconnect").
    expect(addressResponse.removedResources).toEqual([uid('db-a')]);
    expect(removed).toEqual([uid('db-a')]);
    expect(sent).toContain(uid('db-b'));
    expect(addressResponse.resourceNames).toContain(uid('web-a'));
  }, 180_000);
});
