/**
 * `ambientctl proxy-status [proxy]`: the xDS sync state of every ztunnel and waypoint, from
 * istiod's sync view. Each Running istiod pod is asked for `/debug/syncz` on its monitoring port
 * (15014, loopback only, reached through the apiserver's port-forward) — the same per-proxy
 * `SyncStatus` that istiod answers to istioctl's `istio.io/debug/syncz` request on 15012.
 * The sync states and rows come from `@ambient-mesh/mesh-api` (shared with the console's
 * waypoint page); `formatProxyStatus` is pure.
 */
import type { Command } from 'commander';
import { MESH_NAMESPACE, type ZtunnelPod } from '@ambient-mesh/install';
import {
  Port,
  orderTypes,
  parseSyncz,
  proxyStatusRows,
  type ProxyStatusRow,
  type SyncStatusEntry,
} from '@ambient-mesh/mesh-api';
import type { V1Pod } from '@kubernetes/client-node';
import { requireGivenNamespace } from '../cluster.ts';
import type { CommandContext } from '../context.ts';
import { CliError, CliErrorCode } from '../errors.ts';
import { renderData, renderTable, type OutputFormat } from '../output.ts';

export {
  SHORT_TYPE,
  isDebugClient,
  orderTypes,
  proxyStatusRows,
  shortType,
  syncState,
  type ProxyStatusRow,
  type SyncResource,
  type SyncState,
  type SyncStatusEntry,
} from '@ambient-mesh/mesh-api';

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
    const entries = parseSyncz(answer.body);
    if (entries === undefined) throw istiodUnavailable(pod.name, 'the answer is not a list of sync states');
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
