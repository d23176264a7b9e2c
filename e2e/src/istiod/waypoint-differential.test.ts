// The waypoint differential check (issue 18): upstream istiod (the oracle) and ours each get their
// own local cluster — so upstream's deployment controller and status writer never fight ours —
// with the same waypoint Gateway, Services and pods, weighted HTTPRoute with retries and
// timeouts, DestinationRule and L7 AuthorizationPolicy. Compared: the WDS waypoint fields, the
// status conditions of Gateway/HTTPRoute/AuthorizationPolicy, the generated Deployment/Service
// shape, and the semantics of what each istiod sends a waypoint proxy (routes, clusters, RBAC).
// Any difference not in known-waypoint-differences.ts fails. With UPDATE_UPSTREAM_FIXTURE=1 the
// run also rewrites the waypoint's upstream-captured fixture (apps/waypoint/src/testing/testdata/).
// Needs root, the Kubernetes binaries and the upstream build (tools/install-deps.d/istio-upstream.sh).
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { V1Pod, V1Service } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { EnvoyTypeUrls } from '@ambient-mesh/istiod';
import { DeltaTestClient } from '@ambient-mesh/istiod/testing';
import type { KubeClient, KubeList } from '@ambient-mesh/kube';
import { decodeEnvoy, EnvoyType } from '@ambient-mesh/waypoint';
import { startCluster, type Cluster } from '../cluster.ts';
import { runCommand, waitFor } from '../exec.ts';
import { repoRoot } from '../kubelet/images.ts';
import { ensureIstioctl } from '../upstream-tools/istioctl.ts';
import { ensureGatewayApiCrds } from '../upstream-tools/gateway-api.ts';
import { applyCrds } from '../upstream/crds.ts';
import { ensureUpstreamIstio, type UpstreamIstio } from '../upstream/install.ts';
import {
  createZtunnelIdentity,
  mintServiceAccountToken,
  prepareIstioSystem,
  startUpstreamIstiod,
  type UpstreamIstiod,
  type ZtunnelIdentity,
} from '../upstream/istiod.ts';
import { DeltaXdsClient } from '../xds-client/delta-client.ts';
import {
  diffNormalized,
  normalizeSnapshot,
  type NormalizedObject,
  type NormalizedValue,
  type SnapshotDifference,
} from '../xds-client/normalize.ts';
import { runCleanups, scratchDir, ztunnelNodeOf, type Cleanup } from './istiod-harness.ts';
import { undocumentedWaypointDifferences } from './known-waypoint-differences.ts';
import { startOurIstiod } from './our-istiod.ts';
import {
  createWaypointFixture,
  HOST,
  PATHS,
  STANDIN_POD,
  waypointClientNode,
  WAYPOINT,
  WPD_NS,
} from './waypoint-fixture.ts';
import {
  captureWaypointXds,
  decoded,
  drain,
  httpChains,
  projectCluster,
  projectDeployment,
  projectGatewayStatus,
  projectPolicyStatus,
  projectRbac,
  projectRouteConfiguration,
  projectRouteStatus,
  projectService,
  routeConfigOf,
  type WaypointCapture,
} from './waypoint-projection.ts';

const UPSTREAM_FIXTURE = join(
  repoRoot(),
  'apps',
  'waypoint',
  'src',
  'testing',
  'testdata',
  'upstream-waypoint-reviews.json',
);

/** One istiod on its own cluster, as the test sees it. */
interface Side {
  readonly name: string;
  readonly cluster: Cluster;
  readonly xdsAddress: string;
  readonly rootCert: string;
  readonly ztunnel: ZtunnelIdentity;
  readonly podIps: Map<string, string>;
}

const cleanups: Cleanup[] = [];
let theirs: Side;
let ours: Side;
let theirCapture: WaypointCapture;
let ourCapture: WaypointCapture;
/** Every aspect compared, with both projections and their differences, for DIFF_OUT. */
const found: Record<string, { ours: unknown; upstream: unknown; differences: SnapshotDifference[] }> = {};

const progress =
  (prefix: string) =>
  (line: string): void => {
    console.log(`[${prefix}] ${line}`);
  };

async function gatewayApiFiles(): Promise<string[]> {
  const dir = await ensureGatewayApiCrds(progress('gateway-api'));
  return readdirSync(dir)
    .filter(f => f.endsWith('.yaml'))
    .map(f => join(dir, f));
}

/** Upstream's sidecar-injector ConfigMap (its waypoint template), rendered by istioctl for the ambient profile. */
async function applyInjectorConfig(client: KubeClient): Promise<void> {
  const istioctl = await ensureIstioctl(progress('istioctl'));
  const out = await runCommand(
    [istioctl, 'manifest', 'generate', '--set', 'profile=ambient', '--set', 'compatibilityVersion=1.27'],
    { timeoutMs: 180_000 },
  );
  const cm = parseAllDocuments(out.stdout)
    .map(d => d.toJS() as { kind?: string; metadata?: { name?: string; namespace?: string } } | null)
    .find(
      o =>
        o?.kind === 'ConfigMap' &&
        o.metadata?.name === 'istio-sidecar-injector' &&
        o.metadata.namespace === 'istio-system',
    );
  if (cm === undefined || cm === null)
    throw new Error('istioctl manifest generate rendered no istio-sidecar-injector ConfigMap');
  await client.ensure('/api/v1/namespaces/istio-system/configmaps', cm);
}

async function startTheirs(istio: UpstreamIstio, gwFiles: string[]): Promise<Side> {
  const cluster = await startCluster({ name: 'wpdup', slot: 163, nodes: 1, progress: progress('wpdup') });
  cleanups.push(() => cluster.stop());
  const crdFiles = [...istio.crdFiles, ...gwFiles];
  await applyCrds(cluster.client, crdFiles, { skipInvalid: true });
  await prepareIstioSystem(cluster.client);
  await applyInjectorConfig(cluster.client);
  const podIps = await createWaypointFixture(cluster.client);
  const upstream: UpstreamIstiod = await startUpstreamIstiod({
    cluster,
    istio,
    crdFiles,
    workDir: scratchDir('wpdiff-upstream-', cleanups),
    progress: progress('upstream'),
  });
  cleanups.push(() => upstream.stop());
  return {
    name: 'upstream',
    cluster,
    xdsAddress: upstream.xdsAddress,
    rootCert: upstream.rootCert,
    ztunnel: upstream.ztunnel,
    podIps,
  };
}

async function startOurs(gwFiles: string[]): Promise<Side> {
  const cluster = await startCluster({ name: 'wpdours', slot: 164, nodes: 1, progress: progress('wpdours') });
  cleanups.push(() => cluster.stop());
  const crdDir = join(repoRoot(), 'deploy', 'crds');
  await applyCrds(
    cluster.client,
    [
      ...readdirSync(crdDir)
        .filter(f => f.endsWith('.yaml') && !f.startsWith('gateway.networking.k8s.io_'))
        .map(f => join(crdDir, f)),
      ...gwFiles,
    ],
    { skipInvalid: true },
  );
  await prepareIstioSystem(cluster.client);
  const podIps = await createWaypointFixture(cluster.client);
  const ztunnel = await createZtunnelIdentity(cluster.client, cluster.nodes[0]!.name);
  const istiod = await startOurIstiod({
    kubeconfig: cluster.kubeconfig,
    workDir: scratchDir('wpdiff-ours-', cleanups),
  });
  cleanups.push(() => istiod.stop());
  return { name: 'ours', cluster, xdsAddress: istiod.xdsAddress, rootCert: istiod.rootCert, ztunnel, podIps };
}

// ---- the waypoint's xDS ----

const CHAIN_OF = (host: string) => (name: string) => name.includes(`|9080|`) && name.endsWith(`|${host}`);

function chainFor(c: WaypointCapture, host: string): Record<string, unknown> | undefined {
  for (const [name, hcm] of httpChains(c)) if (CHAIN_OF(host)(name)) return hcm;
  return undefined;
}

/** The semantic projection of what a waypoint holds for the fixture's two Services. */
function projectXds(c: WaypointCapture): NormalizedObject {
  const services: NormalizedObject = {};
  for (const svc of ['reviews', 'ratings']) {
    const hcm = chainFor(c, HOST(svc));
    if (hcm === undefined) continue;
    const rc = routeConfigOf(c, hcm);
    const entry: NormalizedObject = {};
    const routes = rc === undefined ? undefined : projectRouteConfiguration(rc);
    const rbac = projectRbac(hcm);
    if (routes !== undefined) entry.routes = routes;
    if (rbac !== undefined) entry.rbac = rbac;
    services[HOST(svc)] = entry;
  }
  const clusters: NormalizedObject = {};
  for (const [name, cl] of decoded(c, EnvoyTypeUrls.cluster, EnvoyType.cluster)) {
    if (!/\|9080\|/.test(name) || !new RegExp(`\\.${WPD_NS}\\.svc\\.cluster\\.local$`).test(name)) continue;
    const p = projectCluster(cl);
    if (p !== undefined) clusters[name] = p;
  }
  return { services, clusters };
}

/** True once the waypoint holds the whole fixture: both chains, the split route, the policy and the rule. */
function xdsSettled(c: WaypointCapture): boolean {
  const x = projectXds(c);
  const p = JSON.stringify(x);
  const svcs = x.services as NormalizedObject;
  return (
    svcs[HOST('reviews')] !== undefined &&
    svcs[HOST('ratings')] !== undefined &&
    p.includes('weighted_clusters') &&
    p.includes('reviews-l7') &&
    p.includes('outlier_detection') &&
    p.includes('LEAST_REQUEST')
  );
}

async function captureOf(side: Side): Promise<WaypointCapture> {
  const token = await mintServiceAccountToken(side.cluster.client, {
    namespace: WPD_NS,
    serviceAccount: WAYPOINT,
  });
  const client = new DeltaTestClient({ address: side.xdsAddress, rootCertPem: side.rootCert, token });
  cleanups.push(() => {
    client.close();
  });
  const ip = side.podIps.get(STANDIN_POD)!;
  const capture = await captureWaypointXds(client, waypointClientNode(ip), xdsSettled, {
    what: `${side.name} istiod`,
    timeoutMs: 180_000,
  });
  await drain(client, capture);
  return capture;
}

function record(
  aspect: string,
  left: NormalizedValue | undefined,
  right: NormalizedValue | undefined,
): SnapshotDifference[] {
  const differences = diffNormalized(left, right, aspect);
  found[aspect] = { ours: left, upstream: right, differences };
  if (process.env.DIFF_OUT !== undefined) writeFileSync(process.env.DIFF_OUT, JSON.stringify(found, null, 2));
  return undocumentedWaypointDifferences(differences);
}

/** The upstream-captured fixture for apps/waypoint: the RouteConfiguration of reviews and the clusters it names. */
function writeUpstreamFixture(c: WaypointCapture): void {
  const hcm = chainFor(c, HOST('reviews'));
  const rc = hcm === undefined ? undefined : routeConfigOf(c, hcm);
  if (rc === undefined) throw new Error('no reviews route configuration in the upstream capture');
  const clusters = Object.fromEntries(
    [...(c.raw.get(EnvoyTypeUrls.cluster) ?? new Map<string, Uint8Array>())]
      .filter(([name]) => /\|9080\|/.test(name) && name.endsWith(`.${WPD_NS}.svc.cluster.local`))
      .map(([name, bytes]) => [name, decodeEnvoy(EnvoyType.cluster, bytes)]),
  );
  writeFileSync(
    UPSTREAM_FIXTURE,
    `${JSON.stringify(
      {
        $comment:
          'Captured from upstream istiod by e2e/src/istiod/waypoint-differential.test.ts (UPDATE_UPSTREAM_FIXTURE=1) for the HTTPRoute and DestinationRule of e2e/src/istiod/waypoint-fixture.ts; Envoy resources in proto-JSON form (proto field names).',
        routeConfiguration: rc,
        clusters,
      },
      null,
      2,
    )}\n`,
  );
}

// ---- WDS ----

async function aliases(client: KubeClient): Promise<Map<string, string>> {
  const pods = await client.get<KubeList<V1Pod>>(`/api/v1/namespaces/${WPD_NS}/pods`);
  const svcs = await client.get<KubeList<V1Service>>(`/api/v1/namespaces/${WPD_NS}/services`);
  return new Map([
    ...pods.items.map(p => [p.status?.podIP ?? '', `pod:${p.metadata?.name ?? ''}`] as const),
    ...svcs.items.map(s => [s.spec?.clusterIP ?? '', `svc:${s.metadata?.name ?? ''}`] as const),
  ]);
}

const WDS_SERVICE = (svc: string): string => `${WPD_NS}/${HOST(svc)}`;

async function wdsOf(side: Side): Promise<NormalizedObject> {
  const client = new DeltaXdsClient({
    address: side.xdsAddress,
    rootCert: side.rootCert,
    token: side.ztunnel.token,
    node: ztunnelNodeOf(side.ztunnel),
  });
  cleanups.push(() => client.close());
  client.start();
  await client.waitFor(
    `${side.name}: the fixture Services bound to the waypoint`,
    c =>
      ['reviews', 'ratings'].every(s => c.addresses.get(WDS_SERVICE(s))?.service?.waypoint !== undefined) &&
      c.addresses.has(WDS_SERVICE(WAYPOINT)) &&
      ['reviews-v1', 'ratings-v1', STANDIN_POD].every(
        p => (c.addresses.get(`Kubernetes//Pod/${WPD_NS}/${p}`)?.workload?.addresses.length ?? 0) > 0,
      ),
    { timeoutMs: 180_000 },
  );
  const all = normalizeSnapshot(client, { ipAliases: await aliases(side.cluster.client) });
  return Object.fromEntries(
    Object.entries(all.addresses).filter(
      ([name]) => name.startsWith(`${WPD_NS}/`) || name.startsWith(`Kubernetes//Pod/${WPD_NS}/`),
    ),
  );
}

// ---- Kubernetes status and shape ----

type Projection = (o: Record<string, unknown>) => NormalizedValue | undefined;

/**
 * The three objects' status once each carries the conditions a settled setup has (True where the
 * fixture is valid). A status that never gets there is compared as it stands after 90 s: the diff
 * then says more than a timeout.
 */
async function statusOf(side: Side): Promise<NormalizedObject> {
  const get = async (path: string, project: Projection, settled: (p: string) => boolean) => {
    let last: NormalizedValue | undefined;
    try {
      await waitFor(
        `${side.name}: status of ${path}`,
        async () => {
          last = project(await side.cluster.client.get<Record<string, unknown>>(path));
          return last !== undefined && settled(JSON.stringify(last)) ? true : undefined;
        },
        { timeoutMs: 90_000 },
      );
    } catch {
      // compared as it stands
    }
    return last ?? {};
  };
  const isTrue = (type: string) => (p: string) =>
    p.includes(`"${type}":{"reason":"${type === 'WaypointAccepted' ? 'Accepted' : type}","status":"True"}`);
  return {
    gateway: await get(PATHS.gateway, projectGatewayStatus, isTrue('Programmed')),
    httproute: await get(
      PATHS.route,
      projectRouteStatus,
      p => isTrue('Accepted')(p) && isTrue('ResolvedRefs')(p),
    ),
    authorizationpolicy: await get(PATHS.policy, projectPolicyStatus, isTrue('WaypointAccepted')),
  };
}

async function shapeOf(side: Side): Promise<NormalizedObject> {
  const get = (path: string, project: Projection) =>
    waitFor(
      `${side.name}: ${path}`,
      async () => {
        const o = await side.cluster.client.find<Record<string, unknown>>(path);
        return o === undefined ? undefined : project(o);
      },
      { timeoutMs: 120_000 },
    );
  return {
    deployment: await get(PATHS.deployment, projectDeployment),
    service: await get(PATHS.service, projectService),
  };
}

describe('waypoint config against upstream istiod, each on its own cluster', () => {
  beforeAll(async () => {
    const istio = await ensureUpstreamIstio(progress('upstream'));
    const gwFiles = await gatewayApiFiles();
    theirs = await startTheirs(istio, gwFiles);
    ours = await startOurs(gwFiles);
  }, 1_200_000);

  afterAll(async () => {
    await runCleanups(cleanups);
  }, 300_000);

  it('sends a waypoint the same route, cluster and RBAC semantics as upstream', async () => {
    theirCapture = await captureOf(theirs);
    ourCapture = await captureOf(ours);
    if (process.env.UPDATE_UPSTREAM_FIXTURE === '1') writeUpstreamFixture(theirCapture);
    const undocumented = record('xds', projectXds(ourCapture), projectXds(theirCapture));
    expect(undocumented).toEqual([]);
  }, 600_000);

  it('publishes the same WDS waypoint fields (Services bound, the waypoint Service and its workload)', async () => {
    const [mine, upstream] = [await wdsOf(ours), await wdsOf(theirs)];
    expect(record('wds', mine, upstream)).toEqual([]);
  }, 300_000);

  it('writes the same status conditions on the Gateway, the HTTPRoute and the AuthorizationPolicy', async () => {
    const [mine, upstream] = [await statusOf(ours), await statusOf(theirs)];
    expect(record('status', mine, upstream)).toEqual([]);
  }, 300_000);

  it('generates a waypoint Deployment and Service of the same shape', async () => {
    const [mine, upstream] = [await shapeOf(ours), await shapeOf(theirs)];
    expect(record('shape', mine, upstream)).toEqual([]);
  }, 300_000);
});
