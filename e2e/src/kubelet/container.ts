/* eslint-disable @typescript-eslint/no-unsafe-class-instance-assignment -- client-node's models are classes, but the API speaks plain JSON: plain objects of those shapes are what we send and receive. */
import { existsSync, realpathSync } from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { V1Container, V1ContainerState, V1ContainerStatus } from '@kubernetes/client-node';
import type { CommandRunner } from '../exec.ts';
import { ManagedProcess } from '../managed-process.ts';
import { LogStamper, stampsFile } from './log-stamps.ts';
import { mountScript, propagationMode, type BindMount, type KeepVisible } from './mounts.ts';
import { repoRoot } from './images.ts';
import { Prober, runProbe, type ProbeTarget } from './probes.ts';

export interface ContainerLaunch {
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly mounts: readonly BindMount[];
  /** The pod's network namespace (a file under /run/netns). */
  readonly netnsPath: string;
  /** Hostname in the container's own UTS namespace (the pod's hostname); unset: the host's. */
  readonly hostname?: string;
}

/** The shell line that sets the hostname inside a fresh UTS namespace. */
export function hostnameScript(hostname: string | undefined): string {
  if (hostname === undefined) return '';
  if (!/^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,251}[a-zA-Z0-9])?$/.test(hostname))
    throw new Error(`'${hostname}' is not a valid hostname`);
  return `printf %s '${hostname}' > /proc/sys/kernel/hostname || exit 1; `;
}

export interface ContainerHost {
  readonly run: CommandRunner;
  readonly logDir: string;
  readonly probeTarget: Omit<ProbeTarget, 'execPrefix'>;
  /** Something in the container changed (state, readiness): the pod worker reports status. */
  changed(): void;
  /** The process exited; the worker decides about restarts. */
  exited(c: ContainerRunner, code: number): void;
}

const nowIso = (): string => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

/**
 * One container of a pod: a process inside the pod netns with its own mount and UTS namespaces
 * (`unshare --mount --uts`, hostname = the pod's), probes, and the state Kubernetes reports for it.
 */
export class ContainerRunner {
  readonly spec: V1Container;
  readonly image: string;
  restartCount = 0;
  ready = false;
  started = false;
  state: V1ContainerState = { waiting: { reason: 'ContainerCreating' } };
  lastState: V1ContainerState = {};
  private proc: ManagedProcess | undefined;
  private probers: Prober[] = [];
  private readonly host: ContainerHost;
  private readonly podKey: string;
  private stopping = false;
  private stamper: LogStamper | undefined;

  constructor(spec: V1Container, podKey: string, host: ContainerHost) {
    this.spec = spec;
    this.image = spec.image ?? '';
    this.podKey = podKey;
    this.host = host;
  }

  get name(): string {
    return this.spec.name;
  }

  get pid(): number | undefined {
    return this.proc?.running === true ? this.proc.pid : undefined;
  }

  logFile(previous = false): string {
    return join(this.host.logDir, `${this.name}${previous ? '.previous' : ''}.log`);
  }

  get running(): boolean {
    return this.proc?.running === true;
  }

  /**
   * The repository and the Node binary stay visible to the container's command whatever its
   * volumes shadow (the clone may live under `/tmp`, where pods often mount an `emptyDir`).
   */
  private async keepVisible(): Promise<KeepVisible[]> {
    const root = repoRoot();
    const nodeDir = dirname(realpathSync(process.execPath));
    const paths = nodeDir.startsWith(`${root}/`) ? [root] : [root, nodeDir];
    return Promise.all(
      paths.map(async (path, i) => {
        const stash = join(this.host.logDir, `.keep-${String(i)}`);
        await mkdir(stash, { recursive: true });
        return { path, stash };
      }),
    );
  }

  async start(launch: ContainerLaunch): Promise<void> {
    this.stopping = false;
    if (this.restartCount > 0 && existsSync(this.logFile())) {
      await rename(this.logFile(), this.logFile(true));
      if (existsSync(stampsFile(this.logFile())))
        await rename(stampsFile(this.logFile()), stampsFile(this.logFile(true)));
    }
    const script =
      hostnameScript(launch.hostname) +
      mountScript(launch.mounts, this.spec.workingDir, await this.keepVisible());
    const uts = launch.hostname === undefined ? [] : ['--uts'];
    const argv = [
      'nsenter', `--net=${launch.netnsPath}`, '--',
      'unshare', '--mount', ...uts, '--propagation', propagationMode(launch.mounts), '--',
      '/bin/sh', '-c', script, `am-${this.name}`, ...launch.argv,
    ]; // prettier-ignore
    const proc = new ManagedProcess({
      name: `${this.podKey}/${this.name}`,
      argv,
      logFile: this.logFile(),
      env: launch.env,
    });
    this.proc = proc;
    this.stamper?.stop();
    const stamper = new LogStamper(this.logFile());
    this.stamper = stamper;
    this.state = { running: { startedAt: new Date(nowIso()) } };
    this.started = true;
    this.ready = false;
    void proc.exited.then(info => {
      stamper.stop();
      if (this.proc !== proc) return;
      this.stopProbes();
      const code = info.code ?? 128 + signalNumber(info.signal);
      const startedAt = this.state.running?.startedAt;
      this.state = {
        terminated: {
          exitCode: code,
          reason: code === 0 ? 'Completed' : this.stopping ? 'Killed' : 'Error',
          startedAt,
          finishedAt: new Date(nowIso()),
          ...(info.signal === null ? {} : { signal: signalNumber(info.signal) }),
        },
      };
      this.ready = false;
      this.started = false;
      this.host.changed();
      this.host.exited(this, code);
    });
    this.startProbes();
    this.host.changed();
  }

  private startProbes(): void {
    const target: ProbeTarget = {
      ...this.host.probeTarget,
      execPrefix: () => {
        const pid = this.pid;
        return pid === undefined ? undefined : ['nsenter', '-t', String(pid), '-n', '-m', '-u', '--'];
      },
    };
    const attempt = (probe: NonNullable<V1Container['livenessProbe']>) => () =>
      runProbe(probe, target, this.host.run);
    const readiness = this.spec.readinessProbe;
    const liveness = this.spec.livenessProbe;
    const startMain = (): void => {
      if (readiness) {
        const p = new Prober(readiness, attempt(readiness), ok => {
          this.ready = ok;
          this.host.changed();
        });
        this.probers.push(p);
        p.start();
      } else {
        this.ready = true;
        this.host.changed();
      }
      if (liveness) {
        const p = new Prober(liveness, attempt(liveness), ok => {
          if (!ok) void this.kill((this.spec.livenessProbe?.terminationGracePeriodSeconds ?? 5) * 1000);
        });
        this.probers.push(p);
        p.start();
      }
    };
    const startup = this.spec.startupProbe;
    if (startup) {
      const p = new Prober(startup, attempt(startup), ok => {
        p.stop();
        if (ok) startMain();
        else void this.kill(5_000);
      });
      this.probers.push(p);
      p.start();
    } else startMain();
  }

  private stopProbes(): void {
    for (const p of this.probers) p.stop();
    this.probers = [];
  }

  /** SIGTERM, `graceMs`, SIGKILL. */
  async kill(graceMs: number): Promise<void> {
    this.stopping = true;
    this.stopProbes();
    await this.proc?.stop(graceMs);
  }

  /** Moves the current terminated state to lastState and counts a restart. */
  prepareRestart(reason = 'CrashLoopBackOff'): void {
    this.lastState = this.state;
    this.restartCount++;
    this.state = { waiting: { reason } };
  }

  status(): V1ContainerStatus {
    return {
      name: this.name,
      image: this.image,
      imageID: `ambient-mesh-local://${this.image}`,
      containerID: this.proc?.pid === undefined ? undefined : `ambient-mesh-local://${this.proc.pid}`,
      ready: this.ready,
      started: this.started,
      restartCount: this.restartCount,
      state: this.state,
      lastState: this.lastState,
    };
  }
}

function signalNumber(signal: NodeJS.Signals | null): number {
  const table: Partial<Record<NodeJS.Signals, number>> = {
    SIGKILL: 9,
    SIGTERM: 15,
    SIGINT: 2,
    SIGHUP: 1,
    SIGABRT: 6,
  };
  return signal === null ? 0 : (table[signal] ?? 1);
}
