/**
 * Looking at what the cni-agent did, from the host: the nftables ruleset inside a pod's netns,
 * the pods ztunnel holds in its in-pod state (`/config_dump` `workloadState`), the redirection
 * annotation and a pod's log through the API (as `kubectl logs` reads it).
 */
import type { V1Pod } from '@kubernetes/client-node';
import { runCommand, type CommandRunner } from '../exec.ts';
import type { KubeClient } from '@ambient-mesh/kube';

export const REDIRECTION_ANNOTATION = 'ambient.istio.io/redirection';
export const AMBIENT_TABLE_PREFIX = 'istio-ambient-';

/**
 * The ruleset of a netns (`nft -j list ruleset`) as one canonical line per object, without the
 * `handle` fields and the metainfo entry, so two listings compare equal exactly when they hold
 * the same tables, chains, sets and rules (a duplicated rule shows up as a repeated line).
 */
export async function podRuleset(netns: string, run: CommandRunner = runCommand): Promise<string[]> {
  const r = await run(['ip', 'netns', 'exec', netns, 'nft', '-j', 'list', 'ruleset']);
  const parsed = JSON.parse(r.stdout || '{"nftables":[]}') as { nftables?: Record<string, unknown>[] };
  const lines: string[] = [];
  for (const entry of parsed.nftables ?? []) {
    if ('metainfo' in entry) continue;
    lines.push(JSON.stringify(entry, (key, value: unknown) => (key === 'handle' ? undefined : value)));
  }
  return lines;
}

/** The names of the ambient tables (`istio-ambient-*`) in a canonical ruleset. */
export function ambientTables(ruleset: readonly string[]): string[] {
  const names: string[] = [];
  for (const line of ruleset) {
    const entry = JSON.parse(line) as { table?: { name?: string } };
    const name = entry.table?.name;
    if (name?.startsWith(AMBIENT_TABLE_PREFIX) === true) names.push(name);
  }
  return names.sort();
}

/** How many rules the canonical ruleset holds. */
export function ruleCount(ruleset: readonly string[]): number {
  return ruleset.filter(l => l.startsWith('{"rule"')).length;
}

/** Pod uids in ztunnel's in-pod state (`/config_dump` `workloadState`) with their phase. */
export function workloadState(dump: Record<string, unknown> | undefined): Map<string, string> {
  const state = (dump?.workloadState ?? {}) as Record<string, { state?: string }>;
  return new Map(Object.entries(state).map(([uid, e]) => [uid, e.state ?? '']));
}

export function isPodReady(p: V1Pod): boolean {
  return p.status?.conditions?.some(c => c.type === 'Ready' && c.status === 'True') === true;
}

export function redirection(p: V1Pod): string | undefined {
  return p.metadata?.annotations?.[REDIRECTION_ANNOTATION];
}

/** A container's log through the API; '' when the kubelet has none yet. */
export async function podLog(client: KubeClient, namespace: string, name: string): Promise<string> {
  try {
    const text = await client.get<unknown>(`/api/v1/namespaces/${namespace}/pods/${name}/log`);
    return typeof text === 'string' ? text : JSON.stringify(text);
  } catch {
    return '';
  }
}

/** JSON log lines (pino style: `msg` plus fields); other lines are skipped. */
export function jsonLines(text: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // A partial line at the end of the log.
    }
  }
  return out;
}
