import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { CniNetworkConfig, CniPluginConfig } from '../network/cni.ts';
import { nodeHostPath } from './volumes.ts';

/** A node's own filesystem root on this machine (see `nodeHostPath`). */
export function nodeHostRoot(nodeStateDir: string): string {
  return join(nodeStateDir, 'host');
}

/** The node's CNI network configuration file, where a kind node keeps its conflist. */
export function nodeConflistPath(hostRoot: string, clusterName: string): string {
  return join(hostRoot, 'etc', 'cni', 'net.d', `10-am-${clusterName}.conflist`);
}

/** The node's CNI binary dir (`/opt/cni/bin` of the node): chained plugins installed by a DaemonSet. */
export function nodeCniBinDir(hostRoot: string): string {
  return join(hostRoot, 'opt', 'cni', 'bin');
}

/**
 * A plugin entry as the node sees it, made usable from this machine: absolute paths in its
 * top-level string values (e.g. `cni_agent_run_dir`) are node paths, so they move under the
 * node's root unless they already point into the node's state dir.
 */
export function resolvePluginPaths(
  plugin: CniPluginConfig,
  hostRoot: string,
  nodeStateDir: string,
): CniPluginConfig {
  const out: Record<string, unknown> = { ...plugin };
  for (const [k, v] of Object.entries(plugin)) {
    if (typeof v === 'string' && v.startsWith('/') && !v.startsWith(`${nodeStateDir}/`)) {
      out[k] = nodeHostPath(hostRoot, v);
    }
  }
  return out as CniPluginConfig;
}

/**
 * The chain slot: the kubelet writes its network (bridge + static chained plugins) to the node's
 * conf dir and re-reads it before each ADD/DEL, as a container runtime does, so a CNI installer
 * (the cni-agent DaemonSet) can append its plugin and remove it again. An unreadable file falls
 * back to the kubelet's own configuration.
 */
export class NodeCniConfig {
  private readonly base: CniNetworkConfig;
  private readonly path: string;
  private readonly hostRoot: string;
  private readonly nodeStateDir: string;

  constructor(base: CniNetworkConfig, hostRoot: string, clusterName: string, nodeStateDir: string) {
    this.base = base;
    this.hostRoot = hostRoot;
    this.nodeStateDir = nodeStateDir;
    this.path = nodeConflistPath(hostRoot, clusterName);
  }

  get file(): string {
    return this.path;
  }

  async write(): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    await mkdir(nodeCniBinDir(this.hostRoot), { recursive: true });
    await writeFile(this.path, JSON.stringify(this.base, null, 2) + '\n');
  }

  async read(): Promise<CniNetworkConfig> {
    let parsed: Partial<CniNetworkConfig>;
    try {
      parsed = JSON.parse(await readFile(this.path, 'utf8')) as Partial<CniNetworkConfig>;
    } catch {
      return this.base;
    }
    if (!Array.isArray(parsed.plugins) || parsed.plugins.length === 0) return this.base;
    return {
      cniVersion: parsed.cniVersion ?? this.base.cniVersion,
      name: parsed.name ?? this.base.name,
      plugins: (parsed.plugins as CniPluginConfig[]).map(p =>
        resolvePluginPaths(p, this.hostRoot, this.nodeStateDir),
      ),
    };
  }
}
