/**
 * `ambientctl dashboard console|prometheus`: port-forwards to the mesh console (Kiali) or
 * Prometheus, as istioctl's `dashboard kiali|prometheus`, prints the URL to open and keeps the
 * forward until interrupted (Ctrl-C); it opens the URL in a browser when one is available
 * (`--no-browser` only prints it; browser.ts decides how). The pod is the first Running one matching the dashboard's
 * labels in `-n` (default istio-system). `dashboardUrl` and `pickPod` are pure.
 */
import type { Command } from 'commander';
import { errorMessage } from '@ambient-mesh/errors';
import { MESH_NAMESPACE, type ZtunnelPod } from '@ambient-mesh/install';
import { requireGivenNamespace } from '../cluster.ts';
import type { CommandContext } from '../context.ts';
import { CliError, CliErrorCode, usageError } from '../errors.ts';

export interface Dashboard {
  readonly title: string;
  /** Label selectors tried in order (upstream charts label Prometheus either way). */
  readonly selectors: readonly string[];
  readonly port: number;
  readonly path: string;
}

export const DASHBOARDS: Readonly<Record<'console' | 'prometheus', Dashboard>> = {
  console: { title: 'the mesh console (Kiali)', selectors: ['app=kiali'], port: 20001, path: '/kiali' },
  prometheus: {
    title: 'Prometheus',
    selectors: ['app.kubernetes.io/name=prometheus', 'app=prometheus'],
    port: 9090,
    path: '/',
  },
};

/** The fields of a Pod a dashboard reads. */
export interface DashboardPod {
  readonly metadata?: {
    readonly name?: string;
    readonly namespace?: string;
    readonly uid?: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly deletionTimestamp?: unknown;
  };
  readonly spec?: { readonly nodeName?: string };
  readonly status?: { readonly phase?: string; readonly podIP?: string };
}

export function dashboardUrl(address: string, port: number, path: string): string {
  const host = address.includes(':') ? `[${address}]` : address;
  return `http://${host}:${port}${path}`;
}

/** The first Running, not deleted pod by name. */
export function pickPod(pods: readonly DashboardPod[]): DashboardPod | undefined {
  return pods
    .filter(p => p.status?.phase === 'Running' && p.metadata?.deletionTimestamp === undefined)
    .sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''))[0];
}

function parsePort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    throw usageError(`invalid --port "${value}"; use 0 (any free port) to 65535`);
  }
  return n;
}

async function openDashboard(
  ctx: CommandContext,
  d: Dashboard,
  o: { namespace?: string; address: string; port?: string; browser?: boolean },
): Promise<void> {
  const cluster = ctx.cluster();
  await requireGivenNamespace(cluster);
  const namespace = o.namespace ?? MESH_NAMESPACE;
  let pod: DashboardPod | undefined;
  for (const selector of d.selectors) {
    pod ??= pickPod(
      (
        await cluster.client.list<DashboardPod>(`/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`, {
          labelSelector: selector,
        })
      ).items,
    );
  }
  if (pod === undefined) {
    throw new CliError(
      CliErrorCode.NotFound,
      `no running pod of ${d.title} (${d.selectors.join(' or ')}) in ${namespace}; check it is installed, or pass -n <namespace>`,
    );
  }
  const target: ZtunnelPod = {
    name: pod.metadata?.name ?? '',
    namespace,
    node: pod.spec?.nodeName ?? '',
    uid: pod.metadata?.uid ?? '',
    ip: pod.status?.podIP ?? '',
  };
  const localPort = o.port === undefined ? d.port : parsePort(o.port);
  let forwarding;
  try {
    forwarding = await cluster.forward(target, d.port, { address: o.address, port: localPort });
  } catch (err) {
    throw new CliError(
      CliErrorCode.Failed,
      `cannot listen on ${o.address}:${localPort} (${errorMessage(err)}); pass another --port, or --port 0 for any free one`,
      { cause: err },
    );
  }
  const url = dashboardUrl(o.address, forwarding.port, d.path);
  ctx.out(`${url}\n`);
  // Open a browser unless --no-browser; --browser insists, so its absence is worth a warning.
  if (o.browser !== false) {
    const opened = await ctx.openUrl(url).catch(() => false);
    if (!opened && o.browser === true) {
      ctx.err(
        'no browser to open here (set $BROWSER, or run where xdg-open has a display); open the URL above yourself\n',
      );
    }
  }
  ctx.err(`forwarding to ${namespace}/${target.name}:${d.port}; press Ctrl-C to stop\n`);
  try {
    await ctx.interrupted();
  } finally {
    await forwarding.close();
  }
}

export function registerDashboard(program: Command, ctx: CommandContext): void {
  const dash = program
    .command('dashboard')
    .alias('d')
    .description('Port-forward to a mesh dashboard, print its URL and open it in a browser')
    .addHelpText(
      'after',
      '\nExamples:\n  ambientctl dashboard console\n  ambientctl dashboard prometheus --port 0',
    );
  for (const [name, d] of Object.entries(DASHBOARDS)) {
    dash
      .command(name)
      .aliases(name === 'console' ? ['kiali'] : [])
      .description(
        `Port-forward to ${d.title} (port ${d.port}), print its URL and open it in a browser; Ctrl-C stops`,
      )
      .option('--address <address>', 'the local address to listen on', '127.0.0.1')
      .option('-p, --port <port>', `the local port (default ${d.port}; 0 for any free port)`)
      .option('--browser', 'open the URL in a browser (the default when one is available)')
      .option('--no-browser', 'only print the URL')
      .addHelpText(
        'after',
        `\nExamples:\n  ambientctl dashboard ${name}\n  ambientctl dashboard ${name} -n observability --port 0 --no-browser`,
      )
      .action(async (_o: unknown, cmd: Command) => {
        await openDashboard(
          ctx,
          d,
          cmd.optsWithGlobals<{ namespace?: string; address: string; port?: string; browser?: boolean }>(),
        );
      });
  }
}
