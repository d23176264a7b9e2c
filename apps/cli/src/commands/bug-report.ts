/**
 * `ambientctl bug-report`: one `.tar.gz` with what a support engineer asks for first — the
 * cluster and mesh state (nodes, namespaces, pods, services, workloads, Gateways, policies, the
 * operator's resources), the `analyze` findings, the logs of the mesh's pods, every ztunnel's
 * `/config_dump` and every istiod's `/debug/syncz`. Secrets and ConfigMaps are never read. An item
 * that cannot be collected is listed in `errors.txt` and the rest is still written; only an
 * unreachable cluster stops the report.
 */
import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { errorMessage } from '@ambient-mesh/errors';
import { MESH_NAMESPACE, ZTUNNEL_ADMIN_PORT, ztunnelPods, type ZtunnelPod } from '@ambient-mesh/install';
import { Port } from '@ambient-mesh/mesh-api';
import type { CommandContext } from '../context.ts';
import { CliError, CliErrorCode } from '../errors.ts';
import { tarGz, type TarEntry } from '../tar.ts';
import { analyze, formatMessages, gatherSnapshot } from './analyze.ts';
import { istiodPods } from './proxy-status.ts';

/** Cluster-wide lists written under `resources/`. */
export const REPORT_RESOURCES: readonly (readonly [file: string, path: string])[] = [
  ['nodes', '/api/v1/nodes'],
  ['namespaces', '/api/v1/namespaces'],
  ['pods', '/api/v1/pods'],
  ['services', '/api/v1/services'],
  ['daemonsets', '/apis/apps/v1/daemonsets'],
  ['deployments', '/apis/apps/v1/deployments'],
  ['gateways', '/apis/gateway.networking.k8s.io/v1/gateways'],
  ['httproutes', '/apis/gateway.networking.k8s.io/v1/httproutes'],
  ['authorizationpolicies', '/apis/security.istio.io/v1/authorizationpolicies'],
  ['peerauthentications', '/apis/security.istio.io/v1/peerauthentications'],
  ['serviceentries', '/apis/networking.istio.io/v1/serviceentries'],
  ['istios', '/apis/sailoperator.io/v1/istios'],
  ['istiocnis', '/apis/sailoperator.io/v1/istiocnis'],
  ['ztunnels', '/apis/sailoperator.io/v1/ztunnels'],
  ['mesh-events', `/api/v1/namespaces/${MESH_NAMESPACE}/events`],
];

interface Listed {
  readonly items?: readonly Record<string, unknown>[];
}

/** A list's items without `managedFields` (noise for a reader, and large). */
export function cleanItems(list: Listed): unknown[] {
  return (list.items ?? []).map(item => {
    const meta = item['metadata'];
    if (typeof meta !== 'object' || meta === null) return item;
    const { managedFields: _dropped, ...rest } = meta as Record<string, unknown>;
    return { ...item, metadata: rest };
  });
}

interface ReportPod {
  readonly metadata?: { readonly name?: string; readonly namespace?: string };
  readonly spec?: { readonly containers?: readonly { readonly name: string }[] };
  readonly status?: { readonly phase?: string };
}

export interface ReportSummary {
  readonly files: number;
  readonly bytes: number;
  readonly errors: readonly string[];
}

export function summaryLine(file: string, s: ReportSummary): string {
  const size =
    s.bytes < 1024 * 1024 ? `${Math.ceil(s.bytes / 1024)} KiB` : `${(s.bytes / 1024 / 1024).toFixed(1)} MiB`;
  return (
    `wrote ${file} (${s.files} files, ${size})` +
    (s.errors.length === 0
      ? '\n'
      : `; ${s.errors.length} item${s.errors.length === 1 ? '' : 's'} could not be collected (listed in errors.txt)\n`)
  );
}

async function collectReport(
  ctx: CommandContext,
  tail: number,
): Promise<{ entries: TarEntry[]; errors: string[] }> {
  const cluster = ctx.cluster();
  const { client } = cluster;
  const entries: TarEntry[] = [];
  const errors: string[] = [];
  const add = (name: string, content: string): void => {
    entries.push({ name: `bug-report/${name}`, content });
  };
  const collect = async (what: string, fn: () => Promise<void>): Promise<void> => {
    ctx.progress.step(`collecting ${what}`);
    try {
      await fn();
    } catch (err) {
      errors.push(`${what}: ${errorMessage(err)}`);
    }
  };
  // Unwrapped: an unreachable cluster stops the report here with its own error and hint.
  const version = await client.get<unknown>('/version');
  add('cluster/version.json', `${JSON.stringify(version, null, 2)}\n`);
  for (const [file, path] of REPORT_RESOURCES) {
    await collect(`resources/${file}`, async () => {
      const list = await client.find<Listed>(path);
      if (list !== undefined) add(`resources/${file}.yaml`, stringify(cleanItems(list)));
    });
  }
  await collect('analyze', async () => {
    add('analyze.txt', formatMessages(analyze(await gatherSnapshot(client)), 'table'));
  });
  await collect(`logs of the pods in ${MESH_NAMESPACE}`, async () => {
    const pods = (await client.list<ReportPod>(`/api/v1/namespaces/${MESH_NAMESPACE}/pods`)).items;
    for (const pod of pods) {
      const name = pod.metadata?.name ?? '';
      for (const c of pod.spec?.containers ?? []) {
        await collect(`log of ${MESH_NAMESPACE}/${name}/${c.name}`, async () => {
          const log = await client.request<unknown>(
            'GET',
            `/api/v1/namespaces/${MESH_NAMESPACE}/pods/${encodeURIComponent(name)}/log`,
            { query: { container: c.name, tailLines: tail } },
          );
          add(
            `logs/${MESH_NAMESPACE}/${name}/${c.name}.log`,
            typeof log === 'string' ? log : JSON.stringify(log),
          );
        });
      }
    }
  });
  let ztunnels: ZtunnelPod[] = [];
  await collect('the ztunnel pods', async () => {
    ztunnels = await ztunnelPods(client);
  });
  for (const z of ztunnels) {
    await collect(`/config_dump of ztunnel ${z.name}`, async () => {
      const dump = await cluster.podGet(z, ZTUNNEL_ADMIN_PORT, '/config_dump');
      if (dump === undefined) throw new Error(`no answer on port ${ZTUNNEL_ADMIN_PORT}`);
      add(`ztunnel/${z.name}/config_dump.json`, dump);
    });
  }
  let istiods: ZtunnelPod[] = [];
  await collect('the istiod pods', async () => {
    istiods = await istiodPods(ctx);
  });
  for (const i of istiods) {
    await collect(`/debug/syncz of istiod ${i.name}`, async () => {
      const syncz = await cluster.podGet(i, Port.istiodMonitoring, '/debug/syncz');
      if (syncz === undefined) throw new Error(`no answer on port ${Port.istiodMonitoring}`);
      add(`istiod/${i.name}/syncz.json`, syncz);
    });
  }
  if (errors.length > 0) add('errors.txt', errors.map(e => `${e}\n`).join(''));
  ctx.progress.done(`collected ${entries.length} files`);
  return { entries, errors };
}

export function registerBugReport(program: Command, ctx: CommandContext): void {
  program
    .command('bug-report')
    .description('Collect the mesh state, logs and config dumps into one .tar.gz archive')
    .option('-f, --file <path>', 'the archive to write', 'bug-report.tar.gz')
    .option('--tail <lines>', 'the last lines of each log to keep', '2000')
    .addHelpText(
      'after',
      '\nExamples:\n  ambientctl bug-report\n  ambientctl bug-report -f /tmp/mesh.tar.gz --tail 500 --context prod',
    )
    .action(async (_o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<{ file: string; tail: string }>();
      const tail = Number(o.tail);
      if (!Number.isInteger(tail) || tail <= 0) {
        throw new CliError(CliErrorCode.Usage, `invalid --tail "${o.tail}"; use a positive number of lines`);
      }
      const { entries, errors } = await collectReport(ctx, tail);
      const archive = tarGz(entries, ctx.now());
      try {
        await writeFile(o.file, archive);
      } catch (err) {
        throw new CliError(
          CliErrorCode.Failed,
          `cannot write ${o.file} (${errorMessage(err)}); check the directory exists and is writable, or pass -f`,
          { cause: err },
        );
      }
      ctx.out(summaryLine(o.file, { files: entries.length, bytes: archive.length, errors }));
    });
}
