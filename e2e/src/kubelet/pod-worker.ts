/* eslint-disable @typescript-eslint/no-unsafe-class-instance-assignment, @typescript-eslint/no-misused-spread -- client-node's models are classes, but the API speaks plain JSON: this file builds and reads plain objects of those shapes. */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { V1Container, V1Pod, V1PodCondition, V1PodStatus } from '@kubernetes/client-node';
import { errorMessage } from '@ambient-mesh/errors';
import type { CommandRunner } from '../exec.ts';
import type { KubeClient } from '@ambient-mesh/kube';
import { podNetnsName, type ClusterLayout, type NodeLayout } from '../layout.ts';
import { resultIPs, type CniNetworkConfig, type CniRunner } from '../network/cni.ts';
import { ContainerRunner, type ContainerHost } from './container.ts';
import { podHostname, podHostsFile, type PodHostname } from './hostname.ts';
import { expandVars, imageEnv, resolveArgv, type ImageMap } from './images.ts';
import { ensureMountPoint, isFile, type BindMount } from './mounts.ts';
import { fieldRefValue, type PreparedVolume, type TokenRefresher, type VolumeManager } from './volumes.ts';

export interface PodWorkerDeps {
  readonly client: KubeClient;
  readonly run: CommandRunner;
  readonly cni: CniRunner;
  /** The node's CNI network, read at each ADD/DEL (a chained plugin may be installed meanwhile). */
  readonly cniConfig: () => Promise<CniNetworkConfig>;
  readonly volumes: VolumeManager;
  readonly images: ImageMap;
  readonly cluster: ClusterLayout;
  readonly node: NodeLayout;
  /** File recording mount points created on the host (see mounts.ts). */
  readonly mountLedger: string;
  readonly log: (msg: string) => void;
}

/** Life of a pod on this node; transitions only forward. */
export type PodWorkerState = 'starting' | 'running' | 'finished' | 'terminating' | 'gone';

const BACKOFF_BASE_MS = 1_000;
const BACKOFF_MAX_MS = 30_000;
/** Sandbox attempts before the pod is left failed (about 8 hours at the maximum back-off). */
const SANDBOX_MAX_ATTEMPTS = 1_000;

/**
 * Runs one pod: sandbox (netns + CNI), volumes, containers, probes, status; and its teardown
 * (SIGTERM, grace, SIGKILL, CNI DEL, netns removed) when the pod is deleted.
 */
export class PodWorker {
  pod: V1Pod;
  state: PodWorkerState = 'starting';
  readonly uid: string;
  readonly dir: string;
  private readonly deps: PodWorkerDeps;
  private containers: ContainerRunner[] = [];
  private initDone = false;
  private podIP: string | undefined;
  /** Every pod address, IPv4 first (dual-stack pods have two). */
  private podIPs: readonly string[] = [];
  private netnsPath: string | undefined;
  private ownNetns: string | undefined;
  private sandboxUp = false;
  private prepared: PreparedVolume[] = [];
  private refresher: TokenRefresher | undefined;
  private startError: string | undefined;
  private startTime = new Date();
  private reportTimer: NodeJS.Timeout | undefined;
  private restartTimers = new Set<NodeJS.Timeout>();
  private startPromise: Promise<void> | undefined;
  private terminatePromise: Promise<void> | undefined;
  private wakeBackoff: (() => void) | undefined;

  constructor(pod: V1Pod, deps: PodWorkerDeps) {
    this.pod = pod;
    this.deps = deps;
    this.uid = pod.metadata?.uid ?? '';
    this.dir = join(deps.node.stateDir, 'pods', this.uid);
  }

  get key(): string {
    return `${this.pod.metadata?.namespace}/${this.pod.metadata?.name}`;
  }

  /** Whether terminate() has begun (a getter, so checks after awaits are not narrowed away). */
  get terminating(): boolean {
    return this.terminatePromise !== undefined;
  }

  get hostNetwork(): boolean {
    return this.pod.spec?.hostNetwork === true;
  }

  /** A newer copy of the pod from the watch. */
  update(pod: V1Pod): void {
    this.pod = pod;
    if (pod.metadata?.deletionTimestamp !== undefined && this.terminatePromise === undefined) {
      void this.terminate(pod.metadata.deletionGracePeriodSeconds ?? 30, true);
    }
  }

  /** The pod's network namespace file once its sandbox exists (the node's for hostNetwork pods). */
  get sandboxNetnsPath(): string | undefined {
    return this.netnsPath;
  }

  findContainer(name: string | undefined): ContainerRunner | undefined {
    return name === undefined || name === ''
      ? this.containers[0]
      : this.containers.find(c => c.name === name);
  }

  start(): Promise<void> {
    this.startPromise ??= this.doStart().catch((e: unknown) => {
      this.startError = errorMessage(e);
      this.deps.log(`pod ${this.key}: start failed: ${this.startError}`);
      this.scheduleReport();
    });
    return this.startPromise;
  }

  private async doStart(): Promise<void> {
    const { node } = this.deps;
    await mkdir(join(this.dir, 'logs'), { recursive: true });
    if (this.hostNetwork) {
      this.netnsPath = `/run/netns/${node.netns}`;
      this.podIP = node.address;
      this.podIPs = node.address6 === undefined ? [node.address] : [node.address, node.address6];
    } else {
      await this.sandboxWithRetry();
    }
    if (this.terminatePromise !== undefined) return;
    // Volumes can reference objects that appear a moment later (kube-root-ca.crt is published by
    // the controller-manager): retry for a bounded time like a kubelet does.
    let prepared: Awaited<ReturnType<VolumeManager['prepare']>> | undefined;
    for (let attempt = 0; prepared === undefined; attempt++) {
      try {
        prepared = await this.deps.volumes.prepare(this.viewWithIPs(), this.dir);
      } catch (e) {
        if (attempt >= 60 || this.terminating) throw e;
        this.startError = errorMessage(e);
        this.scheduleReport();
        await new Promise(r => setTimeout(r, 1_000));
      }
    }
    this.startError = undefined;
    this.prepared = prepared.volumes;
    this.refresher = prepared.refresher;
    await writeFile(join(this.dir, 'resolv.conf'), this.resolvConf());
    await writeFile(join(this.dir, 'hosts'), podHostsFile(this.podIP, this.hostnames()));
    this.state = 'running';
    for (const spec of this.pod.spec?.initContainers ?? []) {
      if (this.terminating) return;
      const ok = await this.runInit(spec);
      if (!ok) return;
    }
    this.initDone = true;
    this.containers = (this.pod.spec?.containers ?? []).map(
      c => new ContainerRunner(c, this.key, this.host(false, c)),
    );
    for (const c of this.containers) {
      if (this.terminating) return;
      await this.launch(c);
    }
  }

  /**
   * Creates the sandbox (netns + CNI ADD), retrying with back-off as a kubelet does: a failed ADD
   * (a chained plugin whose agent is not up yet) is cleaned up with CNI DEL and the netns removed,
   * and the pod reports `SandboxFailed` until an attempt succeeds or the pod is deleted.
   */
  private async sandboxWithRetry(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.createSandbox();
        this.startError = undefined;
        this.scheduleReport();
        return;
      } catch (e) {
        this.startError = errorMessage(e);
        this.deps.log(`pod ${this.key}: sandbox attempt ${attempt + 1} failed: ${this.startError}`);
        this.scheduleReport();
        await this.teardownSandbox(true);
        this.netnsPath = undefined;
        if (this.terminating || attempt + 1 >= SANDBOX_MAX_ATTEMPTS) throw e;
        const woken = await this.backoff(Math.min(BACKOFF_BASE_MS * 2 ** attempt, BACKOFF_MAX_MS));
        if (woken) throw e;
      }
    }
  }

  private async createSandbox(): Promise<void> {
    const { node, cluster } = this.deps;
    const ns = podNetnsName(cluster, this.uid);
    await this.deps.run(['ip', 'netns', 'add', ns]);
    this.ownNetns = ns;
    this.netnsPath = `/run/netns/${ns}`;
    const inv = {
      containerId: this.uid,
      netnsPath: this.netnsPath,
      runInNetns: node.netns,
      ifName: 'eth0',
    };
    const args = {
      IgnoreUnknown: '1',
      K8S_POD_NAMESPACE: this.pod.metadata?.namespace ?? '',
      K8S_POD_NAME: this.pod.metadata?.name ?? '',
      K8S_POD_UID: this.uid,
      K8S_POD_INFRA_CONTAINER_ID: this.uid,
    };
    await this.deps.cni.loopback('ADD', inv);
    const result = await this.deps.cni.add(await this.deps.cniConfig(), { ...inv, args });
    this.sandboxUp = true;
    this.podIPs = resultIPs(result);
    this.podIP = this.podIPs.find(ip => !ip.includes(':'));
  }

  /** Waits `ms`; resolves true at once when terminate() wakes it. */
  private backoff(ms: number): Promise<boolean> {
    return new Promise(resolve => {
      const t = setTimeout(() => {
        this.wakeBackoff = undefined;
        resolve(false);
      }, ms);
      this.wakeBackoff = () => {
        clearTimeout(t);
        resolve(true);
      };
    });
  }

  private async runInit(spec: V1Container): Promise<boolean> {
    for (let attempt = 0; attempt < 1_000; attempt++) {
      const code = await new Promise<number>(resolve => {
        const runner = new ContainerRunner(spec, this.key, {
          ...this.host(true, spec),
          exited: (_c, c) => {
            resolve(c);
          },
        });
        runner.restartCount = attempt;
        this.containers = [runner];
        void this.launch(runner).catch(() => {
          resolve(1);
        });
      });
      if (code === 0) return true;
      if (this.pod.spec?.restartPolicy === 'Never' || this.terminatePromise !== undefined) {
        this.state = 'finished';
        this.scheduleReport();
        return false;
      }
      await new Promise(r => setTimeout(r, Math.min(BACKOFF_BASE_MS * 2 ** attempt, BACKOFF_MAX_MS)));
    }
    return false;
  }

  private host(init: boolean, spec: V1Container): ContainerHost {
    return {
      run: this.deps.run,
      logDir: join(this.dir, 'logs'),
      probeTarget: { host: this.podIP ?? '127.0.0.1', ports: spec.ports ?? [] },
      changed: () => {
        this.scheduleReport();
      },
      exited: (c, code) => {
        if (!init) this.onExit(c, code);
      },
    };
  }

  private onExit(c: ContainerRunner, code: number): void {
    if (this.terminatePromise !== undefined) return;
    const policy = this.pod.spec?.restartPolicy ?? 'Always';
    const restart = policy === 'Always' || (policy === 'OnFailure' && code !== 0);
    if (!restart) {
      if (this.containers.every(x => !x.running && x.state.terminated !== undefined)) {
        this.state = 'finished';
        void this.teardownSandbox();
      }
      this.scheduleReport();
      return;
    }
    const delay = Math.min(BACKOFF_BASE_MS * 2 ** c.restartCount, BACKOFF_MAX_MS);
    c.prepareRestart();
    this.scheduleReport();
    const t = setTimeout(() => {
      this.restartTimers.delete(t);
      if (this.terminatePromise === undefined) {
        this.launch(c).catch((e: unknown) => {
          this.deps.log(`pod ${this.key}: restart of ${c.name} failed: ${errorMessage(e)}`);
        });
      }
    }, delay);
    this.restartTimers.add(t);
  }

  /** The pod's hostname; hostNetwork pods share the node's, which is the node name. */
  private hostnames(): PodHostname {
    if (this.hostNetwork) return { hostname: this.deps.node.name, fqdn: undefined, uts: this.deps.node.name };
    return podHostname(this.pod, this.deps.cluster.clusterDomain);
  }

  /** The pod as the downward API sees it once the sandbox has its address. */
  private viewWithIPs(): V1Pod {
    const ip = this.podIP ?? '';
    return {
      ...this.pod,
      status: {
        ...this.pod.status,
        podIP: ip,
        podIPs: this.podIPs.length > 0 ? this.podIPs.map(i => ({ ip: i })) : [{ ip }],
        hostIP: this.deps.node.address,
        hostIPs: [{ ip: this.deps.node.address }],
      },
    };
  }

  private resolvConf(): string {
    const ns = this.pod.metadata?.namespace ?? 'default';
    const d = this.deps.cluster.clusterDomain;
    return `nameserver ${this.deps.cluster.dnsServiceIp}\nsearch ${ns}.svc.${d} svc.${d} ${d}\noptions ndots:5\n`;
  }

  private async envFor(spec: V1Container): Promise<Record<string, string>> {
    const { cluster } = this.deps;
    const env: Record<string, string> = {
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      HOME: '/root',
      HOSTNAME: this.pod.metadata?.name ?? '',
      KUBERNETES_SERVICE_HOST: cluster.kubernetesServiceIp,
      KUBERNETES_SERVICE_PORT: '443',
      KUBERNETES_SERVICE_PORT_HTTPS: '443',
      KUBERNETES_PORT: `tcp://${cluster.kubernetesServiceIp}:443`,
      ...imageEnv(this.deps.images, spec.image ?? ''),
    };
    const ns = this.pod.metadata?.namespace ?? 'default';
    const view = this.viewWithIPs();
    const lookup = async (kind: 'configmaps' | 'secrets', name: string): Promise<Record<string, string>> => {
      const obj = await this.deps.client.find<{ data?: Record<string, string> }>(
        `/api/v1/namespaces/${ns}/${kind}/${name}`,
      );
      const data = obj?.data ?? {};
      return kind === 'secrets'
        ? Object.fromEntries(
            Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
          )
        : data;
    };
    for (const from of spec.envFrom ?? []) {
      const src = from.configMapRef
        ? await lookup('configmaps', from.configMapRef.name!)
        : from.secretRef
          ? await lookup('secrets', from.secretRef.name!)
          : {};
      for (const [k, v] of Object.entries(src)) env[`${from.prefix ?? ''}${k}`] = v;
    }
    for (const e of spec.env ?? []) {
      if (e.valueFrom?.fieldRef) env[e.name] = fieldRefValue(view, e.valueFrom.fieldRef.fieldPath);
      else if (e.valueFrom?.configMapKeyRef) {
        const v = (await lookup('configmaps', e.valueFrom.configMapKeyRef.name!))[
          e.valueFrom.configMapKeyRef.key
        ];
        if (v !== undefined) env[e.name] = v;
      } else if (e.valueFrom?.secretKeyRef) {
        const v = (await lookup('secrets', e.valueFrom.secretKeyRef.name!))[e.valueFrom.secretKeyRef.key];
        if (v !== undefined) env[e.name] = v;
      } else if (e.valueFrom?.resourceFieldRef) env[e.name] = '0';
      else env[e.name] = expandVars(e.value ?? '', env);
    }
    return env;
  }

  private async mountsFor(spec: V1Container): Promise<BindMount[]> {
    const mounts: BindMount[] = [];
    for (const m of spec.volumeMounts ?? []) {
      const vol = this.prepared.find(v => v.name === m.name);
      if (vol === undefined) continue;
      const source = m.subPath ? join(vol.path, m.subPath) : vol.path;
      await ensureMountPoint(m.mountPath, isFile(source), this.deps.mountLedger);
      mounts.push({
        source,
        target: m.mountPath,
        readOnly: m.readOnly === true,
        propagation: m.mountPropagation === 'HostToContainer' || m.mountPropagation === 'Bidirectional',
      });
    }
    if (this.pod.spec?.dnsPolicy !== 'Default') {
      mounts.push({ source: join(this.dir, 'resolv.conf'), target: '/etc/resolv.conf', readOnly: true });
    }
    mounts.push({ source: join(this.dir, 'hosts'), target: '/etc/hosts', readOnly: true });
    return mounts;
  }

  private async launch(c: ContainerRunner): Promise<void> {
    const env = await this.envFor(c.spec);
    const argv = resolveArgv(this.deps.images, c.image, c.spec.command, c.spec.args).map(a =>
      expandVars(a, env),
    );
    const mounts = await this.mountsFor(c.spec);
    await c.start({ argv, env, mounts, netnsPath: this.netnsPath!, hostname: this.hostnames().uts });
  }

  /** Stops every container (SIGTERM, grace, SIGKILL), then the sandbox; optionally confirms deletion to the API. */
  terminate(graceSeconds: number, confirmToApi: boolean): Promise<void> {
    this.terminatePromise ??= (async () => {
      this.state = 'terminating';
      for (const t of this.restartTimers) clearTimeout(t);
      this.restartTimers.clear();
      this.wakeBackoff?.();
      await this.startPromise;
      const graceMs = Math.max(graceSeconds, 0) * 1000;
      await Promise.all(this.containers.map(c => c.kill(graceMs)));
      this.refresher?.cancel();
      await this.teardownSandbox();
      if (this.reportTimer !== undefined) clearTimeout(this.reportTimer);
      this.state = 'gone';
      if (confirmToApi) {
        const ns = this.pod.metadata?.namespace ?? 'default';
        await this.deps.client
          .delete(`/api/v1/namespaces/${ns}/pods/${this.pod.metadata?.name}`, {
            gracePeriodSeconds: 0,
            preconditions: { uid: this.uid },
          })
          .catch((e: unknown) => {
            this.deps.log(`pod ${this.key}: final delete failed: ${errorMessage(e)}`);
          });
      }
      await rm(this.dir, { recursive: true, force: true });
    })();
    return this.terminatePromise;
  }

  /** Removes the sandbox; `afterFailedAdd` runs CNI DEL even though ADD did not finish (frees its IP). */
  private async teardownSandbox(afterFailedAdd = false): Promise<void> {
    const ns = this.ownNetns;
    if (ns === undefined) return;
    this.ownNetns = undefined;
    const inv = {
      containerId: this.uid,
      netnsPath: `/run/netns/${ns}`,
      runInNetns: this.deps.node.netns,
      ifName: 'eth0',
    };
    if (this.sandboxUp || afterFailedAdd) {
      this.sandboxUp = false;
      await this.deps.cni.del(await this.deps.cniConfig(), inv).catch((e: unknown) => {
        this.deps.log(`pod ${this.key}: CNI DEL: ${errorMessage(e)}`);
      });
      await this.deps.cni.loopback('DEL', inv).catch(() => undefined);
    }
    // Anything still inside the netns (a stray child of a container) goes with it.
    const pids = await this.deps.run(['ip', 'netns', 'pids', ns], { allowFailure: true });
    for (const pid of pids.stdout.split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // gone already
      }
    }
    await this.deps.run(['ip', 'netns', 'del', ns], { allowFailure: true });
  }

  private scheduleReport(): void {
    if (this.reportTimer !== undefined || this.state === 'gone' || this.terminatePromise !== undefined)
      return;
    this.reportTimer = setTimeout(() => {
      this.reportTimer = undefined;
      void this.report();
    }, 50);
  }

  private async report(): Promise<void> {
    const ns = this.pod.metadata?.namespace ?? 'default';
    try {
      // A merge patch keeps fields it does not name: clear a cleared failure explicitly.
      const cleared = this.startError === undefined ? { reason: null, message: null } : {};
      await this.deps.client.mergePatch(`/api/v1/namespaces/${ns}/pods/${this.pod.metadata?.name}/status`, {
        status: { ...this.status(), ...cleared },
      });
    } catch (e) {
      this.deps.log(`pod ${this.key}: status update failed: ${errorMessage(e)}`);
    }
  }

  /** The pod status this node reports. */
  status(): V1PodStatus {
    const now = new Date();
    const cond = (type: string, ok: boolean, reason?: string): V1PodCondition => {
      const prev = this.pod.status?.conditions?.find(c => c.type === type);
      const status = ok ? 'True' : 'False';
      return {
        type,
        status,
        lastTransitionTime:
          prev?.status === status && prev.lastTransitionTime ? prev.lastTransitionTime : now,
        ...(reason === undefined || ok ? {} : { reason }),
      };
    };
    const statuses = this.initDone ? this.containers.map(c => c.status()) : [];
    const initStatuses = this.initDone ? [] : this.containers.map(c => c.status());
    const mainSpecs = this.pod.spec?.containers ?? [];
    const allReady =
      this.initDone && this.containers.length === mainSpecs.length && this.containers.every(c => c.ready);
    let phase: string = 'Pending';
    if (this.state === 'finished') {
      phase =
        this.containers.every(c => c.state.terminated?.exitCode === 0) && this.initDone
          ? 'Succeeded'
          : 'Failed';
    } else if (this.initDone && this.containers.some(c => c.started || c.restartCount > 0)) phase = 'Running';
    const scheduled = this.pod.status?.conditions?.find(c => c.type === 'PodScheduled');
    const ip = this.podIP;
    return {
      phase,
      ...(this.startError === undefined ? {} : { reason: 'SandboxFailed', message: this.startError }),
      hostIP: this.deps.node.address,
      hostIPs: [{ ip: this.deps.node.address }],
      ...(ip === undefined ? {} : { podIP: ip, podIPs: this.podIPs.map(i => ({ ip: i })) }),
      startTime: this.startTime,
      qosClass: this.pod.status?.qosClass,
      conditions: [
        cond('PodReadyToStartContainers', this.netnsPath !== undefined && this.state !== 'finished'),
        cond('Initialized', this.initDone),
        cond('ContainersReady', allReady && this.state !== 'finished', 'ContainersNotReady'),
        cond('Ready', allReady && this.state !== 'finished', 'ContainersNotReady'),
        ...(scheduled ? [scheduled] : []),
      ],
      containerStatuses:
        statuses.length > 0
          ? statuses
          : mainSpecs.map(s => ({
              name: s.name,
              image: s.image ?? '',
              imageID: '',
              ready: false,
              restartCount: 0,
              started: false,
              state: {
                waiting: {
                  reason: this.startError === undefined ? 'ContainerCreating' : 'CreateContainerError',
                },
              },
            })),
      ...(initStatuses.length > 0 ? { initContainerStatuses: initStatuses } : {}),
    };
  }
}
