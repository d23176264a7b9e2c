/**
 * Looking into a running mesh from the host: ztunnel's metrics (15020) and admin `/config_dump`
 * (localhost:15000) are reached by running curl inside the ztunnel pod's network namespace, the
 * same way `kubectl exec` would on a real node. Prometheus text is parsed into samples.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { runCommand, type CommandRunner } from '../exec.ts';
import type { KubeClient, KubeList } from '@ambient-mesh/kube';
import { podNetnsName, type ClusterLayout } from '../layout.ts';
import { MESH_NAMESPACE } from './install.ts';

export const ZTUNNEL_ADMIN_PORT = 15000;
export const ZTUNNEL_STATS_PORT = 15020;

/** One Prometheus sample: `name{labels} value`. */
export interface MetricSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const SAMPLE_LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Parses the Prometheus text format (comments skipped; label values unescaped). */
export function parsePrometheus(text: string): MetricSample[] {
  const samples: MetricSample[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const m = SAMPLE_LINE.exec(line);
    if (m === null) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) {
      labels[l[1]!] = l[2]!.replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1');
    }
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

/** The TCP connections ztunnel counted as mTLS, with both SPIFFE identities (destination side). */
export function mtlsConnections(samples: readonly MetricSample[]): MetricSample[] {
  return samples.filter(
    s =>
      s.name === 'istio_tcp_connections_opened_total' &&
      s.labels.connection_security_policy === 'mutual_tls' &&
      s.value > 0,
  );
}

export interface ZtunnelPod {
  readonly name: string;
  readonly node: string;
  readonly uid: string;
  readonly ip: string;
  /** The pod's netns on this machine (`ip netns exec <netns> ...`). */
  readonly netns: string;
}

/** The ztunnel pods that are Running, by node. */
export async function ztunnelPods(client: KubeClient, layout: ClusterLayout): Promise<ZtunnelPod[]> {
  const list = await client.get<KubeList<V1Pod>>(`/api/v1/namespaces/${MESH_NAMESPACE}/pods`, {
    labelSelector: 'app=ztunnel',
  });
  return list.items
    .filter(p => p.status?.phase === 'Running' && p.metadata?.deletionTimestamp === undefined)
    .map(p => ({
      name: p.metadata?.name ?? '',
      node: p.spec?.nodeName ?? '',
      uid: p.metadata?.uid ?? '',
      ip: p.status?.podIP ?? '',
      netns: podNetnsName(layout, p.metadata?.uid ?? ''),
    }));
}

/** GETs `http://127.0.0.1:<port><path>` inside a pod's netns; undefined when it does not answer. */
export async function getInNetns(
  netns: string,
  port: number,
  path: string,
  run: CommandRunner = runCommand,
): Promise<string | undefined> {
  const r = await run(
    ['ip', 'netns', 'exec', netns, 'curl', '-sf', '--max-time', '5', `http://127.0.0.1:${port}${path}`],
    { allowFailure: true },
  );
  return r.code === 0 ? r.stdout : undefined;
}

/** ztunnel's metrics, parsed; [] when the pod does not answer. */
export async function ztunnelMetrics(pod: ZtunnelPod, run?: CommandRunner): Promise<MetricSample[]> {
  return parsePrometheus((await getInNetns(pod.netns, ZTUNNEL_STATS_PORT, '/metrics', run)) ?? '');
}

/** ztunnel's `/config_dump` (workloads, services, policies, certificates), parsed. */
export async function ztunnelConfigDump(
  pod: ZtunnelPod,
  run?: CommandRunner,
): Promise<Record<string, unknown> | undefined> {
  const text = await getInNetns(pod.netns, ZTUNNEL_ADMIN_PORT, '/config_dump', run);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** The shell command a user runs to see the same thing. */
export function inNetnsCommand(pod: ZtunnelPod, port: number, path: string): string {
  return `sudo ip netns exec ${pod.netns} curl -s http://127.0.0.1:${port}${path}`;
}
