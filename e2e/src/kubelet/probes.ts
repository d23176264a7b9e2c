import http from 'node:http';
import net from 'node:net';
import type { V1Probe, V1ContainerPort } from '@kubernetes/client-node';
import type { CommandRunner } from '../exec.ts';

export type ProbeOutcome = 'success' | 'failure';

export interface ProbeTarget {
  /** Address probes dial: the pod IP (or the node address for hostNetwork pods). */
  readonly host: string;
  readonly ports: readonly V1ContainerPort[];
  /** argv prefix that enters the container (nsenter into its netns and mount ns) for exec probes. */
  readonly execPrefix: () => string[] | undefined;
}

function resolvePort(port: number | string, ports: readonly V1ContainerPort[]): number {
  if (typeof port === 'number') return port;
  if (/^\d+$/.test(port)) return Number(port);
  return ports.find(p => p.name === port)?.containerPort ?? 0;
}

/**
 * Runs one probe attempt. httpGet and tcpSocket dial from the kubelet, which lives in the node
 * netns (as a real kubelet probes from the node); exec runs inside the container's namespaces.
 */
export async function runProbe(
  probe: V1Probe,
  target: ProbeTarget,
  run: CommandRunner,
): Promise<ProbeOutcome> {
  const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
  if (probe.httpGet) {
    const g = probe.httpGet;
    const port = resolvePort(g.port, target.ports);
    return new Promise(resolve => {
      const req = http.get(
        {
          host: g.host ?? target.host,
          port,
          path: g.path ?? '/',
          timeout: timeoutMs,
          headers: Object.fromEntries((g.httpHeaders ?? []).map(h => [h.name, h.value])),
        },
        res => {
          res.resume();
          const code = res.statusCode ?? 0;
          resolve(code >= 200 && code < 400 ? 'success' : 'failure');
        },
      );
      req.on('timeout', () => req.destroy());
      req.on('error', () => {
        resolve('failure');
      });
    });
  }
  if (probe.tcpSocket) {
    const port = resolvePort(probe.tcpSocket.port, target.ports);
    return new Promise(resolve => {
      const sock = net.connect({ host: probe.tcpSocket?.host ?? target.host, port, timeout: timeoutMs });
      sock.on('connect', () => {
        sock.destroy();
        resolve('success');
      });
      sock.on('timeout', () => {
        sock.destroy();
        resolve('failure');
      });
      sock.on('error', () => {
        resolve('failure');
      });
    });
  }
  if (probe.exec?.command) {
    const prefix = target.execPrefix();
    if (prefix === undefined) return 'failure';
    const res = await run([...prefix, ...probe.exec.command], { allowFailure: true, timeoutMs });
    return res.code === 0 ? 'success' : 'failure';
  }
  return 'success';
}

/**
 * Periodic prober with Kubernetes' thresholds: reports a state change once `successThreshold`
 * consecutive successes or `failureThreshold` consecutive failures are seen.
 */
export class Prober {
  private timer: NodeJS.Timeout | undefined;
  private successes = 0;
  private failures = 0;
  private state: boolean | undefined;
  private stopped = false;

  private readonly probe: V1Probe;
  private readonly attempt: () => Promise<ProbeOutcome>;
  private readonly onChange: (ok: boolean) => void;

  constructor(probe: V1Probe, attempt: () => Promise<ProbeOutcome>, onChange: (ok: boolean) => void) {
    this.probe = probe;
    this.attempt = attempt;
    this.onChange = onChange;
  }

  start(): void {
    this.schedule((this.probe.initialDelaySeconds ?? 0) * 1000);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), ms);
  }

  private async tick(): Promise<void> {
    const outcome = await this.attempt();
    if (this.stopped) return;
    if (outcome === 'success') {
      this.successes++;
      this.failures = 0;
      if (this.successes >= (this.probe.successThreshold ?? 1) && this.state !== true) {
        this.state = true;
        this.onChange(true);
      }
    } else {
      this.failures++;
      this.successes = 0;
      if (this.failures >= (this.probe.failureThreshold ?? 3) && this.state !== false) {
        this.state = false;
        this.onChange(false);
      }
    }
    this.schedule((this.probe.periodSeconds ?? 10) * 1000);
  }
}
