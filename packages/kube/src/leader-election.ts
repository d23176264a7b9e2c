/**
 * Leader election over a `coordination.k8s.io/v1` Lease, with client-go's semantics: the holder
 * renews `spec.renewTime` every `retryPeriodMs`; a candidate takes the Lease once the holder's
 * record has not changed for `leaseDurationMs` *as observed on the candidate's own clock* (so clock
 * skew between replicas does not matter); every write carries the `resourceVersion` it read, so two
 * candidates can never both win (the loser gets 409 Conflict). A leader that cannot renew within
 * `renewDeadlineMs` steps down before its Lease can expire for the others. `stop()` releases the
 * Lease (empty holder), so a graceful shutdown hands over at once.
 *
 * `Leadership` is the read side the rest of a program gates on: `isLeader()` and `onChange`.
 */
import { errorMessage } from '@ambient-mesh/errors';
import { isAlreadyExists, isConflict, isNotFound } from './errors.ts';
import { systemTimers, type Timers } from './timers.ts';

/** What a leader-gated component reads. */
export interface Leadership {
  isLeader(): boolean;
  /** Called with the new value whenever leadership is gained or lost; returns an unsubscribe. */
  onChange(listener: (leader: boolean) => void): () => void;
}

/** Leadership that is always held: a single replica, or a program without Kubernetes. */
export const alwaysLeader: Leadership = Object.freeze({
  isLeader: () => true,
  onChange: () => () => undefined,
});

export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

export interface Lease {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
  spec?: LeaseSpec;
}

/** The slice of `KubeClient` the elector uses. */
export interface LeaseClient {
  find<T>(path: string): Promise<T | undefined>;
  create<T>(path: string, body: unknown): Promise<T>;
  mergePatch<T>(path: string, body: unknown): Promise<T>;
}

export interface LeaderElectorLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  debug(fields: object, message: string): void;
}

export interface LeaderElectorOptions {
  readonly client: LeaseClient;
  readonly namespace: string;
  /** The Lease's name (the lock), e.g. upstream istiod's `istio-status-leader`. */
  readonly name: string;
  /** This candidate's identity, written as `holderIdentity` (istiod: its pod name). */
  readonly identity: string;
  /** How long a silent holder keeps the Lease (default 30 s, upstream istiod's TTL). */
  readonly leaseDurationMs?: number;
  /** How long a leader keeps trying to renew before it steps down (default half the duration). */
  readonly renewDeadlineMs?: number;
  /** Interval between attempts to acquire or renew (default a quarter of the duration). */
  readonly retryPeriodMs?: number;
  readonly timers?: Timers;
  readonly logger?: LeaderElectorLogger;
  /** 0..1, multiplied into the random part added to a candidate's retry period (default 0.2). */
  readonly jitter?: number;
  readonly random?: () => number;
}

/** `metav1.MicroTime` as the apiserver writes it: RFC 3339 with microseconds. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export function leasePath(namespace: string, name: string): string {
  return `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases/${encodeURIComponent(name)}`;
}

type Attempt = 'held' | 'taken-by-other' | 'failed';

export class LeaderElector implements Leadership {
  readonly #o: LeaderElectorOptions;
  readonly #timers: Timers;
  readonly #path: string;
  readonly #leaseDurationMs: number;
  readonly #renewDeadlineMs: number;
  readonly #retryPeriodMs: number;
  readonly #listeners = new Set<(leader: boolean) => void>();
  #leader = false;
  #running = false;
  #timer: unknown;
  #inFlight: Promise<void> | undefined;
  /** The last record seen and when (our clock) it last changed. */
  #observed: { key: string; at: number; resourceVersion: string | undefined; holder: string } | undefined;
  #lastRenewAt = 0;

  constructor(options: LeaderElectorOptions) {
    this.#o = options;
    this.#timers = options.timers ?? systemTimers;
    this.#path = leasePath(options.namespace, options.name);
    this.#leaseDurationMs = options.leaseDurationMs ?? 30_000;
    this.#renewDeadlineMs = options.renewDeadlineMs ?? this.#leaseDurationMs / 2;
    this.#retryPeriodMs = options.retryPeriodMs ?? this.#leaseDurationMs / 4;
    if (!(this.#leaseDurationMs > this.#renewDeadlineMs && this.#renewDeadlineMs > this.#retryPeriodMs)) {
      throw new RangeError(
        `leader election ${options.name}: need leaseDuration > renewDeadline > retryPeriod ` +
          `(got ${String(this.#leaseDurationMs)} ms, ${String(this.#renewDeadlineMs)} ms, ${String(this.#retryPeriodMs)} ms)`,
      );
    }
  }

  get name(): string {
    return this.#o.name;
  }

  /** The holder last seen on the Lease ('' when released or never read). */
  get observedHolder(): string {
    return this.#observed?.holder ?? '';
  }

  isLeader(): boolean {
    return this.#leader;
  }

  onChange(listener: (leader: boolean) => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** Starts campaigning; the first attempt runs at once. Idempotent. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#schedule(0);
  }

  /** Stops campaigning; a leader releases the Lease and reports the loss. Never throws. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#timers.clearTimeout(this.#timer);
    await this.#inFlight;
    if (!this.#leader) return;
    this.#set(false);
    const observed = this.#observed;
    try {
      const now = this.#timers.now();
      await this.#o.client.mergePatch(this.#path, {
        metadata: { resourceVersion: observed?.resourceVersion },
        spec: {
          holderIdentity: '',
          leaseDurationSeconds: 1,
          renewTime: microTime(now),
          acquireTime: microTime(now),
        },
      });
      this.#o.logger?.info({ lease: this.#o.name }, 'released the leader lease');
    } catch (err) {
      this.#o.logger?.warn(
        { lease: this.#o.name, err: errorMessage(err) },
        'could not release the leader lease; the others take it when it expires',
      );
    }
  }

  #schedule(ms: number): void {
    if (!this.#running) return;
    this.#timer = this.#timers.setTimeout(() => {
      this.#inFlight = this.#tick().finally(() => {
        this.#inFlight = undefined;
      });
    }, ms);
    (this.#timer as { unref?: () => void } | undefined)?.unref?.();
  }

  async #tick(): Promise<void> {
    const outcome = await this.#attempt();
    if (!this.#running) return;
    const now = this.#timers.now();
    if (outcome === 'held') {
      this.#lastRenewAt = now;
      if (!this.#leader) {
        this.#o.logger?.info({ lease: this.#o.name, identity: this.#o.identity }, 'became the leader');
        this.#set(true);
      }
    } else if (this.#leader) {
      if (outcome === 'taken-by-other') {
        this.#o.logger?.warn(
          { lease: this.#o.name, holder: this.observedHolder },
          'lost the leader lease to another replica',
        );
        this.#set(false);
      } else if (now - this.#lastRenewAt >= this.#renewDeadlineMs) {
        this.#o.logger?.warn(
          { lease: this.#o.name, renewDeadlineMs: this.#renewDeadlineMs },
          'could not renew the leader lease in time; stepping down',
        );
        this.#set(false);
      }
    }
    const jitter = this.#leader
      ? 0
      : this.#retryPeriodMs * (this.#o.jitter ?? 0.2) * (this.#o.random ?? Math.random)();
    this.#schedule(this.#retryPeriodMs + jitter);
  }

  /** One client-go `tryAcquireOrRenew`. */
  async #attempt(): Promise<Attempt> {
    const { client, identity } = this.#o;
    const now = this.#timers.now();
    const durationSeconds = Math.max(1, Math.round(this.#leaseDurationMs / 1000));
    try {
      const lease = await client.find<Lease>(this.#path);
      if (lease === undefined) {
        const created = await client.create<Lease>(leasePathCollection(this.#o.namespace), {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: this.#o.name, namespace: this.#o.namespace },
          spec: {
            holderIdentity: identity,
            leaseDurationSeconds: durationSeconds,
            acquireTime: microTime(now),
            renewTime: microTime(now),
            leaseTransitions: 0,
          },
        });
        this.#observe(created, now);
        return 'held';
      }
      this.#observe(lease, now);
      const spec = lease.spec ?? {};
      const holder = spec.holderIdentity ?? '';
      const observed = this.#observed;
      // The holder's own duration governs; our clock measures since we saw the record change.
      const holderMs = (spec.leaseDurationSeconds ?? durationSeconds) * 1000;
      if (holder !== '' && holder !== identity && observed !== undefined && now < observed.at + holderMs) {
        return 'taken-by-other';
      }
      const mine = holder === identity;
      const updated = await client.mergePatch<Lease>(this.#path, {
        metadata: { resourceVersion: lease.metadata?.resourceVersion },
        spec: {
          holderIdentity: identity,
          leaseDurationSeconds: durationSeconds,
          renewTime: microTime(now),
          acquireTime: mine ? (spec.acquireTime ?? microTime(now)) : microTime(now),
          leaseTransitions: (spec.leaseTransitions ?? 0) + (mine ? 0 : 1),
        },
      });
      this.#observe(updated, now);
      return 'held';
    } catch (err) {
      if (isConflict(err) || isAlreadyExists(err)) {
        // Someone else wrote first; the next read shows who.
        this.#o.logger?.debug({ lease: this.#o.name }, 'leader lease changed under us');
        return this.#leader ? 'failed' : 'taken-by-other';
      }
      this.#o.logger?.warn(
        {
          lease: this.#o.name,
          err: errorMessage(err),
          hint: isNotFound(err)
            ? 'is coordination.k8s.io/v1 served?'
            : 'check the RBAC for leases in this namespace',
        },
        'leader election request failed',
      );
      return 'failed';
    }
  }

  #observe(lease: Lease, now: number): void {
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    const key = `${holder}|${spec.renewTime ?? ''}|${String(spec.leaseTransitions ?? 0)}`;
    const resourceVersion = lease.metadata?.resourceVersion;
    if (this.#observed?.key !== key) this.#observed = { key, at: now, resourceVersion, holder };
    else this.#observed = { ...this.#observed, resourceVersion };
  }

  #set(leader: boolean): void {
    if (this.#leader === leader) return;
    this.#leader = leader;
    for (const listener of [...this.#listeners]) {
      try {
        listener(leader);
      } catch (err) {
        this.#o.logger?.warn({ lease: this.#o.name, err: errorMessage(err) }, 'a leadership listener failed');
      }
    }
  }
}

function leasePathCollection(namespace: string): string {
  return `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`;
}
