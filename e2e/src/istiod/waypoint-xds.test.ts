// Cluster tier of the waypoint xDS (issue 18): an HTTPRoute applied to a real apiserver reaches a
// waypoint proxy's xDS stream (our istiod, a waypoint~ delta client with a real service-account
// token), and a change to the route is pushed; istiod writes the routes' status (parents with
// Accepted/ResolvedRefs) and the waypoint Gateway's listener attachedRoutes. Needs root and the
// Kubernetes binaries.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnvoyType, EnvoyTypeUrls, decodeEnvoy } from '@ambient-mesh/istiod';
import { DeltaTestClient, waypointNode } from '@ambient-mesh/istiod/testing';
import { startCluster, type Cluster } from '../cluster.ts';
import { waitFor } from '../exec.ts';
import { repoRoot } from '../kubelet/images.ts';
import { applyCrds } from '../upstream/crds.ts';
import { mintServiceAccountToken, prepareIstioSystem } from '../upstream/istiod.ts';
import { ensureGatewayApiCrds } from '../upstream-tools/gateway-api.ts';
import { startOurIstiod, type OurIstiod } from './our-istiod.ts';

const NS = 'wpxds';
const RC = EnvoyTypeUrls.routeConfiguration;
const REVIEWS = `inbound-vip|9080|http|reviews.${NS}.svc.cluster.local`;

let cluster: Cluster;
let ours: OurIstiod;
const cleanups: (() => Promise<void> | void)[] = [];

interface Route {
  readonly name: string;
  readonly route?: { readonly timeout?: { readonly seconds?: number }; readonly weightedClusters?: unknown };
}

function routesIn(resp: {
  resources: readonly { name: string; resource?: { value: Uint8Array } | null }[];
}): Route[] | undefined {
  const r = resp.resources.find(x => x.name === REVIEWS);
  if (r?.resource === undefined || r.resource === null) return undefined;
  const cfg = decodeEnvoy(EnvoyType.routeConfiguration, r.resource.value) as {
    virtualHosts: { routes: Route[] }[];
  };
  return cfg.virtualHosts[0]?.routes;
}

/** Reads responses (ACKing each) until one carries a RouteConfiguration for reviews that `check` accepts. */
async function until(c: DeltaTestClient, check: (routes: Route[]) => boolean): Promise<Route[]> {
  for (let i = 0; i < 50; i++) {
    const resp = await c.next(60_000);
    c.ack(resp);
    const routes = resp.typeUrl === RC ? routesIn(resp) : undefined;
    if (routes !== undefined && check(routes)) return routes;
  }
  throw new Error('no matching RouteConfiguration after 50 responses');
}

interface Condition {
  readonly type: string;
  readonly status: string;
  readonly reason?: string;
}
interface RouteStatus {
  readonly status?: {
    readonly parents?: readonly {
      readonly parentRef: { readonly kind?: string; readonly name: string; readonly port?: number };
      readonly controllerName: string;
      readonly conditions: readonly Condition[];
    }[];
  };
}
interface GatewayStatus {
  readonly status?: {
    readonly listeners?: readonly { readonly name: string; readonly attachedRoutes: number }[];
  };
}

const ROUTES = `/apis/gateway.networking.k8s.io/v1/namespaces/${NS}/httproutes`;
const GATEWAYS = `/apis/gateway.networking.k8s.io/v1/namespaces/${NS}/gateways`;

/** The reason of our parent entry's condition on a route, once istiod has written it. */
async function routeCondition(route: string, type: string): Promise<Condition> {
  return waitFor(
    `${type} on HTTPRoute ${route}`,
    async () => {
      const r = await cluster.client.get<RouteStatus>(`${ROUTES}/${route}`);
      const ours = r.status?.parents?.find(p => p.controllerName === 'istio.io/gateway-controller');
      return ours?.conditions.find(c => c.type === type);
    },
    { timeoutMs: 60_000 },
  );
}

async function attachedRoutes(expected: number): Promise<void> {
  await waitFor(
    `attachedRoutes ${expected} on the waypoint's mesh listener`,
    async () => {
      const gw = await cluster.client.get<GatewayStatus>(`${GATEWAYS}/waypoint`);
      return gw.status?.listeners?.find(l => l.name === 'mesh')?.attachedRoutes === expected
        ? true
        : undefined;
    },
    { timeoutMs: 60_000 },
  );
}

const httpRoute = (timeout: string) => ({
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'HTTPRoute',
  metadata: { name: 'reviews', namespace: NS },
  spec: {
    parentRefs: [{ group: '', kind: 'Service', name: 'reviews', port: 9080 }],
    rules: [
      {
        matches: [{ path: { type: 'PathPrefix', value: '/reviews' } }],
        backendRefs: [
          { name: 'reviews', port: 9080, weight: 80 },
          { name: 'ratings', port: 9080, weight: 20 },
        ],
        timeouts: { request: timeout },
        retry: { attempts: 3, codes: [503] },
      },
    ],
  },
});

describe('waypoint xDS on the local cluster', () => {
  beforeAll(async () => {
    cluster = await startCluster({
      name: 'wpxds',
      slot: 53,
      nodes: 1,
      progress: l => {
        console.log(`[cluster] ${l}`);
      },
    });
    cleanups.push(() => cluster.stop());
    const crdDir = join(repoRoot(), 'deploy', 'crds');
    const gwDir = await ensureGatewayApiCrds(l => {
      console.log(l);
    });
    const files = [
      ...readdirSync(crdDir)
        .filter(f => f.endsWith('.yaml') && !f.startsWith('gateway.networking.k8s.io_'))
        .map(f => join(crdDir, f)),
      ...readdirSync(gwDir)
        .filter(f => f.endsWith('.yaml'))
        .map(f => join(gwDir, f)),
    ];
    await applyCrds(cluster.client, files, { skipInvalid: true });
    await prepareIstioSystem(cluster.client);
    const workDir = mkdtempSync(join(tmpdir(), 'wpxds-e2e-'));
    cleanups.push(() => {
      rmSync(workDir, { recursive: true, force: true });
    });
    ours = await startOurIstiod({ kubeconfig: cluster.kubeconfig, workDir });
    cleanups.push(() => ours.stop());
    const c = cluster.client;
    await c.ensure('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
    await c.ensure(`/api/v1/namespaces/${NS}/serviceaccounts`, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'waypoint', namespace: NS },
    });
    await c.ensure(`/apis/gateway.networking.k8s.io/v1/namespaces/${NS}/gateways`, {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'Gateway',
      metadata: { name: 'waypoint', namespace: NS, labels: { 'istio.io/waypoint-for': 'service' } },
      spec: {
        gatewayClassName: 'istio-waypoint',
        listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }],
      },
    });
    for (const name of ['reviews', 'ratings'])
      await c.ensure(`/api/v1/namespaces/${NS}/services`, {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name, namespace: NS, labels: { 'istio.io/use-waypoint': 'waypoint' } },
        spec: { selector: { app: name }, ports: [{ name: 'http', port: 9080, targetPort: 9080 }] },
      });
  }, 900_000);

  afterAll(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  }, 180_000);

  it('delivers an HTTPRoute applied to the apiserver to the waypoint, and pushes its change', async () => {
    const token = await mintServiceAccountToken(cluster.client, {
      namespace: NS,
      serviceAccount: 'waypoint',
    });
    const client = new DeltaTestClient({ address: ours.xdsAddress, rootCertPem: ours.rootCert, token });
    cleanups.push(() => {
      client.close();
    });
    const node = waypointNode('waypoint', NS);
    client.send({ node, typeUrl: RC });
    // Before any route: the default route of the bound Service.
    await until(client, routes => routes.length === 1 && routes[0]!.name === 'default');

    await cluster.client.create(
      `/apis/gateway.networking.k8s.io/v1/namespaces/${NS}/httproutes`,
      httpRoute('5s'),
    );
    const routes = await until(client, r => r[0]?.name === `${NS}.reviews.0`);
    expect(routes[0]!.route?.timeout).toEqual({ seconds: 5 });
    expect(routes[0]!.route?.weightedClusters).toEqual({
      clusters: [
        { name: REVIEWS, weight: 80 },
        { name: `inbound-vip|9080|http|ratings.${NS}.svc.cluster.local`, weight: 20 },
      ],
    });

    await cluster.client.mergePatch(
      `/apis/gateway.networking.k8s.io/v1/namespaces/${NS}/httproutes/reviews`,
      {
        spec: httpRoute('7s').spec,
      },
    );
    const changed = await until(client, r => r[0]?.route?.timeout?.seconds === 7);
    expect(changed[0]!.name).toBe(`${NS}.reviews.0`);
  });

  it('writes route status (parents, Accepted, ResolvedRefs with upstream reasons) and the listener’s attachedRoutes', async () => {
    // The route of the first case, served by the waypoint: accepted, every reference resolved.
    const route = await cluster.client.get<RouteStatus>(`${ROUTES}/reviews`);
    expect(route.status?.parents?.map(p => [p.parentRef.kind, p.parentRef.name, p.parentRef.port])).toEqual([
      ['Service', 'reviews', 9080],
    ]);
    expect(await routeCondition('reviews', 'Accepted')).toMatchObject({ status: 'True', reason: 'Accepted' });
    expect(await routeCondition('reviews', 'ResolvedRefs')).toMatchObject({
      status: 'True',
      reason: 'ResolvedRefs',
    });
    // A backend that does not exist: BackendNotFound, as upstream.
    await cluster.client.create(ROUTES, {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: 'missing', namespace: NS },
      spec: {
        parentRefs: [{ group: '', kind: 'Service', name: 'ratings', port: 9080 }],
        rules: [{ backendRefs: [{ name: 'nope', port: 9080 }] }],
      },
    });
    await waitFor(
      'ResolvedRefs=False on HTTPRoute missing',
      async () => ((await routeCondition('missing', 'ResolvedRefs')).status === 'False' ? true : undefined),
      { timeoutMs: 60_000 },
    );
    expect(await routeCondition('missing', 'ResolvedRefs')).toMatchObject({ reason: 'BackendNotFound' });
    // GAMMA routes (Service parents) do not attach to the Gateway; one with the waypoint as parent does.
    await attachedRoutes(0);
    await cluster.client.create(ROUTES, {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: 'via-waypoint', namespace: NS },
      spec: {
        parentRefs: [{ kind: 'Gateway', name: 'waypoint' }],
        hostnames: ['ratings'],
        rules: [{ backendRefs: [{ name: 'ratings', port: 9080 }] }],
      },
    });
    expect(await routeCondition('via-waypoint', 'Accepted')).toMatchObject({ status: 'True' });
    await attachedRoutes(1);
    await cluster.client.delete(`${ROUTES}/via-waypoint`);
    await attachedRoutes(0);
  });
});
