/**
 * `ambientctl dataplane enroll|unenroll <namespace>`: sets (removes) the namespace's
 * `istio.io/dataplane-mode=ambient` label, then waits until every running pod of the namespace
 * carries (no longer carries) `ambient.istio.io/redirection: enabled`, which the cni-agent
 * writes once it has redirected the pod. Progress goes to stderr.
 */
import type { Command } from 'commander';
import { Annotation, Label, REDIRECTION_ENABLED } from '@ambient-mesh/mesh-api';
import { requireNamespace } from '../cluster.ts';
import type { CommandContext } from '../context.ts';
import { usageError } from '../errors.ts';
import { renderData, renderTable, type OutputFormat } from '../output.ts';
import { parseDuration, pollUntil } from '../wait.ts';

/** The fields of a Pod enrollment reads (a structural subset of the API's Pod). */
export interface PodLike {
  readonly metadata?: {
    readonly name?: string;
    readonly namespace?: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
    readonly deletionTimestamp?: unknown;
  };
  readonly spec?: { readonly hostNetwork?: boolean };
  readonly status?: { readonly phase?: string };
}

export interface RedirectionProgress {
  readonly done: boolean;
  readonly redirected: number;
  readonly total: number;
  /** Pods not yet in the wanted state. */
  readonly pending: readonly string[];
}

/** Which pods count: running, not host-network, not opted out with `dataplane-mode=none`. */
export function meshCandidate(pod: PodLike): boolean {
  return (
    pod.status?.phase === 'Running' &&
    pod.metadata?.deletionTimestamp === undefined &&
    pod.spec?.hostNetwork !== true &&
    pod.metadata?.labels?.[Label.dataplaneMode] !== 'none'
  );
}

/** How far enrollment (or unenrollment) got, from the namespace's pods. */
export function redirectionProgress(pods: readonly PodLike[], enroll: boolean): RedirectionProgress {
  const candidates = pods.filter(meshCandidate);
  const redirected = candidates.filter(
    p => p.metadata?.annotations?.[Annotation.redirection] === REDIRECTION_ENABLED,
  );
  const pending = candidates
    .filter(p => (p.metadata?.annotations?.[Annotation.redirection] === REDIRECTION_ENABLED) !== enroll)
    .map(p => p.metadata?.name ?? '');
  return { done: pending.length === 0, redirected: redirected.length, total: candidates.length, pending };
}

export function progressLine(namespace: string, p: RedirectionProgress, enroll: boolean): string {
  return enroll
    ? `namespace ${namespace}: ${p.redirected}/${p.total} pods redirected`
    : `namespace ${namespace}: ${p.total - p.redirected}/${p.total} pods released`;
}

/** The pods' redirection state, for `-o`. */
export function formatPods(pods: readonly PodLike[], format: OutputFormat): string {
  const rows = pods.filter(meshCandidate).map(p => ({
    namespace: p.metadata?.namespace ?? '',
    pod: p.metadata?.name ?? '',
    redirection: p.metadata?.annotations?.[Annotation.redirection] ?? 'none',
  }));
  return format === 'table'
    ? renderTable(
        ['NAMESPACE', 'POD', 'REDIRECTION'],
        rows.map(r => [r.namespace, r.pod, r.redirection]),
      )
    : renderData(rows, format);
}

async function setMode(ctx: CommandContext, namespace: string, enroll: boolean, o: Opts): Promise<void> {
  const { client } = ctx.cluster();
  await requireNamespace(client, namespace);
  await client.mergePatch(`/api/v1/namespaces/${encodeURIComponent(namespace)}`, {
    metadata: { labels: { [Label.dataplaneMode]: enroll ? 'ambient' : null } },
  });
  ctx.err(
    `namespace ${namespace} ${enroll ? 'labelled' : 'unlabelled'} ${Label.dataplaneMode}${enroll ? '=ambient' : ''}\n`,
  );
  let pods: PodLike[] = [];
  if (o.wait) {
    await pollUntil(
      ctx,
      async () => {
        pods = (await client.list<PodLike>(`/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`)).items;
        const p = redirectionProgress(pods, enroll);
        return { done: p.done, status: progressLine(namespace, p, enroll) };
      },
      {
        timeoutMs: parseDuration(o.timeout),
        onTimeout: last =>
          `${last} after ${o.timeout}; check the cni-agent and ztunnel pods on those pods' nodes ` +
          `(kubectl -n istio-system get pods -o wide) and their logs`,
      },
    );
  }
  ctx.out(formatPods(pods, ctx.format(o.output)));
}

interface Opts {
  readonly wait: boolean;
  readonly timeout: string;
  readonly output: string;
}

export function registerDataplane(program: Command, ctx: CommandContext): void {
  const dp = program
    .command('dataplane')
    .description('Enroll namespaces in the ambient data plane, or take them out')
    .addHelpText(
      'after',
      '\nExamples:\n  ambientctl dataplane enroll sample\n  ambientctl dataplane unenroll sample',
    );
  for (const enroll of [true, false]) {
    dp.command(`${enroll ? 'enroll' : 'unenroll'} <namespace>`)
      .description(
        enroll
          ? `Label the namespace ${Label.dataplaneMode}=ambient and wait until every pod is redirected`
          : `Remove the namespace's ${Label.dataplaneMode} label and wait until no pod is redirected`,
      )
      .option('--no-wait', 'return once the label is written')
      .option('--timeout <duration>', 'how long to wait for the pods', '2m')
      .addHelpText(
        'after',
        enroll
          ? '\nExamples:\n  ambientctl dataplane enroll sample\n  ambientctl dataplane enroll sample --timeout 5m -o json'
          : '\nExamples:\n  ambientctl dataplane unenroll sample\n  ambientctl dataplane unenroll sample --no-wait',
      )
      .action(async (namespace: string, _o: unknown, cmd: Command) => {
        if (namespace.trim() === '') throw usageError('the namespace is empty; name the namespace to enroll');
        await setMode(ctx, namespace, enroll, cmd.optsWithGlobals<Opts>());
      });
  }
}
