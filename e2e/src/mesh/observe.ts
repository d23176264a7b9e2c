/**
 * Looking into a running mesh from the host: ztunnel's metrics (15020) and admin `/config_dump`
 * (localhost:15000) are reached by running curl inside the ztunnel pod's network namespace, the
 * same way `kubectl exec` would on a real node. Reading and parsing are `@ambient-mesh/install`'s;
 * this file supplies the netns transport of the local cluster.
 */
import {
  ZTUNNEL_ADMIN_PORT,
  ZTUNNEL_STATS_PORT,
  mtlsConnections,
  ztunnelConfigDump as readConfigDump,
  ztunnelMetrics as readMetrics,
  ztunnelPods as listZtunnelPods,
  type PodHttpGet,
  type ZtunnelPod as InstallZtunnelPod,
} from '@ambient-mesh/install';
import type { KubeClient } from '@ambient-mesh/kube';
import { runCommand, type CommandRunner } from '../exec.ts';
import { podNetnsName, type ClusterLayout } from '../layout.ts';

export { ZTUNNEL_ADMIN_PORT, ZTUNNEL_STATS_PORT, mtlsConnections };

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

export interface ZtunnelPod extends InstallZtunnelPod {
  /** The pod's netns on this machine (`ip netns exec <netns> ...`). */
  readonly netns: string;
}

/** The ztunnel pods that are Running, by node, with their netns on this machine. */
export async function ztunnelPods(client: KubeClient, layout: ClusterLayout): Promise<ZtunnelPod[]> {
  return (await listZtunnelPods(client)).map(p => ({ ...p, netns: podNetnsName(layout, p.uid) }));
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

/** The local cluster's way to reach a ztunnel port: curl in the pod's netns. */
function netnsGetter(pod: ZtunnelPod, run?: CommandRunner): PodHttpGet {
  return (_pod, port, path) => getInNetns(pod.netns, port, path, run);
}

/** ztunnel's metrics, parsed; [] when the pod does not answer. */
export async function ztunnelMetrics(pod: ZtunnelPod, run?: CommandRunner): Promise<MetricSample[]> {
  return readMetrics(pod, netnsGetter(pod, run));
}

/** ztunnel's `/config_dump` (workloads, services, policies, certificates), parsed. */
export async function ztunnelConfigDump(
  pod: ZtunnelPod,
  run?: CommandRunner,
): Promise<Record<string, unknown> | undefined> {
  return readConfigDump(pod, netnsGetter(pod, run));
}

/** The shell command a user runs to see the same thing. */
export function inNetnsCommand(pod: ZtunnelPod, port: number, path: string): string {
  return `sudo ip netns exec ${pod.netns} curl -s http://127.0.0.1:${port}${path}`;
}
