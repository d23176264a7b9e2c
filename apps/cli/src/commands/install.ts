/**
 * `ambientctl install|uninstall|upgrade`: the mesh through the operator's `sailoperator.io/v1`
 * resources (as the Sail operator's): an `Istio` (istiod), an `IstioCNI` (the cni-agent) and a
 * `ZTunnel`, each named `default`. The CLI writes the resources and follows their `Ready`
 * condition; the operator does the rest. The objects are plain (the CLI does not import the
 * operator app); `installResources` and `readiness` are pure.
 */
import type { Command } from 'commander';
import type { KubeClient } from '@ambient-mesh/kube';
import { isAlreadyExists } from '@ambient-mesh/kube';
import type { CommandContext } from '../context.ts';
import { CliError, CliErrorCode, usageError } from '../errors.ts';
import { renderData, renderTable, type OutputFormat } from '../output.ts';
import { parseDuration, pollUntil } from '../wait.ts';

export const SAIL_API_VERSION = 'sailoperator.io/v1';
export const SAIL_KINDS = ['Istio', 'IstioCNI', 'ZTunnel'] as const;
export type SailKind = (typeof SAIL_KINDS)[number];
const PLURAL: Readonly<Record<SailKind, string>> = {
  Istio: 'istios',
  IstioCNI: 'istiocnis',
  ZTunnel: 'ztunnels',
};
/** The name Sail requires for IstioCNI and ZTunnel, and the one the CLI gives its Istio. */
export const SAIL_NAME = 'default';
/** The version the CRDs default to (deploy/operator/crds). */
export const DEFAULT_VERSION = 'v1.27.9';
export const PROFILES = ['ambient', 'default', 'demo', 'empty', 'minimal', 'preview', 'stable'] as const;

export function sailPath(kind: SailKind, name?: string): string {
  const base = `/apis/${SAIL_API_VERSION}/${PLURAL[kind]}`;
  return name === undefined ? base : `${base}/${encodeURIComponent(name)}`;
}

interface Condition {
  readonly type?: string;
  readonly status?: string;
  readonly reason?: string;
  readonly message?: string;
}

/** A sailoperator.io resource, the fields the CLI writes and reads. */
export interface SailResource {
  readonly apiVersion: string;
  readonly kind: SailKind;
  readonly metadata: { readonly name: string; readonly generation?: number };
  readonly spec: {
    readonly version: string;
    readonly namespace: string;
    readonly profile?: string;
    readonly values?: Readonly<Record<string, unknown>>;
  };
  readonly status?: {
    readonly observedGeneration?: number;
    readonly state?: string;
    readonly conditions?: readonly Condition[];
  };
}

export interface InstallOptions {
  readonly version: string;
  readonly profile: string;
  readonly istioNamespace: string;
  readonly cniNamespace: string;
  readonly ztunnelNamespace: string;
}

/** `v1.27.9` or `v1.27-latest`, as the CRDs' enum spells versions. */
export function checkVersion(version: string): string {
  if (!/^v\d+\.\d+(\.\d+|-latest)$/.test(version)) {
    throw usageError(`invalid --version "${version}"; use e.g. ${DEFAULT_VERSION} or v1.27-latest`);
  }
  return version;
}

/** The resources an install writes: an Istio, and for the ambient profile an IstioCNI and a ZTunnel. */
export function installResources(o: InstallOptions): SailResource[] {
  checkVersion(o.version);
  if (!(PROFILES as readonly string[]).includes(o.profile)) {
    throw usageError(`unknown --profile "${o.profile}"; use one of ${PROFILES.join(', ')}`);
  }
  const ambient = o.profile === 'ambient';
  const istio: SailResource = {
    apiVersion: SAIL_API_VERSION,
    kind: 'Istio',
    metadata: { name: SAIL_NAME },
    spec: {
      version: o.version,
      namespace: o.istioNamespace,
      profile: o.profile,
      ...(ambient && o.ztunnelNamespace !== o.istioNamespace
        ? { values: { pilot: { trustedZtunnelNamespace: o.ztunnelNamespace } } }
        : {}),
    },
  };
  if (!ambient) return [istio];
  return [
    istio,
    {
      apiVersion: SAIL_API_VERSION,
      kind: 'IstioCNI',
      metadata: { name: SAIL_NAME },
      spec: { version: o.version, namespace: o.cniNamespace, profile: 'ambient' },
    },
    {
      apiVersion: SAIL_API_VERSION,
      kind: 'ZTunnel',
      metadata: { name: SAIL_NAME },
      spec: { version: o.version, namespace: o.ztunnelNamespace, profile: 'ambient' },
    },
  ];
}

/** One resource's state: Ready once the operator saw its latest generation and says Ready=True. */
export function resourceState(r: SailResource): { readonly ready: boolean; readonly text: string } {
  const seen =
    r.metadata.generation === undefined || (r.status?.observedGeneration ?? 0) >= r.metadata.generation;
  const ready = r.status?.conditions?.find(c => c.type === 'Ready');
  if (!seen || ready === undefined)
    return { ready: false, text: `${r.kind} ${r.metadata.name}: waiting for the operator` };
  if (ready.status === 'True') return { ready: true, text: `${r.kind} ${r.metadata.name}: Ready` };
  return {
    ready: false,
    text: `${r.kind} ${r.metadata.name}: not Ready (${ready.reason ?? r.status?.state ?? 'unknown'}${ready.message === undefined ? '' : `: ${ready.message}`})`,
  };
}

/** The progress of several resources (undefined: not found yet). */
export function readiness(
  found: readonly (SailResource | undefined)[],
  kinds: readonly SailKind[],
): {
  readonly done: boolean;
  readonly status: string;
} {
  const states = kinds.map((k, i) => {
    const r = found[i];
    return r === undefined ? { ready: false, text: `${k} ${SAIL_NAME}: not found` } : resourceState(r);
  });
  return {
    done: states.every(s => s.ready),
    status: `${states.filter(s => s.ready).length}/${states.length} Ready — ${states.map(s => s.text).join('; ')}`,
  };
}

/** `install`/`upgrade` output: each resource, its version, namespace and state. */
export function formatResources(found: readonly SailResource[], format: OutputFormat): string {
  if (format !== 'table') return renderData(found, format);
  return renderTable(
    ['KIND', 'NAME', 'NAMESPACE', 'PROFILE', 'VERSION', 'STATUS'],
    found.map(r => [
      r.kind,
      r.metadata.name,
      r.spec.namespace,
      r.spec.profile ?? '',
      r.spec.version,
      r.status?.state ?? (resourceState(r).ready ? 'Healthy' : 'Pending'),
    ]),
  );
}

async function requireOperatorCrds(client: KubeClient): Promise<void> {
  for (const kind of SAIL_KINDS) {
    const crd = await client.find(
      `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${PLURAL[kind]}.sailoperator.io`,
    );
    if (crd === undefined) {
      throw new CliError(
        CliErrorCode.OperatorMissing,
        `the CRD ${PLURAL[kind]}.sailoperator.io is not installed; install the operator first (its CRDs are in deploy/operator/crds, docs/operator.md)`,
      );
    }
  }
}

async function waitReady(
  ctx: CommandContext,
  client: KubeClient,
  kinds: readonly SailKind[],
  timeout: string,
  what: string,
): Promise<SailResource[]> {
  let found: (SailResource | undefined)[] = [];
  await pollUntil(
    ctx,
    async () => {
      found = [];
      for (const k of kinds) found.push(await client.find<SailResource>(sailPath(k, SAIL_NAME)));
      return readiness(found, kinds);
    },
    {
      timeoutMs: parseDuration(timeout),
      intervalMs: 2000,
      onTimeout: last =>
        `${what} not Ready after ${timeout} (${last}); check the operator is running and the resources' status (kubectl get istio,istiocni,ztunnel -o yaml)`,
    },
  );
  return found.filter((r): r is SailResource => r !== undefined);
}

interface InstallFlags {
  readonly profile: string;
  readonly version: string;
  readonly istioNamespace: string;
  readonly cniNamespace: string;
  readonly ztunnelNamespace: string;
  readonly wait: boolean;
  readonly timeout: string;
  readonly output: string;
}

export function registerInstall(program: Command, ctx: CommandContext): void {
  program
    .command('install')
    .description("Install the mesh through the operator's sailoperator.io resources and wait until Ready")
    .option('--profile <profile>', `the profile: ${PROFILES.join('|')}`, 'ambient')
    .option('--version <version>', 'the Istio version to install', DEFAULT_VERSION)
    .option('--istio-namespace <ns>', "istiod's namespace", 'istio-system')
    .option('--cni-namespace <ns>', "the cni-agent's namespace", 'istio-cni')
    .option('--ztunnel-namespace <ns>', "ztunnel's namespace", 'ztunnel')
    .option('--no-wait', 'return once the resources are written')
    .option('--timeout <duration>', 'how long to wait for Ready', '5m')
    .addHelpText(
      'after',
      '\nExamples:\n  ambientctl install\n  ambientctl install --profile ambient --version v1.27.9\n  ambientctl install --istio-namespace istio-system --ztunnel-namespace istio-system --no-wait',
    )
    .action(async (_o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<InstallFlags>();
      const resources = installResources(o);
      const { client } = ctx.cluster();
      await requireOperatorCrds(client);
      for (const ns of new Set(resources.map(r => r.spec.namespace))) {
        await client.ensure('/api/v1/namespaces', {
          apiVersion: 'v1',
          kind: 'Namespace',
          metadata: { name: ns },
        });
      }
      for (const r of resources) {
        try {
          await client.create(sailPath(r.kind), r);
        } catch (err) {
          if (isAlreadyExists(err)) {
            throw new CliError(
              CliErrorCode.Exists,
              `${r.kind} ${SAIL_NAME} already exists: the mesh is installed; use ambientctl upgrade --version to change its version, or uninstall first`,
              { cause: err },
            );
          }
          throw err;
        }
        ctx.err(`${r.kind} ${SAIL_NAME} created (${r.spec.version}, namespace ${r.spec.namespace})\n`);
      }
      const kinds = resources.map(r => r.kind);
      const found = o.wait ? await waitReady(ctx, client, kinds, o.timeout, 'the mesh is') : resources;
      ctx.out(formatResources(found, ctx.format(o.output)));
    });

  program
    .command('upgrade')
    .description("Change the mesh's version on every sailoperator.io resource and wait until Ready")
    .requiredOption('--version <version>', 'the Istio version to move to')
    .option('--no-wait', 'return once the resources are updated')
    .option('--timeout <duration>', 'how long to wait for Ready', '5m')
    .addHelpText(
      'after',
      '\nExamples:\n  ambientctl upgrade --version v1.27.9\n  ambientctl upgrade --version v1.27-latest --timeout 10m',
    )
    .action(async (_o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<{ version: string; wait: boolean; timeout: string; output: string }>();
      checkVersion(o.version);
      const { client } = ctx.cluster();
      await requireOperatorCrds(client);
      const kinds: SailKind[] = [];
      for (const kind of SAIL_KINDS) {
        const r = await client.find<SailResource>(sailPath(kind, SAIL_NAME));
        if (r === undefined) continue;
        kinds.push(kind);
        if (r.spec.version === o.version) continue;
        await client.mergePatch(sailPath(kind, SAIL_NAME), { spec: { version: o.version } });
        ctx.err(`${kind} ${SAIL_NAME}: ${r.spec.version} -> ${o.version}\n`);
      }
      if (!kinds.includes('Istio')) {
        throw new CliError(
          CliErrorCode.NotFound,
          `no Istio ${SAIL_NAME}: the mesh is not installed through the operator; check the context, or run ambientctl install`,
        );
      }
      const found = o.wait
        ? await waitReady(ctx, client, kinds, o.timeout, `the mesh at ${o.version} is`)
        : await Promise.all(kinds.map(k => client.get<SailResource>(sailPath(k, SAIL_NAME))));
      ctx.out(formatResources(found, ctx.format(o.output)));
    });

  program
    .command('uninstall')
    .description('Remove the mesh: delete its sailoperator.io resources (the operator removes what they own)')
    .option('--no-wait', 'return once the deletions are requested')
    .option('--timeout <duration>', 'how long to wait for the resources to go', '5m')
    .addHelpText('after', '\nExamples:\n  ambientctl uninstall\n  ambientctl uninstall --no-wait')
    .action(async (_o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<{ wait: boolean; timeout: string }>();
      const { client } = ctx.cluster();
      await requireOperatorCrds(client);
      const deleted: SailKind[] = [];
      // Data plane first, control plane last.
      for (const kind of [...SAIL_KINDS].reverse()) {
        if (await client.delete(sailPath(kind, SAIL_NAME))) deleted.push(kind);
      }
      if (deleted.length === 0) {
        throw new CliError(
          CliErrorCode.NotFound,
          `no sailoperator.io resource named ${SAIL_NAME}: the mesh is not installed through the operator; check the context`,
        );
      }
      if (o.wait) {
        await pollUntil(
          ctx,
          async () => {
            const left: string[] = [];
            for (const k of deleted)
              if ((await client.find(sailPath(k, SAIL_NAME))) !== undefined) left.push(k);
            return {
              done: left.length === 0,
              status:
                left.length === 0
                  ? 'every resource removed'
                  : `waiting for the operator to remove ${left.join(', ')}`,
            };
          },
          {
            timeoutMs: parseDuration(o.timeout),
            intervalMs: 2000,
            onTimeout: last =>
              `${last} after ${o.timeout}; check the operator is running (its finalizer removes what each resource owns)`,
          },
        );
      }
      ctx.out(deleted.map(k => `${k} ${SAIL_NAME} deleted\n`).join(''));
    });
}
