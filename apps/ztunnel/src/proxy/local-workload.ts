/**
 * The pod a proxy serves (upstream's `LocalWorkloadInformation`). A ZDS Add tells ztunnel only
 * the pod's uid, name, namespace and service account; its WDS workload (addresses, trust domain,
 * policies) and its certificate usually arrive later, because the pod IP reaches the API server
 * only once the sandbox is up. The proxy therefore starts at once and each connection waits here,
 * bounded, for the state it needs.
 *
 * Waits never keep the process alive past their bound: each one holds a state subscription and a
 * timer, both released when it settles (found, timed out or aborted).
 */
import { errorMessage } from '@ambient-mesh/errors';
import type { WorkloadCertificate } from '@ambient-mesh/spiffe-certs';
import { WorkloadUnavailableError } from '../errors.ts';
import type { ProxyStateReader } from '../state/proxy-state.ts';
import type { Workload } from '../state/types.ts';
import type { Timers } from '@ambient-mesh/runtime';
import type { WorkloadInfo } from '../zds/state-manager.ts';

export interface LocalWorkloadOptions {
  readonly info: WorkloadInfo;
  readonly nodeName: string;
  readonly state: ProxyStateReader;
  /** Issues the workload's certificate (the node's `CertManager`). */
  readonly certificates: { get(identity: string): Promise<WorkloadCertificate> };
  /** How long one connection waits for the workload and its certificate (upstream: 5 s). */
  readonly timeoutMs: number;
  readonly timers: Timers;
}

export interface LocalState {
  readonly workload: Workload;
  readonly certificate: WorkloadCertificate;
}

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new Error('aborted');
}

export class LocalWorkload {
  readonly info: WorkloadInfo;
  readonly #o: LocalWorkloadOptions;
  /** The WDS uid once matched: later lookups are by uid, with a fallback to matching again. */
  #uid: string | undefined;

  constructor(options: LocalWorkloadOptions) {
    this.#o = options;
    this.info = options.info;
  }

  /** The pod's WDS workload if istiod has sent it; never waits. */
  current(): Workload | undefined {
    if (this.#uid !== undefined) {
      const byUid = this.#o.state.workloadByUid(this.#uid);
      if (byUid !== undefined) return byUid;
    }
    const found = this.#o.state.findLocalWorkload(this.#o.nodeName, this.#o.info);
    this.#uid = found?.uid;
    return found;
  }

  /** The WDS workload, waiting up to the bound for it. */
  workload(signal?: AbortSignal): Promise<Workload> {
    return this.#waitForWorkload(this.#o.timeoutMs, signal);
  }

  /** The workload and its certificate, both within one bound. */
  async ready(signal?: AbortSignal): Promise<LocalState> {
    const deadline = this.#o.timers.now() + this.#o.timeoutMs;
    const workload = await this.#waitForWorkload(this.#o.timeoutMs, signal);
    const remaining = Math.max(0, deadline - this.#o.timers.now());
    const certificate = await this.#bounded(
      this.#o.certificates.get(workload.identity),
      remaining,
      signal,
      () =>
        new WorkloadUnavailableError(
          `no certificate for ${workload.identity} within ${this.#o.timeoutMs} ms; check CA_ADDRESS and the istiod CA logs`,
        ),
    ).catch((err: unknown) => {
      if (err instanceof WorkloadUnavailableError) throw err;
      if (signal?.aborted === true) throw abortError(signal);
      throw new WorkloadUnavailableError(
        `cannot get a certificate for ${workload.identity}: ${errorMessage(err)}`,
        { cause: err },
      );
    });
    return { workload, certificate };
  }

  #describe(): string {
    const { info, nodeName } = this.#o;
    return `${info.namespace}/${info.name} (service account ${info.serviceAccount || 'default'}) on node ${nodeName}`;
  }

  #waitForWorkload(timeoutMs: number, signal: AbortSignal | undefined): Promise<Workload> {
    const found = this.current();
    if (found !== undefined) return Promise.resolve(found);
    let unsubscribe: (() => void) | undefined;
    const arrived = new Promise<Workload>(resolve => {
      unsubscribe = this.#o.state.subscribe(() => {
        const workload = this.current();
        if (workload !== undefined) resolve(workload);
      });
    });
    return this.#bounded(
      arrived,
      timeoutMs,
      signal,
      () =>
        new WorkloadUnavailableError(
          `no WDS workload for ${this.#describe()} after ${timeoutMs} ms; check that istiod sends the pod's Workload with this node, name, namespace and service account`,
        ),
    ).finally(() => unsubscribe?.());
  }

  /** Races `promise` against a timer and an abort signal; all listeners are released on settle. */
  #bounded<T>(
    promise: Promise<T>,
    timeoutMs: number,
    signal: AbortSignal | undefined,
    timeoutError: () => Error,
  ): Promise<T> {
    if (signal?.aborted === true) return Promise.reject(abortError(signal));
    return new Promise<T>((resolve, reject) => {
      const timers = this.#o.timers;
      const settle = (fn: () => void): void => {
        timers.clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        fn();
      };
      const onAbort = (): void => {
        settle(() => {
          reject(abortError(signal as AbortSignal));
        });
      };
      const timer = timers.setTimeout(() => {
        settle(() => {
          reject(timeoutError());
        });
      }, timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      promise.then(
        value => {
          settle(() => {
            resolve(value);
          });
        },
        (err: unknown) => {
          settle(() => {
            reject(err instanceof Error ? err : new Error(String(err)));
          });
        },
      );
    });
  }
}
