import { readFileSync } from 'node:fs';
import type https from 'node:https';
import { release } from 'node:os';
import type { V1Pod } from '@kubernetes/client-node';
import { errorMessage } from '@ambient-mesh/errors';
import { K8S_VERSION } from '../binaries.ts';
import type { CommandRunner } from '../exec.ts';
import { Informer, clientSource, isConflict, type KubeClient } from '@ambient-mesh/kube';
import type { ClusterLayout, NodeLayout } from '../layout.ts';
import { CniRunner, DEFAULT_CNI_PATH, nodeCniConfig, type CniPluginConfig } from '../network/cni.ts';
import type { ImageMap } from './images.ts';
import { startLogServer } from './log-server.ts';
import { StreamServer } from './stream-server.ts';
import { streamTargetOf } from './stream-target.ts';
import { NodeCniConfig, nodeCniBinDir, nodeHostRoot } from './node-cni.ts';
import { PodWorker } from './pod-worker.ts';
import { VolumeManager } from './volumes.ts';

export const KUBELET_PORT = 10250;

export interface KubeletOptions {
  readonly client: KubeClient;
  readonly run: CommandRunner;
  readonly cluster: ClusterLayout;
  readonly node: NodeLayout;
  readonly images: ImageMap;
  readonly mountLedger: string;
  readonly chainedCniPlugins?: readonly CniPluginConfig[];
  /** Taints the Node is created with (a kubelet's `--register-with-taints`); not reapplied later. */
  readonly registerWithTaints?: readonly { key: string; value?: string; effect: string }[];
  readonly cniPath?: readonly string[];
  /** Serving cert for the log endpoint and the CA its clients (the apiserver) present. */
  readonly tls: { cert: string; key: string; ca: string };
  readonly log: (msg: string) => void;
  readonly heartbeatMs?: number;
}

const microTime = (): string => new Date().toISOString().replace('Z', '000Z');

/**
 * Our kubelet for one node: registers the Node and keeps it Ready (status + Lease), watches the
 * Pods bound to it and runs each through a PodWorker, and serves container logs.
 */
export class Kubelet {
  private readonly opts: KubeletOptions;
  private readonly workers = new Map<string, PodWorker>();
  private readonly cni: CniRunner;
  private readonly volumes: VolumeManager;
  private readonly cniConfig: NodeCniConfig;
  private informer: Informer<V1Pod> | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private logServer: https.Server | undefined;
  private streamServer: StreamServer | undefined;
  private stopped = false;

  constructor(opts: KubeletOptions) {
    this.opts = opts;
    const hostRoot = nodeHostRoot(opts.node.stateDir);
    this.cni = new CniRunner(opts.run, [...(opts.cniPath ?? DEFAULT_CNI_PATH), nodeCniBinDir(hostRoot)]);
    this.volumes = new VolumeManager(opts.client, globalThis, hostRoot);
    this.cniConfig = new NodeCniConfig(
      nodeCniConfig({
        clusterName: opts.cluster.name,
        podCidr: opts.node.podCidr,
        podCidr6: opts.node.podCidr6,
        ipamDir: `${opts.node.stateDir}/ipam`,
        chained: opts.chainedCniPlugins,
      }),
      hostRoot,
      opts.cluster.name,
      opts.node.stateDir,
    );
  }

  private get nodeName(): string {
    return this.opts.node.name;
  }

  async start(): Promise<void> {
    const { node, tls } = this.opts;
    await this.cniConfig.write();
    const streamLog = `${this.opts.cluster.stateDir}/logs/kubelet-stream-${node.name}.log`;
    this.streamServer = await StreamServer.start(`${node.stateDir}/stream.sock`, streamLog, this.opts.log);
    this.logServer = await startLogServer(
      { host: node.address, port: KUBELET_PORT, ...tls, streamSocket: this.streamServer?.socketPath },
      {
        streamTarget: req => streamTargetOf(this.podByName(req.namespace, req.pod), req),
        logFile: (ns, pod, container, previous) =>
          this.podByName(ns, pod)?.findContainer(container)?.logFile(previous),
        isRunning: (ns, pod, container) =>
          this.podByName(ns, pod)?.findContainer(container)?.running === true,
      },
    );
    await this.register();
    await this.beat();
    this.heartbeat = setInterval(() => void this.beat(), this.opts.heartbeatMs ?? 10_000);
    // List + watch from the last resourceVersion; a relist (410 Gone) reports pods deleted while
    // disconnected as deletes.
    const informer = new Informer<V1Pod>({
      name: `pods on ${this.nodeName}`,
      source: clientSource<V1Pod>(this.opts.client, '/api/v1/pods', {
        query: { fieldSelector: `spec.nodeName=${this.nodeName}` },
      }),
      onError: e => {
        if (!this.stopped) this.opts.log(`pod watch: ${errorMessage(e)}`);
      },
    });
    informer.on({
      add: pod => {
        this.upsert(pod);
      },
      update: (_old, pod) => {
        this.upsert(pod);
      },
      delete: pod => {
        const w = this.workers.get(pod.metadata?.uid ?? '');
        if (w) this.forget(pod.metadata?.uid ?? '', w);
      },
    });
    this.informer = informer;
    void informer.start();
  }

  private podByName(ns: string, name: string): PodWorker | undefined {
    for (const w of this.workers.values()) {
      if (w.pod.metadata?.namespace === ns && w.pod.metadata.name === name) return w;
    }
    return undefined;
  }

  private upsert(pod: V1Pod): void {
    if (this.stopped) return;
    const uid = pod.metadata?.uid ?? '';
    const existing = this.workers.get(uid);
    if (existing) {
      existing.update(pod);
      return;
    }
    const phase = pod.status?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') {
      // Finished before this kubelet (re)started: only confirm a pending deletion.
      if (pod.metadata?.deletionTimestamp !== undefined) {
        void this.opts.client.delete(
          `/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}`,
          {
            gracePeriodSeconds: 0,
            preconditions: { uid },
          },
        );
      }
      return;
    }
    const w = new PodWorker(pod, {
      client: this.opts.client,
      run: this.opts.run,
      cni: this.cni,
      cniConfig: () => this.cniConfig.read(),
      volumes: this.volumes,
      images: this.opts.images,
      cluster: this.opts.cluster,
      node: this.opts.node,
      mountLedger: this.opts.mountLedger,
      log: this.opts.log,
    });
    this.workers.set(uid, w);
    this.opts.log(`pod ${w.key}: starting`);
    void w.start();
    if (pod.metadata?.deletionTimestamp !== undefined) w.update(pod);
  }

  /** The pod vanished from the API (force delete): stop it without confirming. */
  private forget(uid: string, w: PodWorker): void {
    void w.terminate(w.pod.spec?.terminationGracePeriodSeconds ?? 5, false).finally(() => {
      this.workers.delete(uid);
    });
  }

  private async register(): Promise<void> {
    const { node } = this.opts;
    const body = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: node.name,
        labels: {
          'kubernetes.io/hostname': node.name,
          'kubernetes.io/os': 'linux',
          'kubernetes.io/arch': process.arch === 'x64' ? 'amd64' : process.arch,
          'ambient-mesh.io/local-node': 'true',
        },
      },
      spec: {
        podCIDR: node.podCidr,
        podCIDRs: node.podCidr6 === undefined ? [node.podCidr] : [node.podCidr, node.podCidr6],
        ...((this.opts.registerWithTaints ?? []).length > 0 ? { taints: this.opts.registerWithTaints } : {}),
      },
    };
    try {
      await this.opts.client.create('/api/v1/nodes', body);
    } catch (e) {
      if (!isConflict(e)) throw e;
    }
    await this.opts.client.ensure('/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases', {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: node.name, namespace: 'kube-node-lease' },
      spec: { holderIdentity: node.name, leaseDurationSeconds: 40, renewTime: microTime() },
    });
  }

  private nodeStatus(): unknown {
    const now = new Date().toISOString();
    const cond = (type: string, status: string, reason: string, message: string) => ({
      type,
      status,
      reason,
      message,
      lastHeartbeatTime: now,
      lastTransitionTime: this.transitions.get(type) ?? now,
    });
    for (const t of ['Ready', 'MemoryPressure', 'DiskPressure', 'PIDPressure'])
      if (!this.transitions.has(t)) this.transitions.set(t, now);
    let machineId = 'ambient-mesh-local';
    try {
      machineId = readFileSync('/etc/machine-id', 'utf8').trim();
    } catch {
      // keep the placeholder
    }
    const resources = { cpu: '8', memory: '16Gi', pods: '110', 'ephemeral-storage': '100Gi' };
    return {
      status: {
        conditions: [
          cond(
            'MemoryPressure',
            'False',
            'KubeletHasSufficientMemory',
            'kubelet has sufficient memory available',
          ),
          cond('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure'),
          cond('PIDPressure', 'False', 'KubeletHasSufficientPID', 'kubelet has sufficient PID available'),
          cond('Ready', 'True', 'KubeletReady', 'ambient-mesh local kubelet is posting ready status'),
        ],
        // A strategic merge patch merges `addresses` on `type`, so two InternalIPs (dual-stack)
        // would collide: the directive replaces the whole list.
        addresses: [
          { $patch: 'replace' },
          { type: 'InternalIP', address: this.opts.node.address },
          ...(this.opts.node.address6 === undefined
            ? []
            : [{ type: 'InternalIP', address: this.opts.node.address6 }]),
          { type: 'Hostname', address: this.nodeName },
        ],
        capacity: resources,
        allocatable: resources,
        daemonEndpoints: { kubeletEndpoint: { Port: KUBELET_PORT } },
        nodeInfo: {
          machineID: machineId,
          systemUUID: machineId,
          bootID: machineId,
          kernelVersion: release(),
          osImage: 'ambient-mesh local node',
          containerRuntimeVersion: 'ambient-mesh-local://0.1.0',
          kubeletVersion: K8S_VERSION,
          kubeProxyVersion: K8S_VERSION,
          operatingSystem: 'linux',
          architecture: process.arch === 'x64' ? 'amd64' : process.arch,
        },
      },
    };
  }

  private readonly transitions = new Map<string, string>();

  private async beat(): Promise<void> {
    if (this.stopped) return;
    const { client } = this.opts;
    try {
      await client.strategicPatch(`/api/v1/nodes/${this.nodeName}/status`, this.nodeStatus());
      await client.mergePatch(
        `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${this.nodeName}`,
        {
          spec: { holderIdentity: this.nodeName, renewTime: microTime() },
        },
      );
    } catch (e) {
      this.opts.log(`heartbeat: ${errorMessage(e)}`);
    }
  }

  /** Stops every pod (grace capped at `maxGraceSeconds`) without touching the API, then the endpoints. */
  async stop(maxGraceSeconds = 5): Promise<void> {
    this.stopped = true;
    await this.informer?.stop();
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
    await Promise.all(
      [...this.workers.values()].map(w =>
        w.terminate(Math.min(w.pod.spec?.terminationGracePeriodSeconds ?? 30, maxGraceSeconds), false),
      ),
    );
    this.workers.clear();
    await new Promise<void>(resolve => {
      if (this.logServer === undefined) resolve();
      else
        this.logServer.close(() => {
          resolve();
        });
      this.logServer?.closeAllConnections();
    });
    await this.streamServer?.stop();
  }
}
