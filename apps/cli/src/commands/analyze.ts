/**
 * `ambientctl analyze`: ambient analyzers over the live configuration. Each analyzer is a pure
 * function of a snapshot (namespaces, pods, services, nodes, ztunnel pods, waypoint Gateways,
 * AuthorizationPolicies) returning messages; Istio's message codes are used where they exist
 * (IST0167 IneffectivePolicy, IST0171 NegativeConditionStatus), ours (AMB…) elsewhere.
 */
import type { Command } from 'commander';
import { GatewayClassName, Label } from '@ambient-mesh/mesh-api';
import { compileAuthorizationPolicy, parseAuthorizationPolicy } from '@ambient-mesh/policy-engine';
import { ztunnelPods } from '@ambient-mesh/install';
import type { KubeClient } from '@ambient-mesh/kube';
import { requireGivenNamespace } from '../cluster.ts';
import type { CommandContext } from '../context.ts';
import { CliError, CliErrorCode } from '../errors.ts';
import { renderData, type OutputFormat } from '../output.ts';

export const AnalyzerCode = {
  /** Istio: a policy that has no effect. */
  IneffectivePolicy: 'IST0167',
  /** Istio: a resource reports a negative status condition (e.g. a waypoint not Programmed). */
  NegativeConditionStatus: 'IST0171',
  /** An ambient namespace has no ztunnel on some node that runs its pods. */
  NoZtunnelOnNode: 'AMB0001',
  /** A workload, service or namespace uses a waypoint but is not in the ambient data plane. */
  WaypointOutsideAmbient: 'AMB0002',
  /** `istio.io/use-waypoint` names a waypoint that does not exist. */
  WaypointNotFound: 'AMB0003',
} as const;

export interface Meta {
  readonly name: string;
  readonly namespace?: string | undefined;
  readonly labels?: Readonly<Record<string, string>> | undefined;
}

export interface Snapshot {
  readonly namespaces: readonly { readonly metadata: Meta }[];
  readonly pods: readonly { readonly metadata: Meta; readonly node: string }[];
  readonly services: readonly { readonly metadata: Meta }[];
  readonly ztunnelNodes: readonly string[];
  readonly gateways: readonly {
    readonly metadata: Meta;
    readonly className: string;
    readonly conditions: readonly {
      readonly type?: string;
      readonly status?: string;
      readonly message?: string;
    }[];
  }[];
  /** Unvalidated AuthorizationPolicy objects. */
  readonly policies: readonly unknown[];
}

export interface AnalyzerMessage {
  readonly level: 'Error' | 'Warning' | 'Info';
  readonly code: string;
  /** `Kind ns/name` of the resource the message is about. */
  readonly resource: string;
  readonly message: string;
}

function ambientNamespaces(s: Snapshot): Set<string> {
  return new Set(
    s.namespaces
      .filter(n => n.metadata.labels?.[Label.dataplaneMode] === 'ambient')
      .map(n => n.metadata.name),
  );
}

function inAmbient(labels: Meta['labels'], namespace: string, ambient: Set<string>): boolean {
  const mode = labels?.[Label.dataplaneMode];
  if (mode === 'none') return false;
  return mode === 'ambient' || ambient.has(namespace);
}

export function analyze(s: Snapshot): AnalyzerMessage[] {
  const out: AnalyzerMessage[] = [];
  const ambient = ambientNamespaces(s);
  const ztunnelNodes = new Set(s.ztunnelNodes);
  const waypoints = new Set(
    s.gateways
      .filter(g => g.className === GatewayClassName.waypoint)
      .map(g => `${g.metadata.namespace ?? ''}/${g.metadata.name}`),
  );

  // A namespace labelled for ambient with no ztunnel on some node running its pods.
  for (const ns of ambient) {
    const missing = [
      ...new Set(
        s.pods.filter(p => p.metadata.namespace === ns && !ztunnelNodes.has(p.node)).map(p => p.node),
      ),
    ]
      .filter(n => n !== '')
      .sort();
    if (missing.length > 0) {
      out.push({
        level: 'Error',
        code: AnalyzerCode.NoZtunnelOnNode,
        resource: `Namespace ${ns}`,
        message: `namespace ${ns} is in the ambient data plane but node${missing.length === 1 ? '' : 's'} ${missing.join(', ')} run${missing.length === 1 ? 's' : ''} its pods with no ztunnel; check the ztunnel DaemonSet's pods there`,
      });
    }
  }

  // Waypoint labels outside ambient, and waypoints that do not exist.
  const users: { kind: string; meta: Meta; namespace: string; ambientCheck: boolean }[] = [
    ...s.namespaces.map(n => ({
      kind: 'Namespace',
      meta: n.metadata,
      namespace: n.metadata.name,
      ambientCheck: true,
    })),
    ...s.pods.map(p => ({
      kind: 'Pod',
      meta: p.metadata,
      namespace: p.metadata.namespace ?? '',
      ambientCheck: true,
    })),
    ...s.services.map(v => ({
      kind: 'Service',
      meta: v.metadata,
      namespace: v.metadata.namespace ?? '',
      ambientCheck: false,
    })),
  ];
  for (const u of users) {
    const wp = u.meta.labels?.[Label.useWaypoint];
    if (wp === undefined || wp === 'none') continue;
    const ref = u.kind === 'Namespace' ? u.meta.name : `${u.namespace}/${u.meta.name}`;
    if (u.ambientCheck && !inAmbient(u.meta.labels, u.namespace, ambient)) {
      out.push({
        level: 'Warning',
        code: AnalyzerCode.WaypointOutsideAmbient,
        resource: `${u.kind} ${ref}`,
        message: `${u.kind} ${ref} is labelled ${Label.useWaypoint}=${wp} but is not in the ambient data plane, so the waypoint is never used; label it (or its namespace) ${Label.dataplaneMode}=ambient`,
      });
    }
    const wpNs = u.meta.labels?.[Label.useWaypointNamespace] ?? u.namespace;
    if (!waypoints.has(`${wpNs}/${wp}`)) {
      out.push({
        level: 'Error',
        code: AnalyzerCode.WaypointNotFound,
        resource: `${u.kind} ${ref}`,
        message: `${u.kind} ${ref} uses waypoint ${wpNs}/${wp}, which does not exist; apply it (ambientctl waypoint apply -n ${wpNs} --name ${wp})`,
      });
    }
  }

  // Waypoints with a negative status condition.
  for (const g of s.gateways.filter(x => x.className === GatewayClassName.waypoint)) {
    for (const c of g.conditions) {
      if ((c.type === 'Programmed' || c.type === 'Accepted') && c.status === 'False') {
        out.push({
          level: 'Error',
          code: AnalyzerCode.NegativeConditionStatus,
          resource: `Gateway ${g.metadata.namespace ?? ''}/${g.metadata.name}`,
          message: `condition ${c.type} is False${c.message === undefined ? '' : `: ${c.message}`}`,
        });
      }
    }
  }

  // Policies with no effect in ambient: HTTP rules enforced by ztunnel only, with no waypoint.
  for (const raw of s.policies) {
    let policy;
    try {
      policy = parseAuthorizationPolicy(raw);
    } catch {
      continue;
    }
    const ns = policy.metadata.namespace;
    if (!ambient.has(ns)) continue;
    const compiled = compileAuthorizationPolicy(policy);
    const nsWaypoint = s.namespaces.find(n => n.metadata.name === ns)?.metadata.labels?.[Label.useWaypoint];
    if (compiled.httpAttributes.length > 0 && (nsWaypoint === undefined || nsWaypoint === 'none')) {
      out.push({
        level: 'Warning',
        code: AnalyzerCode.IneffectivePolicy,
        resource: `AuthorizationPolicy ${ns}/${policy.metadata.name}`,
        message: `the policy's HTTP rules (${compiled.httpAttributes.join(', ')}) have no effect without a waypoint: ztunnel enforces L4 only; add a waypoint and target it with targetRefs`,
      });
    }
  }
  return out.sort((a, b) => a.code.localeCompare(b.code) || a.resource.localeCompare(b.resource));
}

export function formatMessages(messages: readonly AnalyzerMessage[], format: OutputFormat): string {
  if (format !== 'table') return renderData(messages, format);
  if (messages.length === 0) return '✔ No validation issues found when analyzing the cluster.\n';
  return messages.map(m => `${m.level} [${m.code}] (${m.resource}) ${m.message}\n`).join('');
}

interface Obj {
  readonly metadata?: {
    readonly name?: string;
    readonly namespace?: string;
    readonly labels?: Record<string, string>;
  };
}

function meta(o: Obj): Meta {
  return { name: o.metadata?.name ?? '', namespace: o.metadata?.namespace, labels: o.metadata?.labels };
}

/** The live configuration the analyzers read. */
export async function gatherSnapshot(client: KubeClient): Promise<Snapshot> {
  const list = async <T>(path: string): Promise<T[]> => {
    const found = await client.find<{ items: T[] }>(path);
    return found?.items ?? [];
  };
  const pods = await list<Obj & { spec?: { nodeName?: string; hostNetwork?: boolean } }>('/api/v1/pods');
  const gateways = await list<
    Obj & {
      spec?: { gatewayClassName?: string };
      status?: { conditions?: { type?: string; status?: string; message?: string }[] };
    }
  >('/apis/gateway.networking.k8s.io/v1/gateways');
  return {
    namespaces: (await list<Obj>('/api/v1/namespaces')).map(n => ({ metadata: meta(n) })),
    pods: pods
      .filter(p => p.spec?.hostNetwork !== true)
      .map(p => ({ metadata: meta(p), node: p.spec?.nodeName ?? '' })),
    services: (await list<Obj>('/api/v1/services')).map(v => ({ metadata: meta(v) })),
    ztunnelNodes: (await ztunnelPods(client)).map(z => z.node),
    gateways: gateways.map(g => ({
      metadata: meta(g),
      className: g.spec?.gatewayClassName ?? '',
      conditions: g.status?.conditions ?? [],
    })),
    policies: await list<unknown>('/apis/security.istio.io/v1/authorizationpolicies'),
  };
}

/** The namespace a message is about (`Namespace ns` or `Kind ns/name`); undefined for cluster-scoped. */
export function messageNamespace(m: AnalyzerMessage): string | undefined {
  const [kind, ref = ''] = m.resource.split(' ');
  if (kind === 'Namespace') return ref;
  return ref.includes('/') ? ref.slice(0, ref.indexOf('/')) : undefined;
}

export function registerAnalyze(program: Command, ctx: CommandContext): void {
  program
    .command('analyze')
    .description('Analyze the live configuration for ambient problems (Istio message codes where they exist)')
    .addHelpText(
      'after',
      '\nExamples:\n  ambientctl analyze\n  ambientctl analyze -n sample\n  ambientctl analyze -o json',
    )
    .action(async (_o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<{ output: string }>();
      const cluster = ctx.cluster();
      await requireGivenNamespace(cluster);
      const snapshot = await gatherSnapshot(cluster.client);
      // The whole cluster by default (ambient problems cross namespaces); -n keeps one namespace.
      const messages = analyze(snapshot).filter(
        m => !cluster.namespaceGiven || messageNamespace(m) === cluster.namespace,
      );
      ctx.out(formatMessages(messages, ctx.format(o.output)));
      if (messages.some(m => m.level === 'Error')) {
        throw new CliError(
          CliErrorCode.Failed,
          `analyze found ${messages.filter(m => m.level === 'Error').length} error(s) (listed above)`,
        );
      }
    });
}
