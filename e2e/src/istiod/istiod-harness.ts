/**
 * What the istiod cluster files (istiod, istiod-sources) share: their own local cluster with the
 * repository's CRDs and `istio-system` ready, our istiod run in the test process, a delta-xDS
 * client presenting the ztunnel identity, and the comparison of our WDS with upstream istiod's on
 * the same cluster. Every resource started is registered in the file's `cleanups` (run in reverse).
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { applyObjects, renderComponent, withGatewayApiCrds } from '@ambient-mesh/install';
import type { KubeClient, KubeList } from '@ambient-mesh/kube';
import { startCluster, type Cluster } from '../cluster.ts';
import { waitFor } from '../exec.ts';
import { repoRoot } from '../kubelet/images.ts';
import { ensureGatewayApiCrds, gatewayApiCrdObjects } from '../upstream-tools/gateway-api.ts';
import { applyCrds } from '../upstream/crds.ts';
import { ensureUpstreamIstio } from '../upstream/install.ts';
import { prepareIstioSystem, startUpstreamIstiod, type ZtunnelIdentity } from '../upstream/istiod.ts';
import { DeltaXdsClient, type DeltaXdsClientOptions } from '../xds-client/delta-client.ts';
import { ztunnelNode } from '../xds-client/node.ts';
import { diffNormalized, normalizeSnapshot, type NormalizedSnapshot } from '../xds-client/normalize.ts';
import { KNOWN_DIFFERENCES } from './known-differences.ts';
import { startOurIstiod, type OurIstiod } from './our-istiod.ts';

export type Cleanup = () => Promise<void> | void;

/** A status condition of a Kubernetes object. */
export interface KubeCondition {
  readonly type: string;
  readonly status: string;
  readonly reason?: string;
  readonly message?: string;
}

/** The fields the Gateway and binding files read of a Service, Gateway or ServiceEntry. */
export interface GatewayObj {
  readonly metadata?: {
    readonly labels?: Record<string, string>;
    readonly ownerReferences?: readonly { kind: string; name: string }[];
  };
  readonly spec?: Record<string, unknown>;
  readonly status?: { conditions?: KubeCondition[]; addresses?: { type: string; value: string }[] };
}

/** Runs the registered cleanups, last first. */
export async function runCleanups(cleanups: Cleanup[]): Promise<void> {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
}

/**
 * A 2-node local cluster of the file's own name and slot, with the repository's CRDs
 * (deploy/crds) applied and `istio-system` prepared.
 */
export async function startIstiodCluster(name: string, slot: number, cleanups: Cleanup[]): Promise<Cluster> {
  const cluster = await startCluster({
    name,
    slot,
    nodes: 2,
    progress: line => {
      console.log(`[cluster] ${line}`);
    },
  });
  cleanups.push(() => cluster.stop());
  const crdDir = join(repoRoot(), 'deploy', 'crds');
  await applyCrds(
    cluster.client,
    readdirSync(crdDir)
      .filter(f => f.endsWith('.yaml'))
      .map(f => join(crdDir, f)),
  );
  await prepareIstioSystem(cluster.client);
  return cluster;
}

/**
 * The mesh installer's CRD set (the repository's, with the upstream Gateway API bundle) applied
 * the way the installer does, once every CRD is Established.
 */
export async function applyMeshCrdsWithGatewayApi(client: KubeClient): Promise<void> {
  const bundle = gatewayApiCrdObjects(
    await ensureGatewayApiCrds(l => {
      console.log(`[gateway-api] ${l}`);
    }),
  );
  const crds = withGatewayApiCrds(renderComponent('crds'), bundle);
  await applyObjects(client, crds);
  await waitFor('CRDs Established', async () => {
    for (const crd of crds) {
      const live = await client.find<{ status?: { conditions?: { type: string; status: string }[] } }>(
        `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`,
      );
      if (live?.status?.conditions?.find(c => c.type === 'Established')?.status !== 'True') return undefined;
    }
    return true;
  });
}

/** A scratch directory under the system's temporary one, removed by the cleanups. */
export function scratchDir(prefix: string, cleanups: Cleanup[]): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  cleanups.push(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** Our istiod against the cluster, in a scratch directory named after `prefix`. */
export async function startOurIstiodOn(
  cluster: Cluster,
  prefix: string,
  cleanups: Cleanup[],
): Promise<OurIstiod> {
  const ours = await startOurIstiod({
    kubeconfig: cluster.kubeconfig,
    workDir: scratchDir(prefix, cleanups),
  });
  cleanups.push(() => ours.stop());
  return ours;
}

/** The `Node` the ztunnel identity presents. */
export function ztunnelNodeOf(z: ZtunnelIdentity): ReturnType<typeof ztunnelNode> {
  return ztunnelNode({ ip: z.ip, podName: z.podName, namespace: z.namespace, nodeName: z.nodeName });
}

/** A started delta-xDS client of our istiod as the ztunnel identity, closed by the cleanups. */
export function ourXdsClient(
  ours: OurIstiod,
  z: ZtunnelIdentity,
  cleanups: Cleanup[],
  extra: Partial<DeltaXdsClientOptions> = {},
): DeltaXdsClient {
  const client = new DeltaXdsClient({
    address: ours.xdsAddress,
    rootCert: ours.rootCert,
    token: z.token,
    node: ztunnelNodeOf(z),
    ...extra,
  });
  cleanups.push(() => client.close());
  return client.start();
}

export interface UpstreamComparison {
  /** The differences of our WDS (left) from upstream's (right) that known-differences.ts does not list. */
  readonly undocumented: readonly unknown[];
  /** Whether upstream's client reached `settled` in time. */
  readonly theirsSettled: boolean;
}

/**
 * Starts upstream istiod on the same cluster (its ztunnel Pod on `ztunnelNodeName`), waits up to
 * 120 s for its client (presenting `ztunnel`'s node) to hold `settled`, and diffs both clients' normalized
 * WDS, pod IPs aliased to pod names. With DIFF_OUT set, the whole diff is written there.
 */
export async function compareWithUpstream(options: {
  readonly cluster: Cluster;
  readonly ztunnelNodeName: string;
  /** The identity whose `Node` upstream's client presents too (the same as our client's). */
  readonly ztunnel: ZtunnelIdentity;
  readonly mine: DeltaXdsClient;
  readonly settled: (c: DeltaXdsClient) => boolean;
  readonly workDirPrefix: string;
  readonly cleanups: Cleanup[];
}): Promise<UpstreamComparison> {
  const { cluster, cleanups } = options;
  const progress = (line: string): void => {
    console.log(`[upstream] ${line}`);
  };
  const istio = await ensureUpstreamIstio(progress);
  const upstream = await startUpstreamIstiod({
    cluster,
    istio,
    workDir: scratchDir(options.workDirPrefix, cleanups),
    ztunnelNode: options.ztunnelNodeName,
    progress,
  });
  cleanups.push(() => upstream.stop());
  const theirs = new DeltaXdsClient({
    address: upstream.xdsAddress,
    rootCert: upstream.rootCert,
    token: upstream.ztunnel.token,
    node: ztunnelNodeOf(options.ztunnel),
  });
  cleanups.push(() => theirs.close());
  theirs.start();
  // A fixture resource upstream never sends shows up in the diff, which says more than a timeout.
  const theirsSettled = await theirs
    .waitFor('upstream istiod to settle', options.settled, { timeoutMs: 120_000 })
    .then(
      () => true,
      () => false,
    );
  const pods = await cluster.client.get<KubeList<V1Pod>>('/api/v1/pods');
  const ipAliases = new Map(
    pods.items
      .filter(p => (p.status?.podIP ?? '') !== '' && p.spec?.hostNetwork !== true)
      .map(p => [p.status?.podIP ?? '', `pod:${p.metadata?.namespace ?? ''}/${p.metadata?.name ?? ''}`]),
  );
  const left: NormalizedSnapshot = normalizeSnapshot(options.mine, { ipAliases });
  const right: NormalizedSnapshot = normalizeSnapshot(theirs, { ipAliases });
  const differences = diffNormalized(left, right);
  if (process.env.DIFF_OUT !== undefined) {
    writeFileSync(
      process.env.DIFF_OUT,
      JSON.stringify({ upstream: istio.version, differences, left, right }, null, 2),
    );
  }
  return {
    undocumented: differences.filter(d => !KNOWN_DIFFERENCES.some(k => k.matches(d))),
    theirsSettled,
  };
}
