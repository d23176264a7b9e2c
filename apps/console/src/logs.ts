/**
 * The merged log view of a workload (Kiali's workload logs with ztunnel and waypoint lines): its
 * pods' own log, the lines of every node's ztunnel that concern it, and the access-log lines of the
 * waypoints serving it, ordered by the kubelet's timestamps and tagged by source.
 *
 * Which lines concern the workload:
 * - ztunnel: the access log's `src.workload`/`dst.workload` (with their namespace; JSON or text
 *   lines) names one of its pods or the workload, or the line holds one of its pod IPs as `ip:port`;
 * - waypoint: the line holds one of its pod IPs as `ip:port` (`upstream_host`) or the hostname of a
 *   Service selecting it (`authority`, `upstream_cluster`).
 * Every ztunnel is read, not only those on the pods' nodes: the client side of a connection is
 * logged on the client's node. A pod whose log cannot be read is listed in `errors`; the rest shows.
 */
import { errorMessage } from '@ambient-mesh/errors';
import { MeshIndex, isZtunnelPod, workloadOf } from './mesh-view.ts';
import type { LogLine, LogSource, LogsView } from './model.ts';
import type { MeshSnapshot, PodObject } from './snapshot.ts';

export interface PodLogOptions {
  readonly sinceSeconds: number;
  readonly tailLines: number;
}

/** Reads a pod's log with the kubelet's timestamps (`GET .../pods/<pod>/log?timestamps=true`). */
export type PodLogReader = (namespace: string, pod: string, options: PodLogOptions) => Promise<string>;

export interface LogTarget {
  readonly source: LogSource;
  readonly namespace: string;
  readonly pod: string;
  /** Keeps the lines about the workload (all of them for its own pods). */
  readonly keep: (text: string) => boolean;
}

const GATEWAY_NAME_LABEL = 'gateway.networking.k8s.io/gateway-name';
/** At most this many lines in one answer (the newest). */
export const MAX_LINES = 2_000;

const running = (p: PodObject): boolean => p.status?.phase === 'Running';

/** The pods to read for `namespace/workload`; undefined when no pod belongs to that workload. */
export function logTargets(
  snapshot: MeshSnapshot,
  namespace: string,
  workload: string,
): LogTarget[] | undefined {
  const index = new MeshIndex(snapshot);
  const own = snapshot.pods.filter(
    p => p.metadata.namespace === namespace && workloadOf(p).name === workload,
  );
  if (own.length === 0) return undefined;
  const names = new Set([workload, ...own.map(p => p.metadata.name)]);
  const addresses = own.flatMap(p => (p.status?.podIP === undefined ? [] : [`${p.status.podIP}:`]));
  const hasAddress = (text: string): boolean => addresses.some(a => text.includes(a));

  /** A field of the access log, in JSON (`"src.workload":"x"`) or text (`src.workload=x`) lines. */
  const field = (text: string, fields: Record<string, unknown> | undefined, name: string): unknown => {
    if (fields !== undefined) return fields[name];
    const m = new RegExp(`(?:^|\\s)${name.replace('.', '\\.')}=("(?:[^"\\\\]|\\\\.)*"|\\S+)`).exec(text);
    if (m === null) return undefined;
    const raw = m[1]!;
    return raw.startsWith('"') ? (JSON.parse(raw) as unknown) : raw;
  };
  const aboutWorkload = (text: string): boolean => {
    if (hasAddress(text)) return true;
    let fields: Record<string, unknown> | undefined;
    const brace = text.indexOf('{');
    if (brace >= 0) {
      try {
        fields = JSON.parse(text.slice(brace)) as Record<string, unknown>;
      } catch {
        fields = undefined;
      }
    }
    return (['src', 'dst'] as const).some(end => {
      const workloadName = field(text, fields, `${end}.workload`);
      return (
        field(text, fields, `${end}.namespace`) === namespace &&
        typeof workloadName === 'string' &&
        names.has(workloadName)
      );
    });
  };

  const services = new Set<string>();
  const waypoints = new Set<string>();
  for (const pod of own) {
    for (const svc of index.servicesSelecting(pod)) services.add(`${svc.metadata.name}.${namespace}.svc`);
    const ref = index.waypointForPod(pod);
    if (ref !== undefined) waypoints.add(`${ref.namespace}/${ref.name}`);
  }
  const throughWaypoint = (text: string): boolean =>
    hasAddress(text) || [...services].some(host => text.includes(host));

  const targets: LogTarget[] = own
    .filter(running)
    .map(p => ({ source: 'app', namespace, pod: p.metadata.name, keep: () => true }));
  for (const z of snapshot.pods.filter(p => isZtunnelPod(p) && running(p))) {
    targets.push({
      source: 'ztunnel',
      namespace: z.metadata.namespace ?? '',
      pod: z.metadata.name,
      keep: aboutWorkload,
    });
  }
  for (const w of snapshot.pods) {
    const gw = w.metadata.labels?.[GATEWAY_NAME_LABEL];
    if (gw === undefined || !running(w) || !waypoints.has(`${w.metadata.namespace ?? ''}/${gw}`)) continue;
    targets.push({
      source: 'waypoint',
      namespace: w.metadata.namespace ?? '',
      pod: w.metadata.name,
      keep: throughWaypoint,
    });
  }
  return targets;
}

const STAMPED = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d) (.*)$/;

interface Keyed {
  readonly line: LogLine;
  readonly ms: number;
  readonly nanos: number;
  readonly order: number;
}

/** Splits a `timestamps=true` log into lines; lines without a time keep the previous line's. */
export function parseStampedLog(text: string, source: LogSource, pod: string): Keyed[] {
  const out: Keyed[] = [];
  let ms = 0;
  let nanos = 0;
  let time = '';
  for (const raw of text.split('\n')) {
    if (raw === '') continue;
    const m = STAMPED.exec(raw);
    let body = raw;
    if (m !== null) {
      ms = Date.parse(`${m[1]!}${m[3]!}`);
      nanos = Number((m[2] ?? '').padEnd(9, '0'));
      time = `${m[1]!}${m[2] === undefined ? '' : `.${m[2]}`}${m[3]!}`;
      body = m[4]!;
    }
    out.push({ line: { time, source, pod, text: body }, ms, nanos, order: out.length });
  }
  return out;
}

/** Orders lines from several logs by time (stable within one log). */
export function mergeByTime(logs: readonly (readonly Keyed[])[]): LogLine[] {
  const all = logs.flatMap((l, i) => l.map(k => ({ ...k, log: i })));
  all.sort((a, b) => a.ms - b.ms || a.nanos - b.nanos || a.log - b.log || a.order - b.order);
  return all.slice(-MAX_LINES).map(k => k.line);
}

export async function workloadLogs(
  snapshot: MeshSnapshot,
  read: PodLogReader,
  namespace: string,
  workload: string,
  options: PodLogOptions,
): Promise<LogsView | undefined> {
  const targets = logTargets(snapshot, namespace, workload);
  if (targets === undefined) return undefined;
  const errors: LogsView['errors'][number][] = [];
  const logs = await Promise.all(
    targets.map(async t => {
      try {
        const text = await read(t.namespace, t.pod, options);
        return parseStampedLog(text, t.source, t.pod).filter(k => t.keep(k.line.text));
      } catch (err) {
        errors.push({ source: t.source, pod: t.pod, message: errorMessage(err) });
        return [];
      }
    }),
  );
  return { namespace, workload, lines: mergeByTime(logs), errors };
}
