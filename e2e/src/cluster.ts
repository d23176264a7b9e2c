import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorMessage } from '@ambient-mesh/errors';
import { ensureBinaries, type Binaries } from './binaries.ts';
import { bootstrapObjects } from './bootstrap.ts';
import { clusterCidrs, startControlPlane, type ControlPlane } from './control-plane/control-plane.ts';
import { ClusterError, ClusterErrorCode } from './errors.ts';
import { runCommand, waitFor, type CommandRunner } from './exec.ts';
import type { KubeClient } from '@ambient-mesh/kube';
import { defaultImagesFile, imageBuilds, loadImageMap } from './kubelet/images.ts';
import type { KubeletProcessConfig, NodeTaint } from './kubelet/main.ts';

export type { NodeTaint };
import { ledgerPath } from './kubelet/mounts.ts';
import { ensureStreamServer } from './kubelet/stream-server.ts';
import { clusterLayout, defaultCacheRoot, nodeLayout } from './layout.ts';
import type { ClusterIpFamily, ClusterLayout, NodeLayout } from './layout.ts';
import { ManagedProcess } from './managed-process.ts';
import type { CniPluginConfig } from './network/cni.ts';
import { Fabric } from './network/fabric.ts';
import { LoadBalancerController } from './network/load-balancer.ts';
import { claimSlot, freeSlot, releaseSlot } from './slots.ts';
import { pidAlive, readState, reapCluster, statePath, type ClusterState } from './reaper.ts';

export interface StartClusterOptions {
  /** Number of nodes (default 2). */
  readonly nodes?: number;
  /** Cluster name (default `local`): part of every netns and link name. */
  readonly name?: string;
  /** Fabric subnet slot 10.211.<slot>.0/24 (default: the lowest free one). */
  readonly slot?: number;
  /** Image -> command map (default e2e/images.json). */
  readonly imagesFile?: string;
  /** Plugins chained after bridge in every node's CNI config (the cni-agent's slot). */
  readonly chainedCniPlugins?: readonly CniPluginConfig[];
  /**
   * Taints every node registers with (a kubelet's `--register-with-taints`), e.g. upstream's
   * `cni.istio.io/not-ready:NoSchedule` for a node whose CNI agent must be Ready first.
   */
  readonly nodeTaints?: readonly NodeTaint[];
  /**
   * `['IPv4']` (default) or `['IPv4', 'IPv6']`: a dual-stack cluster, with IPv6 on the fabric,
   * both pod and Service ranges, pods with an address of each family and kube-proxy serving both
   * (docs/local-cluster.md#dual-stack).
   */
  readonly ipFamilies?: readonly ClusterIpFamily[];
  /** Progress lines during start-up (default: none). */
  readonly progress?: (line: string) => void;
  readonly run?: CommandRunner;
}

export interface ClusterNode {
  readonly name: string;
  readonly address: string;
  readonly podCidr: string;
  readonly netns: string;
  /** Dual-stack only: the node's IPv6 fabric address and pod CIDR. */
  readonly address6?: string;
  readonly podCidr6?: string;
}

export interface Cluster {
  /** Admin kubeconfig (system:masters) usable from the root netns. */
  readonly kubeconfig: string;
  readonly nodes: readonly ClusterNode[];
  readonly layout: ClusterLayout;
  readonly client: KubeClient;
  /** Stops everything and removes every netns, process, link and file the cluster made. */
  stop(): Promise<void>;
}

/** Where the logs of the last stopped run of a cluster are kept. */
export function lastLogsDir(layout: ClusterLayout): string {
  return `${layout.stateDir}.last-logs`;
}

// Run from source (the usual case) or from dist after a build.
const kubeletMain = [
  fileURLToPath(new URL('./kubelet/main.ts', import.meta.url)),
  fileURLToPath(new URL('./kubelet/main.js', import.meta.url)),
].find(p => existsSync(p))!;

async function checkPrerequisites(run: CommandRunner): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new ClusterError(
      ClusterErrorCode.Prerequisite,
      'the local cluster needs root (network namespaces, mounts); run it as root',
    );
  }
  for (const tool of ['ip', 'nft', 'nsenter', 'unshare', 'openssl', 'mount']) {
    const r = await run(['sh', '-c', `command -v ${tool}`], { allowFailure: true });
    if (r.code !== 0) {
      throw new ClusterError(
        ClusterErrorCode.Prerequisite,
        `'${tool}' is not installed; run tools/install-deps.d/local-cluster.sh (Debian: iproute2 nftables util-linux openssl)`,
      );
    }
  }
}

/**
 * Starts a local cluster: real etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
 * kube-proxy; nodes as network namespaces run by our kubelet; cluster DNS. Cleans up a crashed
 * earlier run of the same name first.
 */
export async function startCluster(options: StartClusterOptions = {}): Promise<Cluster> {
  const run = options.run ?? runCommand;
  const progress = options.progress ?? (() => undefined);
  const nodeCount = options.nodes ?? 2;
  if (!Number.isInteger(nodeCount) || nodeCount < 1 || nodeCount > 50) {
    throw new ClusterError(
      ClusterErrorCode.Unsupported,
      `nodes must be an integer in 1..50, got ${nodeCount}`,
    );
  }
  const name = options.name ?? 'local';
  const layout = clusterLayout(
    name,
    options.slot ?? (await freeSlot(name, run)),
    defaultCacheRoot(),
    options.ipFamilies ?? ['IPv4'],
  );
  await checkPrerequisites(run);
  await ensureStreamServer(progress);
  const previous = readState(layout);
  if (previous !== undefined && previous.ownerPid !== process.pid && pidAlive(previous.ownerPid)) {
    throw new ClusterError(
      ClusterErrorCode.AlreadyRunning,
      `cluster '${layout.name}' is already running (harness pid ${previous.ownerPid}); stop it with 'npm run cluster -- down' first`,
    );
  }
  await claimSlot(layout.name, layout.slot, run);
  const reaped = await reapCluster(layout, run);
  if (reaped.netns + reaped.processes + reaped.links > 0) {
    progress(
      `reaped a previous run: ${reaped.processes} processes, ${reaped.netns} netns, ${reaped.links} links`,
    );
  }

  progress('binaries (tools/build-k8s.sh)');
  const binaries: Binaries = await ensureBinaries(progress);
  await buildImages(options.imagesFile ?? defaultImagesFile(), progress);
  await mkdir(join(layout.stateDir, 'logs'), { recursive: true });
  const nodes: NodeLayout[] = Array.from({ length: nodeCount }, (_, i) => nodeLayout(layout, i));
  const state: ClusterState = {
    name: layout.name,
    slot: layout.slot,
    ownerPid: process.pid,
    kubeconfig: join(layout.stateDir, 'kubeconfig'),
    nodes: nodes.map(n => n.name),
    startedAt: new Date().toISOString(),
  };
  await writeFile(statePath(layout), JSON.stringify(state, null, 2) + '\n');

  const fabric = new Fabric(layout, run);
  const nodeProcs: ManagedProcess[] = [];
  let controlPlane: ControlPlane | undefined;
  let loadBalancers: LoadBalancerController | undefined;
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      await loadBalancers?.stop();
      progress('stopping kubelets (pods get SIGTERM, CNI DEL, netns removed)');
      await Promise.all(nodeProcs.map(p => p.stop(30_000)));
      progress('stopping control plane');
      await controlPlane?.stop();
      for (const n of nodes) await fabric.removeNode(n);
      await fabric.down();
      // Keep the logs of the last run next to the state dir (the reaper removes the state dir).
      await rm(lastLogsDir(layout), { recursive: true, force: true });
      await rename(join(layout.stateDir, 'logs'), lastLogsDir(layout)).catch(() => undefined);
      await reapCluster(layout, run);
      releaseSlot(layout.name, layout.slot);
      progress('stopped');
    })();
    return stopped;
  };

  try {
    progress(
      `network: fabric ${layout.fabricCidr}${layout.ipv6 === undefined ? '' : ` and ${layout.ipv6.fabricCidr} (dual-stack)`}, ${nodeCount} node netns`,
    );
    await fabric.up();
    for (const n of nodes) await fabric.addNode(n, nodes);

    controlPlane = await startControlPlane({ layout, binaries, run, progress, onProcess: () => undefined });
    const cp = controlPlane;
    const client = cp.client;
    progress('bootstrap objects (cluster DNS, RBAC)');
    await bootstrapObjects(client, layout);

    for (const n of nodes) {
      await mkdir(n.stateDir, { recursive: true });
      progress(`node ${n.name}: kube-proxy (nftables) and kubelet in netns ${n.netns}`);
      const proxyConfig = await cp.kubeconfigFor(`kube-proxy-${n.name}`, 'system:kube-proxy');
      const proxy = new ManagedProcess({
        name: `kube-proxy-${n.name}`,
        logFile: join(layout.stateDir, 'logs', `kube-proxy-${n.name}.log`),
        argv: [
          'nsenter', `--net=/run/netns/${n.netns}`, '--',
          binaries.kubeProxy,
          `--kubeconfig=${proxyConfig}`,
          '--proxy-mode=nftables',
          `--hostname-override=${n.name}`,
          `--cluster-cidr=${clusterCidrs(layout)}`,
          '--conntrack-max-per-core=0',
          '--conntrack-tcp-timeout-established=0',
          '--conntrack-tcp-timeout-close-wait=0',
          '--metrics-bind-address=127.0.0.1:10249',
          '--healthz-bind-address=127.0.0.1:10256',
        ], // prettier-ignore
      });
      nodeProcs.push(proxy);
      const serving = await cp.pki.serving(`kubelet-serving-${n.name}`, [n.name], [n.address]);
      const config: KubeletProcessConfig = {
        cluster: layout,
        node: n,
        kubeconfig: await cp.kubeconfigFor(`kubelet-${n.name}`, `system:node:${n.name}`, 'system:nodes'),
        imagesFile: options.imagesFile ?? defaultImagesFile(),
        mountLedger: ledgerPath(layout.stateDir),
        chainedCniPlugins: options.chainedCniPlugins ?? [],
        registerWithTaints: options.nodeTaints ?? [],
        tls: { cert: serving.cert, key: serving.key, ca: cp.pki.ca.cert },
      };
      const configPath = join(n.stateDir, 'kubelet.json');
      await writeFile(configPath, JSON.stringify(config, null, 2) + '\n');
      const kubelet = new ManagedProcess({
        name: `kubelet-${n.name}`,
        logFile: join(layout.stateDir, 'logs', `kubelet-${n.name}.log`),
        argv: [
          'nsenter', `--net=/run/netns/${n.netns}`, '--',
          process.execPath, '--conditions=@ambient-mesh/source', kubeletMain, configPath,
        ], // prettier-ignore
      });
      nodeProcs.push(kubelet);
    }

    progress('waiting for nodes to be Ready');
    await waitFor(
      `${nodeCount} Ready nodes`,
      async () => {
        for (const p of nodeProcs) {
          if (!p.running)
            throw new ClusterError(ClusterErrorCode.CommandFailed, `${p.name} exited; read ${p.logFile}`);
        }
        const list = await client.get<{
          items: { status?: { conditions?: { type: string; status: string }[] } }[];
        }>('/api/v1/nodes');
        const ready = list.items.filter(i =>
          i.status?.conditions?.some(c => c.type === 'Ready' && c.status === 'True'),
        );
        return ready.length === nodeCount ? true : undefined;
      },
      {
        timeoutMs: 60_000,
        fatal: e => e instanceof ClusterError && e.code === ClusterErrorCode.CommandFailed,
      },
    );
    loadBalancers = new LoadBalancerController({ client, run, layout, announcer: nodes[0]!, log: progress });
    loadBalancers.start();
    progress('waiting for cluster DNS');
    await waitFor(
      'cluster DNS ready',
      async () => {
        const d = await client.get<{ status?: { readyReplicas?: number } }>(
          '/apis/apps/v1/namespaces/kube-system/deployments/cluster-dns',
        );
        return (d.status?.readyReplicas ?? 0) >= 1 ? true : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
    // A Ready DNS pod is not yet a working name service: its endpoint must also reach kube-proxy's
    // rules on every node. Ask the kube-dns VIP for the `kubernetes` Service from each node netns.
    const probe = dnsProbe(layout.dnsServiceIp, `kubernetes.default.svc.${layout.clusterDomain}`);
    for (const n of nodes) {
      await waitFor(
        `cluster DNS answering on ${n.name}`,
        async () => {
          const r = await run(
            ['nsenter', `--net=/run/netns/${n.netns}`, '--', process.execPath, '-e', probe],
            {
              allowFailure: true,
              timeoutMs: 5_000,
            },
          );
          return r.code === 0 ? true : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 250 },
      );
    }
    progress(`ready: kubeconfig ${cp.adminKubeconfig}`);
    return {
      kubeconfig: cp.adminKubeconfig,
      nodes: nodes.map(n => ({
        name: n.name,
        address: n.address,
        podCidr: n.podCidr,
        netns: n.netns,
        ...(n.address6 === undefined ? {} : { address6: n.address6 }),
        ...(n.podCidr6 === undefined ? {} : { podCidr6: n.podCidr6 }),
      })),
      layout,
      client,
      stop,
    };
  } catch (e) {
    progress(`start-up failed: ${errorMessage(e)}; cleaning up`);
    await stop().catch(() => undefined);
    throw e;
  }
}

/** A `node -e` script that asks `server` once for `name`'s A record and exits 0 on an answer. */
function dnsProbe(server: string, name: string): string {
  return [
    "const r = new (require('node:dns').promises.Resolver)({ timeout: 500, tries: 1 });",
    `r.setServers([${JSON.stringify(server)}]);`,
    `r.resolve4(${JSON.stringify(name)}).then(() => process.exit(0), () => process.exit(1));`,
  ].join(' ');
}

/** Runs the image map's `build` commands (e.g. the ztunnel bundle), as `docker build` would. */
async function buildImages(imagesFile: string, progress: (msg: string) => void): Promise<void> {
  for (const { image, argv } of imageBuilds(loadImageMap(imagesFile))) {
    progress(`image ${image}: ${argv.slice(1).join(' ')}`);
    const [command, ...args] = argv;
    try {
      await promisify(execFile)(command!, args, { timeout: 300_000 });
    } catch (err) {
      const stderr = (err as { stderr?: string }).stderr?.trim() ?? '';
      throw new ClusterError(
        ClusterErrorCode.CommandFailed,
        `building image ${image} failed (${errorMessage(err)})${stderr === '' ? '' : `: ${stderr}`}; run ${argv.join(' ')} to see why`,
      );
    }
  }
}
