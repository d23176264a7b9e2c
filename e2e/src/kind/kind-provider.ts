import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ClusterError, ClusterErrorCode } from '../errors.ts';
import { runCommand, type CommandRunner } from '../exec.ts';
import { defaultCacheRoot } from '../layout.ts';

export interface KindClusterOptions {
  readonly name?: string;
  /** Total nodes: 1 control plane + (nodes - 1) workers (default 3). */
  readonly nodes?: number;
  /** Local images (`repo/name:tag`) to `kind load docker-image` into the nodes. */
  readonly images?: readonly string[];
  readonly progress?: (line: string) => void;
  readonly run?: CommandRunner;
}

export interface KindCluster {
  readonly kubeconfig: string;
  readonly nodes: readonly { name: string }[];
  stop(): Promise<void>;
}

/** Whether a Docker engine answers (not only the CLI being installed). */
export async function dockerAvailable(run: CommandRunner = runCommand): Promise<boolean> {
  const r = await run(['docker', 'info', '--format', '{{.ServerVersion}}'], {
    allowFailure: true,
    timeoutMs: 15_000,
  }).catch(() => ({ code: 1 }));
  return r.code === 0;
}

/**
 * The same interface as startCluster on kind + Docker (users' CI): a cluster of one control plane
 * and workers, our images loaded. Where no Docker engine answers it throws one clear line.
 */
export async function startKindCluster(options: KindClusterOptions = {}): Promise<KindCluster> {
  const run = options.run ?? runCommand;
  const progress = options.progress ?? (() => undefined);
  const name = options.name ?? 'ambient-mesh';
  if (!(await dockerAvailable(run))) {
    throw new ClusterError(
      ClusterErrorCode.Prerequisite,
      'kind provider: no Docker engine is reachable on this machine; use the local provider (the default)',
    );
  }
  const kind = await run(['sh', '-c', 'command -v kind'], { allowFailure: true });
  if (kind.code !== 0) {
    throw new ClusterError(
      ClusterErrorCode.Prerequisite,
      'kind provider: the kind CLI is not installed (go install sigs.k8s.io/kind@v0.29.0)',
    );
  }
  const dir = join(defaultCacheRoot(), 'kind', name);
  await mkdir(dir, { recursive: true });
  const nodes = options.nodes ?? 3;
  const config = [
    'kind: Cluster',
    'apiVersion: kind.x-k8s.io/v1alpha4',
    'nodes:',
    '- role: control-plane',
    ...Array.from({ length: Math.max(nodes - 1, 0) }, () => '- role: worker'),
  ].join('\n');
  const configPath = join(dir, 'kind.yaml');
  const kubeconfig = join(dir, 'kubeconfig');
  await writeFile(configPath, config + '\n');
  progress(`kind: creating cluster '${name}' with ${nodes} nodes`);
  await run(
    [
      'kind',
      'create',
      'cluster',
      '--name',
      name,
      '--config',
      configPath,
      '--kubeconfig',
      kubeconfig,
      '--wait',
      '120s',
    ],
    {
      timeoutMs: 600_000,
    },
  );
  for (const image of options.images ?? []) {
    progress(`kind: loading ${image}`);
    await run(['kind', 'load', 'docker-image', image, '--name', name], { timeoutMs: 600_000 });
  }
  const list = await run(['kind', 'get', 'nodes', '--name', name]);
  progress(`kind: ready, kubeconfig ${kubeconfig}`);
  return {
    kubeconfig,
    nodes: list.stdout
      .split('\n')
      .filter(Boolean)
      .map(n => ({ name: n })),
    stop: async () => {
      await run(['kind', 'delete', 'cluster', '--name', name], { allowFailure: true, timeoutMs: 300_000 });
    },
  };
}
