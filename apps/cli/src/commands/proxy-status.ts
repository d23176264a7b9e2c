/**
 * `ambientctl proxy-status [proxy]`: the xDS sync state of every ztunnel and waypoint, from
 * istiod's sync view. Each Running istiod pod is asked for `/debug/syncz` on its monitoring port
 * (15014, loopback only, reached through the apiserver's port-forward) — the same per-proxy
 * `SyncStatus` that istiod answers to istioctl's `istio.io/debug/syncz` request on 15012.
 * `proxyStatusRows` and `formatProxyStatus` are pure.
 */
import type { Command } from 'commander';
import { MESH_NAMESPACE, type ZtunnelPod } from '@ambient-mesh/install';
import { DEBUG_TYPE_PREFIX, Port, TypeUrl } from '@ambient-mesh/mesh-api';
import type { V1Pod } from '@kubernetes/client-node';
import { requireGivenNamespace } from '../cluster.ts';
import type { CommandContext } from '../context.ts';
import { CliError, CliErrorCode } from '../errors.ts';
import { renderData, renderTable, type OutputFormat } from '../output.ts';

/** One resource type's state in istiod's `/debug/syncz` entry. */
export interface SyncResource {
  readonly sent?: string;
  readonly acked?: string;
  readonly lastError?: string;
}

/** One entry of `/debug/syncz` (upstream pilot's `SyncStatus`, the fields we read). */
export interface SyncStatusEntry {
  readonly cluster_id?: string;
  readonly proxy?: string;
  readonly proxy_type?: string;
  readonly istio_version?: string;
  readonly resources?: Readonly<Record<string, SyncResource>>;
}

export type SyncState = 'SYNCED' | 'STALE' | 'NOT SENT' | 'ERROR';

export interface ProxyStatusRow {
  /** `<pod>.<namespace>`. */
  readonly name: string;
  readonly cluster: string;
  readonly istiod: string;
  readonly version: string;
  readonly proxyType: string;
  /** Short type name (`WDS`) to its state. */
  readonly types: Readonly<Record<string, SyncState>>;
}

/** istioctl's short names of xDS types. */
export const SHORT_TYPE: Readonly<Record<string, string>> = {
  [TypeUrl.cluster]: 'CDS',
  [TypeUrl.listener]: 'LDS',
  [TypeUrl.clusterLoadAssignment]: 'EDS',
  [TypeUrl.routeConfiguration]: 'RDS',
  'type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig': 'ECDS',
  [TypeUrl.address]: 'WDS',
  [TypeUrl.authorization]: 'WADS',
  [TypeUrl.secret]: 'SDS',
};

/**
 * The order istioctl prints types in (`4 (CDS,LDS,EDS,RDS)`, Envoy's own order of the xDS APIs);
 * other types (a ztunnel's `WADS,WDS`) follow by name.
 */
const TYPE_ORDER: readonly string[] = ['CDS', 'LDS', 'EDS', 'RDS', 'ECDS', 'SDS'];

export function orderTypes(types: Iterable<string>): string[] {
  const rank = (t: string): number => {
    const i = TYPE_ORDER.indexOf(t);
    return i < 0 ? TYPE_ORDER.length : i;
  };
  return [...types].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
}

export function shortType(typeUrl: string): string {
  return SHORT_TYPE[typeUrl] ?? typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
}

/** A type's state: NACKed (ERROR), the last send ACKed (SYNCED), sent but not ACKed (STALE). */
export function syncState(r: SyncResource): SyncState {
  if (r.lastError !== undefined && r.lastError !== '') return 'ERROR';
  if (r.sent === undefined || r.sent === '') return 'NOT SENT';
  return r.acked === r.sent ? 'SYNCED' : 'STALE';
}

/**
 * A debug client rather than a proxy: istiod's `/debug/syncz` lists every xDS stream, including
 * the short-lived ones of `istioctl proxy-status` / `istioctl x version` (a `sidecar` node that
 * asks only for `istio.io/debug/...` types). istioctl leaves those out of its table (upstream's
 * `isProxy`), and so do we; otherwise a stream still closing when we read would add a row.
 */
export function isDebugClient(e: SyncStatusEntry): boolean {
  if (e.proxy_type !== 'sidecar') return false;
  return Object.keys(e.resources ?? {}).every(url => url.startsWith(DEBUG_TYPE_PREFIX));
}

/**
 * Rows from each istiod's answer (debug clients left out), sorted by proxy name; `filter` keeps
 * one proxy or namespace.
 */
export function proxyStatusRows(
  answers: readonly { readonly istiod: string; readonly entries: readonly SyncStatusEntry[] }[],
  filter: { readonly proxy?: string | undefined; readonly namespace?: string | undefined } = {},
): ProxyStatusRow[] {
  const rows = answers.flatMap(a =>
    a.entries
      .filter(e => !isDebugClient(e))
      .map(e => {
        const types: Record<string, SyncState> = {};
        for (const [url, r] of Object.entries(e.resources ?? {})) types[shortType(url)] = syncState(r);
        return {
          name: e.proxy ?? '',
          cluster: e.cluster_id ?? '',
          istiod: a.istiod,
          version: e.istio_version ?? '',
          proxyType: e.proxy_type ?? '',
          types,
        };
      }),
  );
  return rows
    .filter(r => {
      if (filter.proxy !== undefined) return r.name === filter.proxy || r.name.split('.')[0] === filter.proxy;
      if (filter.namespace !== undefined) return r.name.slice(r.name.indexOf('.') + 1) === filter.namespace;
      return true;
    })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.istiod.localeCompare(b.istiod)));
}

/**
 * The table: `NAME CLUSTER ISTIOD VERSION SUBSCRIBED TYPES` (as istioctl's default), or with
 * `verbose` one column per type seen (`NAME CLUSTER <types> ISTIOD VERSION`), each cell the
 * type's state, `IGNORED` for a type that proxy did not subscribe to.
 */
export function formatProxyStatus(
  rows: readonly ProxyStatusRow[],
  format: OutputFormat,
  verbose = false,
): string {
  if (format !== 'table') return renderData(rows, format);
  if (!verbose) {
    return renderTable(
      ['NAME', 'CLUSTER', 'ISTIOD', 'VERSION', 'SUBSCRIBED TYPES'],
      rows.map(r => {
        const types = orderTypes(Object.keys(r.types));
        return [r.name, r.cluster, r.istiod, r.version, `${types.length} (${types.join(',')})`];
      }),
    );
  }
  const all = orderTypes(new Set(rows.flatMap(r => Object.keys(r.types))));
  return renderTable(
    ['NAME', 'CLUSTER', ...all, 'ISTIOD', 'VERSION'],
    rows.map(r => [r.name, r.cluster, ...all.map(t => r.types[t] ?? 'IGNORED'), r.istiod, r.version]),
  );
}

function isEntries(v: unknown): v is SyncStatusEntry[] {
  return Array.isArray(v) && v.every(e => typeof e === 'object' && e !== null);
}

/** The Running istiod pods of the mesh namespace, as port-forward targets. */
export async function istiodPods(ctx: CommandContext): Promise<ZtunnelPod[]> {
  const { client } = ctx.cluster();
  const pods = await client.list<V1Pod>(`/api/v1/namespaces/${MESH_NAMESPACE}/pods`, {
    labelSelector: 'app=istiod',
  });
  return pods.items
    .filter(p => p.status?.phase === 'Running' && p.metadata?.deletionTimestamp === undefined)
    .map(p => ({
      name: p.metadata?.name ?? '',
      namespace: p.metadata?.namespace ?? MESH_NAMESPACE,
      node: p.spec?.nodeName ?? '',
      uid: p.metadata?.uid ?? '',
      ip: p.status?.podIP ?? '',
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

export function noIstiod(): CliError {
  return new CliError(
    CliErrorCode.IstiodUnavailable,
    `no running istiod pod in ${MESH_NAMESPACE}; check the mesh is installed (kubectl -n ${MESH_NAMESPACE} get pods -l app=istiod)`,
  );
}

export function istiodUnavailable(pod: string, detail: string): CliError {
  return new CliError(
    CliErrorCode.IstiodUnavailable,
    `istiod ${pod} did not answer /debug/syncz on its monitoring port ${Port.istiodMonitoring} (${detail}); ` +
      `check the pod is Ready (kubectl -n ${MESH_NAMESPACE} get pod ${pod}) and its logs`,
  );
}

/** Every istiod's `/debug/syncz`. */
export async function readSyncz(
  ctx: CommandContext,
): Promise<{ readonly istiod: string; readonly entries: SyncStatusEntry[] }[]> {
  const cluster = ctx.cluster();
  const pods = await istiodPods(ctx);
  if (pods.length === 0) throw noIstiod();
  const answers = [];
  for (const pod of pods) {
    ctx.progress.step(`reading /debug/syncz of ${pod.name}`);
    const answer = await cluster.podRequest(pod, Port.istiodMonitoring, 'GET', '/debug/syncz');
    if (answer === undefined) throw istiodUnavailable(pod.name, 'no answer');
    if (answer.status !== 200) throw istiodUnavailable(pod.name, `HTTP ${answer.status}`);
    let entries: unknown;
    try {
      entries = JSON.parse(answer.body);
    } catch {
      entries = undefined;
    }
    if (!isEntries(entries)) throw istiodUnavailable(pod.name, 'the answer is not a list of sync states');
    answers.push({ istiod: pod.name, entries });
  }
  ctx.progress.done(`read the sync state of ${pods.length} istiod pod${pods.length === 1 ? '' : 's'}`);
  return answers;
}

export function registerProxyStatus(program: Command, ctx: CommandContext): void {
  program
    .command('proxy-status [proxy]')
    .alias('ps')
    .description("The xDS sync state of every ztunnel and waypoint, from istiod's sync view")
    .option('-v, --verbose', 'one column per xDS type with its state (SYNCED, STALE, NOT SENT, ERROR)', false)
    .addHelpText(
      'after',
      '\nExamples:\n  ambientctl proxy-status\n  ambientctl proxy-status -v\n  ambientctl proxy-status ztunnel-abcde.istio-system\n  ambientctl ps -n sample -o json',
    )
    .action(async (proxy: string | undefined, _o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<{ verbose: boolean; output: string; namespace?: string }>();
      await requireGivenNamespace(ctx.cluster());
      const rows = proxyStatusRows(await readSyncz(ctx), { proxy, namespace: o.namespace });
      if (proxy !== undefined && rows.length === 0) {
        throw new CliError(
          CliErrorCode.NotFound,
          `no proxy "${proxy}" is connected to istiod; check the name (<pod>.<namespace>, ambientctl proxy-status)`,
        );
      }
      ctx.out(formatProxyStatus(rows, ctx.format(o.output), o.verbose));
    });
}
