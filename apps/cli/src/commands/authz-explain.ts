/**
 * `ambientctl x authz explain --from <pod> --to <pod|svc>:<port>`: evaluates the live
 * AuthorizationPolicies with @ambient-mesh/policy-engine exactly as the destination's ztunnel
 * would (L4), names the policy that allows or denies the connection, and warns about policies
 * that only a waypoint enforces when the destination has none. `explainAuthz` is pure.
 */
import type { Command } from 'commander';
import type { V1Namespace, V1Pod, V1Service } from '@kubernetes/client-node';
import { errorMessage } from '@ambient-mesh/errors';
import { Label } from '@ambient-mesh/mesh-api';
import {
  DEFAULT_ROOT_NAMESPACE,
  authorizationMatches,
  authorize,
  compileAuthorizationPolicy,
  parseAuthorizationPolicy,
  selectorMatches,
  type AuthorizationPolicy,
} from '@ambient-mesh/policy-engine';
import { requireNamespace } from '../cluster.ts';
import type { CommandContext } from '../context.ts';
import { CliError, CliErrorCode, usageError } from '../errors.ts';
import { renderData, renderTable, type OutputFormat } from '../output.ts';

export interface AuthzSource {
  readonly namespace: string;
  readonly name: string;
  readonly ip: string;
  readonly serviceAccount: string;
}

export interface AuthzDestination {
  readonly namespace: string;
  readonly name: string;
  readonly ip: string;
  readonly port: number;
  readonly labels: Readonly<Record<string, string>>;
  /** The waypoint the destination uses (`istio.io/use-waypoint`), if any. */
  readonly waypoint?: string | undefined;
}

export interface ExplainInput {
  /** Live AuthorizationPolicy objects, unvalidated. */
  readonly policies: readonly unknown[];
  readonly from: AuthzSource;
  readonly to: AuthzDestination;
  readonly trustDomain?: string;
  readonly rootNamespace?: string;
}

export interface ConsideredPolicy {
  readonly policy: string;
  readonly action: string;
  /** `ztunnel`: enforced at L4 by the destination's ztunnel; `waypoint`: only by a waypoint; `skipped`. */
  readonly enforcedBy: 'ztunnel' | 'waypoint' | 'skipped';
  readonly matches: boolean;
  readonly note: string;
}

export interface Explanation {
  readonly allowed: boolean;
  /** `ns/name` of the deciding policy; undefined when no policy decided. */
  readonly policy: string | undefined;
  readonly reason: string;
  readonly identity: string;
  readonly considered: readonly ConsideredPolicy[];
  readonly warnings: readonly string[];
}

const REASON_TEXT: Readonly<Record<string, string>> = {
  'explicitly-denied': 'a DENY policy matches the connection',
  'no-policies': 'no ALLOW policy applies to the destination and no DENY matches',
  allowed: 'an ALLOW policy matches the connection',
  'not-allowed': 'ALLOW policies apply to the destination but none matches the connection',
  'invalid-connection': 'an address or the identity cannot be parsed; ztunnel fails closed',
};

/** Which live policies apply to the destination workload (root namespace, its namespace, selector). */
function applies(p: AuthorizationPolicy, to: AuthzDestination, root: string): boolean {
  if (p.metadata.namespace !== root && p.metadata.namespace !== to.namespace) return false;
  return selectorMatches(p.spec.selector?.matchLabels, to.labels);
}

export function explainAuthz(input: ExplainInput): Explanation {
  const root = input.rootNamespace ?? DEFAULT_ROOT_NAMESPACE;
  const identity = `spiffe://${input.trustDomain ?? 'cluster.local'}/ns/${input.from.namespace}/sa/${input.from.serviceAccount}`;
  const warnings: string[] = [];
  const considered: ConsideredPolicy[] = [];
  const wire = [];
  const conn = {
    srcIp: input.from.ip,
    srcPort: 0,
    dstIp: input.to.ip,
    dstPort: input.to.port,
    srcIdentity: identity,
  };
  for (const raw of input.policies) {
    let policy: AuthorizationPolicy;
    try {
      policy = parseAuthorizationPolicy(raw);
    } catch (err) {
      const meta = (raw as { metadata?: { namespace?: string; name?: string } }).metadata;
      warnings.push(
        `policy ${meta?.namespace ?? '?'}/${meta?.name ?? '?'} is invalid and ignored: ${errorMessage(err)}`,
      );
      continue;
    }
    if (!applies(policy, input.to, root)) continue;
    const key = `${policy.metadata.namespace}/${policy.metadata.name}`;
    const action = policy.spec.action ?? 'ALLOW';
    const compiled = compileAuthorizationPolicy(policy, { rootNamespace: root });
    const note = compiled.conditions.map(c => c.message).join('; ');
    if (compiled.authorization === undefined) {
      const byWaypoint = (policy.spec.targetRefs?.length ?? 0) > 0 || policy.spec.targetRef !== undefined;
      considered.push({
        policy: key,
        action,
        enforcedBy: byWaypoint ? 'waypoint' : 'skipped',
        matches: false,
        note,
      });
      if (byWaypoint && input.to.waypoint === undefined) {
        warnings.push(
          `policy ${key} is enforced only by a waypoint, and ${input.to.namespace}/${input.to.name} uses none: it has no effect; apply a waypoint (ambientctl waypoint apply -n ${input.to.namespace} --enroll-namespace)`,
        );
      }
      continue;
    }
    wire.push(compiled.authorization);
    considered.push({
      policy: key,
      action,
      enforcedBy: 'ztunnel',
      matches: authorizationMatches(compiled.authorization, conn),
      note,
    });
    if (compiled.httpAttributes.length > 0 && input.to.waypoint === undefined) {
      warnings.push(
        `policy ${key} has HTTP rules (${compiled.httpAttributes.join(', ')}) that ztunnel cannot enforce; the decision depends on a waypoint, and the destination uses none`,
      );
    }
  }
  const decision = authorize(conn, wire);
  return {
    allowed: decision.allowed,
    policy: decision.policy,
    reason: REASON_TEXT[decision.reason] ?? decision.reason,
    identity,
    considered,
    warnings,
  };
}

export function formatExplanation(
  e: Explanation,
  from: AuthzSource,
  to: AuthzDestination,
  format: OutputFormat,
): string {
  if (format !== 'table') return renderData({ from, to, ...e }, format);
  const head =
    `${e.allowed ? 'ALLOW' : 'DENY'}: ${from.namespace}/${from.name} (${e.identity}) -> ` +
    `${to.namespace}/${to.name} ${to.ip}:${to.port}\n` +
    `  ${e.policy === undefined ? 'decided by no single policy' : `decided by policy ${e.policy}`}: ${e.reason}\n`;
  const table =
    e.considered.length === 0
      ? 'no AuthorizationPolicy applies to the destination\n'
      : renderTable(
          ['POLICY', 'ACTION', 'ENFORCED BY', 'MATCHES'],
          e.considered.map(c => [
            c.policy,
            c.action,
            c.enforcedBy,
            c.enforcedBy === 'ztunnel' ? String(c.matches) : '-',
          ]),
        );
  return `${head}\n${table}${e.warnings.map(w => `WARNING: ${w}\n`).join('')}`;
}

/** `ns/name` or `name` (in the default namespace). */
export function splitRef(ref: string, defaultNs: string): { namespace: string; name: string } {
  const i = ref.indexOf('/');
  return i < 0 ? { namespace: defaultNs, name: ref } : { namespace: ref.slice(0, i), name: ref.slice(i + 1) };
}

/** `[ns/]name:port`. */
export function parseTarget(
  ref: string,
  defaultNs: string,
): { namespace: string; name: string; port: number } {
  const i = ref.lastIndexOf(':');
  const port = Number(ref.slice(i + 1));
  if (i < 0 || !Number.isInteger(port) || port <= 0 || port > 65535) {
    throw usageError(`--to "${ref}" needs a port: <pod|svc>:<port>, e.g. echo:8080 or sample/echo:8080`);
  }
  return { ...splitRef(ref.slice(0, i), defaultNs), port };
}

function waypointOf(...labelSets: (Readonly<Record<string, string>> | undefined)[]): string | undefined {
  for (const l of labelSets) {
    const w = l?.[Label.useWaypoint];
    if (w !== undefined) return w === 'none' ? undefined : w;
  }
  return undefined;
}

export function registerAuthz(x: Command, ctx: CommandContext): void {
  const authz = x
    .command('authz')
    .description('Authorization tools')
    .addHelpText(
      'after',
      '\nExamples:\n  ambientctl x authz explain --from sample/client --to echo:8080 -n sample',
    );
  authz
    .command('explain')
    .description('Explain which AuthorizationPolicy allows or denies a connection, as ztunnel decides it')
    .requiredOption('--from <pod>', 'the client pod, [namespace/]name')
    .requiredOption('--to <target>', 'the destination pod or service and port, [namespace/]name:port')
    .option('--trust-domain <domain>', 'the mesh trust domain', 'cluster.local')
    .option('--root-namespace <ns>', 'the mesh root namespace', DEFAULT_ROOT_NAMESPACE)
    .addHelpText(
      'after',
      '\nExamples:\n  ambientctl x authz explain --from sample/client --to sample/echo:8080\n  ambientctl x authz explain --from client --to echo-6d8f-abc:8080 -n sample -o json',
    )
    .action(async (_o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<{
        from: string;
        to: string;
        trustDomain: string;
        rootNamespace: string;
        namespace?: string;
        output: string;
      }>();
      const cluster = ctx.cluster();
      const { client } = cluster;
      const fromRef = splitRef(o.from, cluster.namespace);
      const target = parseTarget(o.to, cluster.namespace);
      await requireNamespace(client, fromRef.namespace);
      await requireNamespace(client, target.namespace);
      const podPath = (ns: string, name: string): string =>
        `/api/v1/namespaces/${encodeURIComponent(ns)}/pods/${encodeURIComponent(name)}`;
      const fromPod = await client.find<V1Pod>(podPath(fromRef.namespace, fromRef.name));
      if (fromPod === undefined) {
        throw new CliError(
          CliErrorCode.NotFound,
          `no pod ${fromRef.namespace}/${fromRef.name}; check --from (kubectl -n ${fromRef.namespace} get pods)`,
        );
      }
      let toPod = await client.find<V1Pod>(podPath(target.namespace, target.name));
      let port = target.port;
      let svc: V1Service | undefined;
      if (toPod === undefined) {
        svc = await client.find<V1Service>(
          `/api/v1/namespaces/${encodeURIComponent(target.namespace)}/services/${encodeURIComponent(target.name)}`,
        );
        if (svc === undefined) {
          throw new CliError(
            CliErrorCode.NotFound,
            `no pod or service ${target.namespace}/${target.name}; check --to`,
          );
        }
        const sp = svc.spec?.ports?.find(p => p.port === target.port);
        if (sp === undefined)
          throw new CliError(
            CliErrorCode.NotFound,
            `service ${target.namespace}/${target.name} has no port ${target.port}; check --to`,
          );
        const selector = Object.entries(svc.spec?.selector ?? {})
          .map(([k, v]) => `${k}=${v}`)
          .join(',');
        const pods = (
          await client.list<V1Pod>(`/api/v1/namespaces/${encodeURIComponent(target.namespace)}/pods`, {
            labelSelector: selector,
          })
        ).items;
        toPod = pods.find(p => p.status?.phase === 'Running');
        if (toPod === undefined)
          throw new CliError(
            CliErrorCode.NotFound,
            `service ${target.namespace}/${target.name} selects no running pod; check its selector and pods`,
          );
        if (typeof sp.targetPort === 'number') port = sp.targetPort;
        else if (typeof sp.targetPort === 'string') {
          const named = toPod.spec?.containers
            .flatMap(c => c.ports ?? [])
            .find(p => p.name === sp.targetPort);
          if (named !== undefined) port = named.containerPort;
        }
      }
      const ns = await client.find<V1Namespace>(`/api/v1/namespaces/${encodeURIComponent(target.namespace)}`);
      const policies = (await client.list<unknown>('/apis/security.istio.io/v1/authorizationpolicies')).items;
      const from: AuthzSource = {
        namespace: fromRef.namespace,
        name: fromRef.name,
        ip: fromPod.status?.podIP ?? '',
        serviceAccount: fromPod.spec?.serviceAccountName ?? 'default',
      };
      const to: AuthzDestination = {
        namespace: target.namespace,
        name: toPod.metadata?.name ?? target.name,
        ip: toPod.status?.podIP ?? '',
        port,
        labels: toPod.metadata?.labels ?? {},
        waypoint: waypointOf(toPod.metadata?.labels, svc?.metadata?.labels, ns?.metadata?.labels),
      };
      const e = explainAuthz({
        policies,
        from,
        to,
        trustDomain: o.trustDomain,
        rootNamespace: o.rootNamespace,
      });
      ctx.out(formatExplanation(e, from, to, ctx.format(o.output)));
    });
}
