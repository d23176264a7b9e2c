/**
 * `ambientctl waypoint generate|apply|list|status|delete`: waypoints as istioctl 1.27 writes
 * them — a Gateway of class `istio-waypoint` with one listener `mesh` on 15008 speaking HBONE and
 * the `istio.io/waypoint-for` label. `apply --enroll-namespace` points the namespace at it
 * (`istio.io/use-waypoint`); `--wait` returns once the Gateway is Programmed.
 */
import type { Command } from 'commander';
import { GatewayClassName, Label, Port, WaypointFor } from '@ambient-mesh/mesh-api';
import { requireNamespace } from '../cluster.ts';
import type { CommandContext } from '../context.ts';
import { CliError, CliErrorCode, usageError } from '../errors.ts';
import { renderData, renderTable, type OutputFormat } from '../output.ts';
import { parseDuration, pollUntil } from '../wait.ts';

export const DEFAULT_WAYPOINT_NAME = 'waypoint';
const FOR_VALUES: readonly string[] = Object.values(WaypointFor);

interface Condition {
  readonly type?: string;
  readonly status?: string;
  readonly reason?: string;
  readonly message?: string;
}

export interface GatewayObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly resourceVersion?: string;
  };
  readonly spec: {
    readonly gatewayClassName: string;
    readonly listeners: readonly {
      readonly name: string;
      readonly port: number;
      readonly protocol: string;
    }[];
  };
  readonly status?: { readonly conditions?: readonly Condition[] };
}

export interface WaypointSpec {
  readonly name: string;
  readonly namespace: string;
  readonly for: string;
  readonly revision?: string | undefined;
}

/** The Gateway `istioctl waypoint generate` prints. */
export function waypointGateway(w: WaypointSpec): GatewayObject {
  if (!FOR_VALUES.includes(w.for)) {
    throw usageError(`--for "${w.for}" is not one of ${FOR_VALUES.join(', ')}`);
  }
  const labels: Record<string, string> = { [Label.waypointFor]: w.for };
  if (w.revision !== undefined && w.revision !== '') labels[Label.revision] = w.revision;
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name: w.name, namespace: w.namespace, labels },
    spec: {
      gatewayClassName: GatewayClassName.waypoint,
      listeners: [{ name: 'mesh', port: Port.hbone, protocol: 'HBONE' }],
    },
  };
}

export function gatewaysPath(namespace?: string, name?: string): string {
  const base = '/apis/gateway.networking.k8s.io/v1';
  if (namespace === undefined) return `${base}/gateways`;
  const ns = `${base}/namespaces/${encodeURIComponent(namespace)}/gateways`;
  return name === undefined ? ns : `${ns}/${encodeURIComponent(name)}`;
}

export function isWaypoint(gw: GatewayObject): boolean {
  return gw.spec.gatewayClassName === GatewayClassName.waypoint;
}

function condition(gw: GatewayObject, type: string): Condition | undefined {
  return gw.status?.conditions?.find(c => c.type === type);
}

export function isProgrammed(gw: GatewayObject): boolean {
  return condition(gw, 'Programmed')?.status === 'True';
}

/** `waypoint list`: NAME REVISION TRAFFIC TYPE PROGRAMMED (with NAMESPACE first under -A). */
export function formatWaypointList(
  gws: readonly GatewayObject[],
  allNamespaces: boolean,
  format: OutputFormat,
): string {
  const wps = gws.filter(isWaypoint);
  if (format !== 'table') return renderData(wps, format);
  const rows = wps.map(g => [
    ...(allNamespaces ? [g.metadata.namespace] : []),
    g.metadata.name,
    g.metadata.labels?.[Label.revision] ?? 'default',
    g.metadata.labels?.[Label.waypointFor] ?? WaypointFor.service,
    condition(g, 'Programmed')?.status ?? 'Unknown',
  ]);
  return renderTable(
    [...(allNamespaces ? ['NAMESPACE'] : []), 'NAME', 'REVISION', 'TRAFFIC TYPE', 'PROGRAMMED'],
    rows,
  );
}

/** `waypoint status`: each waypoint's conditions. */
export function formatWaypointStatus(gws: readonly GatewayObject[], format: OutputFormat): string {
  const wps = gws.filter(isWaypoint);
  if (format !== 'table') {
    return renderData(
      wps.map(g => ({
        namespace: g.metadata.namespace,
        name: g.metadata.name,
        conditions: g.status?.conditions ?? [],
      })),
      format,
    );
  }
  const rows = wps.flatMap(g => {
    const conds = g.status?.conditions ?? [];
    if (conds.length === 0)
      return [
        [g.metadata.namespace, g.metadata.name, 'Unknown', '', '', 'no status yet: is istiod running?'],
      ];
    return conds.map(c => [
      g.metadata.namespace,
      g.metadata.name,
      c.status ?? '',
      c.type ?? '',
      c.reason ?? '',
      c.message ?? '',
    ]);
  });
  return renderTable(['NAMESPACE', 'NAME', 'STATUS', 'TYPE', 'REASON', 'MESSAGE'], rows);
}

interface Globals {
  readonly namespace?: string;
  readonly output: string;
}

function withExamples(cmd: Command, examples: string): Command {
  return cmd.addHelpText('after', `\nExamples:\n${examples}`);
}

export function registerWaypoint(program: Command, ctx: CommandContext): void {
  const wp = withExamples(
    program.command('waypoint').description('Manage waypoint proxies (Gateways of class istio-waypoint)'),
    '  ambientctl waypoint apply -n sample --enroll-namespace --wait\n  ambientctl waypoint list -A',
  );
  const ns = (o: Globals): string => o.namespace ?? ctx.cluster().namespace;

  withExamples(
    wp
      .command('generate')
      .description('Print the Gateway YAML of a waypoint')
      .option('--name <name>', 'the waypoint name', DEFAULT_WAYPOINT_NAME)
      .option('--for <type>', `the traffic it serves: ${FOR_VALUES.join('|')}`, WaypointFor.service)
      .option('-r, --revision <rev>', 'the control-plane revision'),
    '  ambientctl waypoint generate -n sample\n  ambientctl waypoint generate --name wp --for workload -n sample',
  ).action((_o: unknown, cmd: Command) => {
    const o = cmd.optsWithGlobals<Globals & { name: string; for: string; revision?: string }>();
    const gw = waypointGateway({
      name: o.name,
      namespace: o.namespace ?? 'default',
      for: o.for,
      revision: o.revision,
    });
    ctx.out(renderData(gw, ctx.format(o.output) === 'json' ? 'json' : 'yaml'));
  });

  withExamples(
    wp
      .command('apply')
      .description('Create the waypoint Gateway; optionally enroll the namespace and wait for it')
      .option('--name <name>', 'the waypoint name', DEFAULT_WAYPOINT_NAME)
      .option('--for <type>', `the traffic it serves: ${FOR_VALUES.join('|')}`, WaypointFor.service)
      .option('-r, --revision <rev>', 'the control-plane revision')
      .option('--enroll-namespace', `label the namespace ${Label.useWaypoint}=<name>`, false)
      .option('--overwrite', 'replace a waypoint of the same name', false)
      .option('--wait', 'wait until the waypoint is Programmed', false)
      .option('--timeout <duration>', 'how long --wait waits', '2m'),
    '  ambientctl waypoint apply -n sample\n  ambientctl waypoint apply -n sample --enroll-namespace --wait\n  ambientctl waypoint apply --name reviews-wp --for workload --overwrite -n sample',
  ).action(async (_o: unknown, cmd: Command) => {
    const o = cmd.optsWithGlobals<
      Globals & {
        name: string;
        for: string;
        revision?: string;
        enrollNamespace: boolean;
        overwrite: boolean;
        wait: boolean;
        timeout: string;
      }
    >();
    const namespace = ns(o);
    const gw = waypointGateway({ name: o.name, namespace, for: o.for, revision: o.revision });
    const timeoutMs = parseDuration(o.timeout);
    const { client } = ctx.cluster();
    await requireNamespace(client, namespace);
    const existing = await client.find<GatewayObject>(gatewaysPath(namespace, o.name));
    if (existing !== undefined && !o.overwrite) {
      throw new CliError(
        CliErrorCode.Exists,
        `waypoint ${namespace}/${o.name} already exists; use --overwrite to replace it, or --name for another`,
      );
    }
    if (existing === undefined) await client.create(gatewaysPath(namespace), gw);
    else
      await client.put(gatewaysPath(namespace, o.name), {
        ...gw,
        metadata: { ...gw.metadata, resourceVersion: existing.metadata.resourceVersion },
      });
    ctx.out(`waypoint ${namespace}/${o.name} applied\n`);
    if (o.enrollNamespace) {
      await client.mergePatch(`/api/v1/namespaces/${encodeURIComponent(namespace)}`, {
        metadata: { labels: { [Label.useWaypoint]: o.name } },
      });
      ctx.out(`namespace ${namespace} labelled with "${Label.useWaypoint}: ${o.name}"\n`);
    }
    if (o.wait) {
      await pollUntil(
        ctx,
        async () => {
          const live = await client.find<GatewayObject>(gatewaysPath(namespace, o.name));
          const c = live === undefined ? undefined : condition(live, 'Programmed');
          return {
            done: c?.status === 'True',
            status: `waypoint ${namespace}/${o.name}: Programmed=${c?.status ?? 'Unknown'}${c?.reason ? ` (${c.reason})` : ''}`,
          };
        },
        {
          timeoutMs,
          onTimeout: last =>
            `${last} after ${o.timeout}; check istiod is running and its logs, and the waypoint Deployment in ${namespace}`,
        },
      );
    }
  });

  withExamples(
    wp
      .command('list')
      .description('List the waypoints of a namespace (or every namespace with -A)')
      .option('-A, --all-namespaces', 'every namespace', false),
    '  ambientctl waypoint list -n sample\n  ambientctl waypoint list -A -o yaml',
  ).action(async (_o: unknown, cmd: Command) => {
    const o = cmd.optsWithGlobals<Globals & { allNamespaces: boolean }>();
    const { client } = ctx.cluster();
    const namespace = o.allNamespaces ? undefined : ns(o);
    if (namespace !== undefined) await requireNamespace(client, namespace);
    const list = await client.list<GatewayObject>(gatewaysPath(namespace));
    ctx.out(formatWaypointList(list.items, o.allNamespaces, ctx.format(o.output)));
  });

  withExamples(
    wp.command('status [name]').description('Show the status conditions of the waypoints of a namespace'),
    '  ambientctl waypoint status -n sample\n  ambientctl waypoint status waypoint -n sample -o json',
  ).action(async (name: string | undefined, _o: unknown, cmd: Command) => {
    const o = cmd.optsWithGlobals<Globals>();
    const { client } = ctx.cluster();
    const namespace = ns(o);
    await requireNamespace(client, namespace);
    const items = (await client.list<GatewayObject>(gatewaysPath(namespace))).items.filter(
      g => name === undefined || g.metadata.name === name,
    );
    if (name !== undefined && items.length === 0) {
      throw new CliError(
        CliErrorCode.NotFound,
        `no waypoint ${namespace}/${name}; check the name (ambientctl waypoint list -n ${namespace})`,
      );
    }
    ctx.out(formatWaypointStatus(items, ctx.format(o.output)));
  });

  withExamples(
    wp
      .command('delete [names...]')
      .description('Delete waypoints by name, or all of a namespace with --all')
      .option('--all', 'every waypoint of the namespace', false),
    '  ambientctl waypoint delete waypoint -n sample\n  ambientctl waypoint delete --all -n sample',
  ).action(async (names: string[], _o: unknown, cmd: Command) => {
    const o = cmd.optsWithGlobals<Globals & { all: boolean }>();
    if (names.length === 0 && !o.all) throw usageError('name the waypoints to delete, or use --all');
    if (names.length > 0 && o.all) throw usageError('give either waypoint names or --all, not both');
    const { client } = ctx.cluster();
    const namespace = ns(o);
    await requireNamespace(client, namespace);
    const targets = o.all
      ? (await client.list<GatewayObject>(gatewaysPath(namespace))).items
          .filter(isWaypoint)
          .map(g => g.metadata.name)
      : names;
    for (const n of targets) {
      const gone = await client.delete(gatewaysPath(namespace, n));
      if (!gone)
        throw new CliError(
          CliErrorCode.NotFound,
          `no waypoint ${namespace}/${n}; check the name (ambientctl waypoint list -n ${namespace})`,
        );
      ctx.out(`waypoint ${namespace}/${n} deleted\n`);
    }
  });
}
