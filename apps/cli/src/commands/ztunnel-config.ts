/**
 * `ambientctl ztunnel-config` (alias `zc`): what a ztunnel believes, from its `/config_dump`,
 * with istioctl 1.27's subcommands and table columns. The formatting functions are pure (a
 * decoded dump and a filter in, text out); the command part fetches dumps (port-forward to each
 * ztunnel, or `-f <file>`) and prints.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { ZTUNNEL_ADMIN_PORT, ztunnelConfigDump, ztunnelPods, type ZtunnelPod } from '@ambient-mesh/install';
import { CliError, CliErrorCode, usageError, ztunnelUnavailable } from '../errors.ts';
import { renderData, renderTable, type OutputFormat } from '../output.ts';
import { decodeZtunnelDump, parseZtunnelDump, type DumpService, type ZtunnelDump } from '../ztunnel-dump.ts';
import { requireGivenNamespace } from '../cluster.ts';
import type { CommandContext } from '../context.ts';

export const ZTUNNEL_CONFIG_SECTIONS = [
  'workload',
  'service',
  'policy',
  'certificate',
  'connections',
  'all',
] as const;
export type ZtunnelConfigSection = (typeof ZTUNNEL_CONFIG_SECTIONS)[number];

export interface ZtunnelFilter {
  readonly namespace?: string | undefined;
  readonly node?: string | undefined;
  readonly address?: string | undefined;
}

const eq = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();

export const WORKLOAD_HEADER = ['NAMESPACE', 'POD NAME', 'ADDRESS', 'NODE', 'WAYPOINT', 'PROTOCOL'] as const;
export const SERVICE_HEADER = ['NAMESPACE', 'SERVICE NAME', 'SERVICE VIP', 'WAYPOINT', 'ENDPOINTS'] as const;
export const POLICY_HEADER = ['NAMESPACE', 'POLICY NAME', 'ACTION', 'SCOPE'] as const;
export const CERTIFICATE_HEADER = [
  'CERTIFICATE NAME',
  'TYPE',
  'STATUS',
  'VALID CERT',
  'SERIAL NUMBER',
  'NOT AFTER',
  'NOT BEFORE',
] as const;
export const CONNECTION_HEADER = [
  'WORKLOAD',
  'DIRECTION',
  'LOCAL',
  'REMOTE',
  'REMOTE TARGET',
  'PROTOCOL',
] as const;

/** The name of the waypoint service a `waypoint.destination` points at; `None` without one. */
export function waypointName(destination: string | undefined, services: readonly DumpService[]): string {
  if (destination === undefined) return 'None';
  const slash = destination.indexOf('/');
  const tail = slash < 0 ? destination : destination.slice(slash + 1);
  const svc = services.find(
    s =>
      s.hostname === tail ||
      `${s.namespace}/${s.hostname}` === destination ||
      s.vips.some(v => v === destination || v.slice(v.indexOf('/') + 1) === tail),
  );
  return svc?.name ?? 'NA';
}

export function filterWorkloads(dump: ZtunnelDump, f: ZtunnelFilter): ZtunnelDump['workloads'] {
  return dump.workloads
    .filter(
      w =>
        (f.namespace === undefined || eq(w.namespace, f.namespace)) &&
        (f.node === undefined || eq(w.node, f.node)) &&
        (f.address === undefined || w.workloadIps.some(ip => eq(ip, f.address ?? ''))),
    )
    .slice()
    .sort((a, b) =>
      `${a.namespace}.${a.name}` === `${b.namespace}.${b.name}`
        ? a.node.localeCompare(b.node)
        : `${a.namespace}.${a.name}` < `${b.namespace}.${b.name}`
          ? -1
          : 1,
    );
}

export function workloadRows(dump: ZtunnelDump, f: ZtunnelFilter): string[][] {
  return filterWorkloads(dump, f).map(w => [
    w.namespace,
    w.name,
    w.workloadIps[0] ?? '',
    w.node,
    waypointName(w.waypoint, dump.services),
    w.protocol,
  ]);
}

function byNsName<T extends { namespace: string; name: string }>(a: T, b: T): number {
  return a.namespace === b.namespace ? a.name.localeCompare(b.name) : a.namespace.localeCompare(b.namespace);
}

export function filterServices(dump: ZtunnelDump, f: ZtunnelFilter): DumpService[] {
  return dump.services
    .filter(s => f.namespace === undefined || eq(s.namespace, f.namespace))
    .slice()
    .sort((a, b) => byNsName(a, b) || a.hostname.localeCompare(b.hostname));
}

export function serviceRows(dump: ZtunnelDump, f: ZtunnelFilter): string[][] {
  return filterServices(dump, f).map(s => {
    const eps = Object.values(s.endpoints);
    const healthy = eps.filter(e => e.status === 'Healthy').length;
    const vip = s.vips[0] ?? '';
    return [
      s.namespace,
      s.name,
      vip.slice(vip.indexOf('/') + 1),
      waypointName(s.waypoint, dump.services),
      `${healthy}/${eps.length}`,
    ];
  });
}

export function policyRows(dump: ZtunnelDump, f: ZtunnelFilter): string[][] {
  return dump.policies
    .filter(p => f.namespace === undefined || eq(p.namespace, f.namespace))
    .slice()
    .sort(byNsName)
    .map(p => [p.namespace, p.name, p.action, p.scope]);
}

/** A decimal serial (upstream ztunnel) as the hex istioctl prints; other text unchanged. */
export function serialHex(serial: string): string {
  return /^\d+$/.test(serial) ? BigInt(serial).toString(16) : serial;
}

export function certificateRows(dump: ZtunnelDump, now: Date): string[][] {
  return dump.certificates.flatMap(c => {
    const certs = [
      ...c.certChain.map((cert, i) => ({ cert, type: i === 0 ? 'Leaf' : 'Intermediate' })),
      ...c.rootCerts.map(cert => ({ cert, type: 'Root' })),
    ];
    if (certs.length === 0) return [[c.identity, 'NA', c.state, 'false', 'NA', 'NA', 'NA']];
    return certs.map(({ cert, type }) => {
      const from = Date.parse(cert.validFrom);
      const to = Date.parse(cert.expirationTime);
      const valid = c.state === 'Available' && from <= now.getTime() && now.getTime() <= to;
      return [
        c.identity,
        type,
        c.state,
        String(valid),
        serialHex(cert.serialNumber),
        cert.expirationTime,
        cert.validFrom,
      ];
    });
  });
}

function portOf(addr: string): string {
  return addr.slice(addr.lastIndexOf(':') + 1);
}

export function connectionRows(dump: ZtunnelDump, f: ZtunnelFilter): string[][] {
  const hbone = new Set(dump.workloads.filter(w => w.protocol === 'HBONE').map(w => w.uid));
  return dump.workloadState
    .filter(s => f.namespace === undefined || eq(s.namespace, f.namespace))
    .slice()
    .sort(byNsName)
    .flatMap(s => {
      const name = `${s.name}.${s.namespace}`;
      return [
        ...s.inbound.map(c => [
          name,
          'Inbound',
          c.actualDst,
          c.src,
          c.originalDst === c.actualDst ? '' : c.originalDst,
          hbone.has(s.uid) ? 'HBONE' : 'TCP',
        ]),
        ...s.outbound.map(c => [
          name,
          'Outbound',
          c.src,
          c.actualDst,
          c.originalDst,
          portOf(c.actualDst) === '15008' ? 'HBONE' : 'TCP',
        ]),
      ];
    });
}

/** The data `-o json|yaml` prints for a section: the dump's own entries, filtered. */
export function sectionData(section: ZtunnelConfigSection, dump: ZtunnelDump, f: ZtunnelFilter): unknown {
  switch (section) {
    case 'workload':
      return filterWorkloads(dump, f).map(w => w.raw);
    case 'service':
      return filterServices(dump, f).map(s => s.raw);
    case 'policy':
      return dump.policies
        .filter(p => f.namespace === undefined || eq(p.namespace, f.namespace))
        .map(p => p.raw);
    case 'certificate':
      return dump.raw['certificates'] ?? [];
    case 'connections':
      return dump.raw['workloadState'] ?? {};
    case 'all':
      return dump.raw;
  }
}

/** One section of one dump, in the chosen format. */
export function formatSection(
  section: ZtunnelConfigSection,
  dump: ZtunnelDump,
  f: ZtunnelFilter,
  format: OutputFormat,
  now: Date,
): string {
  if (format !== 'table') return renderData(sectionData(section, dump, f), format);
  switch (section) {
    case 'workload':
      return renderTable(WORKLOAD_HEADER, workloadRows(dump, f));
    case 'service':
      return renderTable(SERVICE_HEADER, serviceRows(dump, f));
    case 'policy':
      return renderTable(POLICY_HEADER, policyRows(dump, f));
    case 'certificate':
      return renderTable(CERTIFICATE_HEADER, certificateRows(dump, now));
    case 'connections':
      return renderTable(CONNECTION_HEADER, connectionRows(dump, f));
    case 'all':
      return (['workload', 'service', 'policy', 'certificate', 'connections'] as const)
        .map(s => formatSection(s, dump, f, 'table', now))
        .join('\n');
  }
}

/** Which ztunnels to ask: the named pod, the one on `--node`, else all (per-node sections) or the first. */
export function selectZtunnels(
  pods: readonly ZtunnelPod[],
  section: ZtunnelConfigSection,
  opts: { readonly pod?: string | undefined; readonly node?: string | undefined },
): ZtunnelPod[] {
  if (opts.pod !== undefined) {
    const name = opts.pod.split('.')[0] ?? opts.pod;
    const found = pods.filter(p => p.name === name);
    if (found.length === 0) {
      throw new CliError(
        CliErrorCode.NotFound,
        `no running ztunnel pod "${name}"; check the name (kubectl -n istio-system get pods -l app=ztunnel)`,
      );
    }
    return found;
  }
  if (opts.node !== undefined) {
    const found = pods.filter(p => p.node === opts.node);
    if (found.length === 0) {
      throw new CliError(
        CliErrorCode.NoZtunnel,
        `no running ztunnel on node "${opts.node}"; check the node name (kubectl get nodes) and the ztunnel DaemonSet's pods there`,
      );
    }
    return found;
  }
  const sorted = [...pods].sort((a, b) => a.node.localeCompare(b.node));
  return section === 'certificate' || section === 'connections' ? sorted : sorted.slice(0, 1);
}

async function loadDumps(
  ctx: CommandContext,
  section: ZtunnelConfigSection,
  opts: { file?: string; node?: string; pod?: string },
): Promise<ZtunnelDump[]> {
  if (opts.file !== undefined) {
    let text: string;
    try {
      text = opts.file === '-' ? await ctx.readStdin() : await readFile(opts.file, 'utf8');
    } catch (err) {
      throw new CliError(CliErrorCode.NotFound, `cannot read the dump file ${opts.file}; check the path`, {
        cause: err,
      });
    }
    return [parseZtunnelDump(text, opts.file)];
  }
  const cluster = ctx.cluster();
  await requireGivenNamespace(cluster);
  const pods = await ztunnelPods(cluster.client);
  if (pods.length === 0) {
    throw new CliError(
      CliErrorCode.NoZtunnel,
      'no running ztunnel pod in istio-system; check the mesh is installed (ambientctl install) and the ztunnel DaemonSet is Ready',
    );
  }
  const chosen = selectZtunnels(pods, section, opts);
  const dumps: ZtunnelDump[] = [];
  for (const pod of chosen) {
    ctx.progress.step(`reading /config_dump of ${pod.name} (node ${pod.node})`);
    const raw = await ztunnelConfigDump(pod, cluster.podGet);
    if (raw === undefined) throw ztunnelUnavailable(pod.name, pod.node);
    dumps.push(decodeZtunnelDump(raw, `${pod.name}'s /config_dump`));
  }
  ctx.progress.done(`read ${dumps.length} ztunnel config dump${dumps.length === 1 ? '' : 's'}`);
  return dumps;
}

/** Several dumps (per-node sections) merged into one for printing. */
export function mergeDumps(dumps: readonly ZtunnelDump[]): ZtunnelDump {
  if (dumps.length === 1 && dumps[0] !== undefined) return dumps[0];
  return {
    workloads: dumps[0]?.workloads ?? [],
    services: dumps[0]?.services ?? [],
    policies: dumps[0]?.policies ?? [],
    certificates: dumps.flatMap(d => d.certificates),
    workloadState: dumps.flatMap(d => d.workloadState),
    raw: {
      ...(dumps[0]?.raw ?? {}),
      certificates: dumps.flatMap((d): unknown[] => {
        const certs: unknown = d.raw['certificates'];
        return Array.isArray(certs) ? (certs as unknown[]) : [];
      }),
      workloadState: Object.assign({}, ...dumps.map(d => d.raw['workloadState'] ?? {})) as unknown,
    },
  };
}

/** The admin request `zc log` sends: GET reads the level, POST `?level=` sets it (`reset` too). */
export function loggingRequest(opts: {
  readonly level?: string | undefined;
  readonly reset?: boolean | undefined;
}): {
  readonly method: 'GET' | 'POST';
  readonly path: string;
} {
  if (opts.reset === true && opts.level !== undefined)
    throw usageError('give either --level or --reset, not both');
  if (opts.reset === true) return { method: 'POST', path: '/logging?level=reset' };
  if (opts.level === undefined) return { method: 'GET', path: '/logging' };
  if (!/^[A-Za-z0-9_:,.=-]+$/.test(opts.level)) {
    throw usageError(
      `invalid --level "${opts.level}"; use a level (off, error, warn, info, debug, trace) or scope:level pairs separated by commas`,
    );
  }
  return { method: 'POST', path: `/logging?level=${encodeURIComponent(opts.level)}` };
}

/** One ztunnel's answer, as istioctl prints it: `<pod>.<namespace>:` then the answer. */
export function formatLogAnswer(pod: ZtunnelPod, body: string): string {
  return `${pod.name}.${pod.namespace}:\n${body.endsWith('\n') ? body : `${body}\n`}`;
}

function registerLog(zc: Command, ctx: CommandContext): void {
  zc.command('log [ztunnel-pod]')
    .description("Read or set ztunnel's log level (every ztunnel, or one pod or node)")
    .option('--level <level>', 'the level to set: off|error|warn|info|debug|trace, or scope:level,...')
    .option('--reset', 'reset the level to the one ztunnel started with')
    .option('--node <node>', 'only the ztunnel on this node')
    .addHelpText(
      'after',
      '\nExamples:\n  ambientctl ztunnel-config log\n  ambientctl zc log ztunnel-abcde --level debug\n  ambientctl zc log --node worker-1 --reset',
    )
    .action(async (pod: string | undefined, _o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<{ level?: string; reset?: boolean; node?: string }>();
      const req = loggingRequest(o);
      const cluster = ctx.cluster();
      const pods = await ztunnelPods(cluster.client);
      const chosen = selectZtunnels(pods, 'connections', { pod, node: o.node });
      for (const z of chosen) {
        const answer = await cluster.podRequest(z, ZTUNNEL_ADMIN_PORT, req.method, req.path);
        if (answer === undefined) throw ztunnelUnavailable(z.name, z.node);
        if (answer.status !== 200) {
          throw new CliError(
            CliErrorCode.Failed,
            `ztunnel ${z.name} refused ${req.method} ${req.path} (HTTP ${answer.status}: ${answer.body.trim()}); check --level`,
          );
        }
        ctx.out(formatLogAnswer(z, answer.body));
      }
    });
}

const EXAMPLES: Readonly<Record<ZtunnelConfigSection, string>> = {
  workload: `  ambientctl ztunnel-config workload
  ambientctl zc workload --node worker-1 -n sample
  ambientctl zc workload -f dump.json -o yaml`,
  service: `  ambientctl ztunnel-config service -n sample
  ambientctl zc service -o json`,
  policy: `  ambientctl ztunnel-config policy
  ambientctl zc policy -n sample`,
  certificate: `  ambientctl ztunnel-config certificate
  ambientctl zc certificate --node worker-1`,
  connections: `  ambientctl ztunnel-config connections
  ambientctl zc connections ztunnel-abcde -n sample`,
  all: `  ambientctl ztunnel-config all
  ambientctl zc all --node worker-1 -o json > dump.json`,
};

const DESCRIPTIONS: Readonly<Record<ZtunnelConfigSection, string>> = {
  workload: 'List the workloads a ztunnel knows: pod, address, node, waypoint and protocol',
  service: 'List the services a ztunnel knows, with their VIP, waypoint and healthy endpoints',
  policy: 'List the authorization policies pushed to ztunnel (L4 view)',
  certificate: 'List the workload certificates each ztunnel holds',
  connections: 'List the live inbound and outbound connections of each ztunnel',
  all: 'Print every section of the config dump',
};

export function registerZtunnelConfig(program: Command, ctx: CommandContext): void {
  const zc = program
    .command('ztunnel-config')
    .alias('zc')
    .description("Show what ztunnel believes, from each ztunnel's /config_dump (istioctl ztunnel-config)")
    .addHelpText(
      'after',
      `\nExamples:\n  ambientctl ztunnel-config workload\n  ambientctl zc service -n sample\n  ambientctl zc all -f dump.json`,
    );
  for (const section of ZTUNNEL_CONFIG_SECTIONS) {
    zc.command(`${section} [ztunnel-pod]`)
      .description(DESCRIPTIONS[section])
      .option('--node <node>', 'the ztunnel on this node, and (workload) only workloads on this node')
      .option('--address <ip>', 'only the workload with this address (workload)')
      .option('-f, --file <file>', 'read a config dump file instead of the cluster (- for stdin)')
      .addHelpText('after', `\nExamples:\n${EXAMPLES[section]}`)
      .action(async (pod: string | undefined, _opts: unknown, cmd: Command) => {
        const o = cmd.optsWithGlobals<{
          node?: string;
          address?: string;
          file?: string;
          namespace?: string;
          output: OutputFormat;
        }>();
        const dump = mergeDumps(
          await loadDumps(ctx, section, {
            ...(o.file === undefined ? {} : { file: o.file }),
            ...(o.node === undefined ? {} : { node: o.node }),
            ...(pod === undefined ? {} : { pod }),
          }),
        );
        const filter: ZtunnelFilter = { namespace: o.namespace, node: o.node, address: o.address };
        ctx.out(formatSection(section, dump, filter, ctx.format(o.output), ctx.now()));
      });
  }
  registerLog(zc, ctx);
}
