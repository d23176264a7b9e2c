import { EventEmitter } from 'node:events';
import { systemClock, type Clock, type TimerHandle } from './clock.ts';
import {
  CertificateExpiredError,
  CertificateUnavailableError,
  IdentityMismatchError,
  SpiffeCertsError,
} from './errors.ts';
import type { SpiffeId } from './spiffe-id.ts';
import type { WorkloadCertificate } from './workload-certificate.ts';

/**
 * Obtains a certificate for an identity, e.g. CSR + CreateCertificate against istiod. Rejecting
 * is fine: the cache turns it into a `'renewal-failed'` event and a retry. `signal` aborts when
 * the identity is forgotten or the cache closes.
 */
export type CertificateFetcher = (identity: SpiffeId, signal: AbortSignal) => Promise<WorkloadCertificate>;

/** Exponential backoff of failed fetches, per identity (ztunnel's values, docs/protocols.md#certificate-rotation). */
export interface BackoffOptions {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly multiplier: number;
  /** Each delay is spread uniformly over ±this fraction. */
  readonly randomization: number;
}

export const BACKOFF_DEFAULTS: BackoffOptions = Object.freeze({
  initialMs: 500,
  maxMs: 150_000,
  multiplier: 2,
  randomization: 0.2,
});

export interface CertificateCacheOptions {
  readonly fetch: CertificateFetcher;
  readonly clock?: Clock;
  readonly backoff?: Partial<BackoffOptions>;
  /** Uniform random numbers in [0, 1) for jitter; injectable for deterministic tests. */
  readonly random?: () => number;
  /**
   * Lower bound on the delay before a refresh, so a CA that issues certificates already past
   * half-life cannot make the cache spin. Default 1000 ms.
   */
  readonly minRefreshDelayMs?: number;
}

export interface CertificateCacheEvents {
  /** The first certificate for an identity arrived. */
  issued: [event: { identity: SpiffeId; certificate: WorkloadCertificate }];
  /** A newer certificate replaced the one in use. */
  renewed: [event: { identity: SpiffeId; certificate: WorkloadCertificate; previous: WorkloadCertificate }];
  /**
   * A fetch failed; `retryInMs` says when the next attempt runs. `current` is the certificate
   * still being served, if it is valid.
   */
  'renewal-failed': [
    event: {
      identity: SpiffeId;
      error: SpiffeCertsError;
      attempt: number;
      retryInMs: number;
      current: WorkloadCertificate | undefined;
    },
  ];
  /** The certificate in use reached NotAfter before a renewal succeeded; it is no longer served. */
  expired: [event: { identity: SpiffeId; certificate: WorkloadCertificate }];
}

/** setTimeout cannot wait longer than 2^31-1 ms; longer waits are chained. */
const MAX_TIMER_MS = 2 ** 31 - 1;

type FetchOutcome =
  | { readonly ok: true; readonly certificate: WorkloadCertificate }
  | { readonly ok: false; readonly error: SpiffeCertsError };

/**
 * Per-identity state. Invariants: `pending` is set iff a fetch is running; `retryTimer` is set
 * only while no fetch runs (refresh or backoff wait); `current` is never past NotAfter once the
 * expiry timer has fired.
 */
interface Entry {
  readonly identity: SpiffeId;
  readonly abort: AbortController;
  current: WorkloadCertificate | undefined;
  pending: Promise<FetchOutcome> | undefined;
  failures: number;
  lastError: SpiffeCertsError | undefined;
  retryTimer: TimerHandle | undefined;
  expiryTimer: TimerHandle | undefined;
}

/**
 * Workload certificates keyed by identity, kept fresh like ztunnel's SecretManager: each one
 * is renewed at half of its lifetime; a failed fetch is retried with jittered exponential
 * backoff (500 ms doubling up to 150 s) while the current certificate keeps being served
 * until it expires. Errors never throw out of timers: they become events.
 */
export class CertificateCache extends EventEmitter<CertificateCacheEvents> {
  readonly #fetch: CertificateFetcher;
  readonly #clock: Clock;
  readonly #backoff: BackoffOptions;
  readonly #random: () => number;
  readonly #minRefreshDelayMs: number;
  readonly #entries = new Map<string, Entry>();
  #closed = false;

  constructor(options: CertificateCacheOptions) {
    super();
    this.#fetch = options.fetch;
    this.#clock = options.clock ?? systemClock;
    this.#backoff = { ...BACKOFF_DEFAULTS, ...options.backoff };
    this.#random = options.random ?? Math.random;
    this.#minRefreshDelayMs = options.minRefreshDelayMs ?? 1000;
  }

  /**
   * The valid certificate for `identity`, fetching it first if needed (concurrent callers share
   * one fetch). Rejects with {@link CertificateUnavailableError} when there is none and the last
   * fetch failed; a retry is then already scheduled.
   */
  async get(identity: SpiffeId): Promise<WorkloadCertificate> {
    this.#assertOpen();
    const entry = this.#entries.get(identity.uri) ?? this.#create(identity);
    const current = this.#valid(entry);
    if (current !== undefined) return current;
    if (entry.pending === undefined && entry.failures === 0) this.#startFetch(entry);
    const outcome = entry.pending === undefined ? undefined : await entry.pending;
    if (outcome?.ok === true) return outcome.certificate;
    const after = this.#valid(entry);
    if (after !== undefined) return after;
    throw new CertificateUnavailableError(identity.uri, outcome?.error ?? entry.lastError);
  }

  /** The certificate in use for `identity` if it is valid now; never fetches. */
  peek(identity: SpiffeId): WorkloadCertificate | undefined {
    return this.peekUri(identity.uri);
  }

  /** `peek` by the identity's URI text, for callers that hold it unparsed. */
  peekUri(uri: string): WorkloadCertificate | undefined {
    const entry = this.#entries.get(uri);
    return entry === undefined ? undefined : this.#valid(entry);
  }

  /** Starts fetching `identity` in the background (errors arrive as events). */
  prefetch(identity: SpiffeId): void {
    this.#assertOpen();
    if (!this.#entries.has(identity.uri)) this.#startFetch(this.#create(identity));
  }

  /** Drops `identity`: cancels its timers and aborts its fetch. */
  forget(identity: SpiffeId): void {
    const entry = this.#entries.get(identity.uri);
    if (entry === undefined) return;
    this.#entries.delete(identity.uri);
    this.#clearTimers(entry);
    entry.abort.abort();
  }

  /** The identities currently held or being fetched. */
  identities(): SpiffeId[] {
    return [...this.#entries.values()].map(e => e.identity);
  }

  /** Forgets every identity. The cache cannot be used afterwards. */
  close(): void {
    this.#closed = true;
    for (const entry of [...this.#entries.values()]) this.forget(entry.identity);
  }

  /** The backoff delay before retry number `attempt` (1-based), jittered. */
  backoffDelay(attempt: number): number {
    const { initialMs, maxMs, multiplier, randomization } = this.#backoff;
    const base = Math.min(initialMs * multiplier ** Math.max(0, attempt - 1), maxMs);
    const jittered = base * (1 + randomization * (2 * this.#random() - 1));
    return Math.max(0, Math.min(Math.round(jittered), maxMs));
  }

  #assertOpen(): void {
    if (this.#closed) throw new CertificateUnavailableError('any identity: the certificate cache is closed');
  }

  #create(identity: SpiffeId): Entry {
    const entry: Entry = {
      identity,
      abort: new AbortController(),
      current: undefined,
      pending: undefined,
      failures: 0,
      lastError: undefined,
      retryTimer: undefined,
      expiryTimer: undefined,
    };
    this.#entries.set(identity.uri, entry);
    return entry;
  }

  #valid(entry: Entry): WorkloadCertificate | undefined {
    const current = entry.current;
    return current?.isValidAt(this.#clock.now()) === true ? current : undefined;
  }

  #isLive(entry: Entry): boolean {
    return this.#entries.get(entry.identity.uri) === entry;
  }

  #startFetch(entry: Entry): void {
    if (entry.pending !== undefined) return;
    if (entry.retryTimer !== undefined) {
      this.#clock.clearTimeout(entry.retryTimer);
      entry.retryTimer = undefined;
    }
    const pending = this.#runFetch(entry);
    entry.pending = pending;
    void pending.then(outcome => {
      if (entry.pending === pending) entry.pending = undefined;
      if (this.#isLive(entry)) this.#settle(entry, outcome);
    });
  }

  async #runFetch(entry: Entry): Promise<FetchOutcome> {
    try {
      const certificate = await this.#fetch(entry.identity, entry.abort.signal);
      if (!certificate.identity.equals(entry.identity)) {
        return {
          ok: false,
          error: new IdentityMismatchError(certificate.identity.uri, [entry.identity.uri]),
        };
      }
      if (certificate.notAfter.getTime() <= this.#clock.now()) {
        return {
          ok: false,
          error: new CertificateExpiredError(`for ${entry.identity.uri}`, certificate.notAfter),
        };
      }
      return { ok: true, certificate };
    } catch (err) {
      const error =
        err instanceof SpiffeCertsError ? err : new CertificateUnavailableError(entry.identity.uri, err);
      return { ok: false, error };
    }
  }

  #settle(entry: Entry, outcome: FetchOutcome): void {
    const identity = entry.identity;
    if (outcome.ok) {
      const previous = entry.current;
      const certificate = outcome.certificate;
      entry.current = certificate;
      entry.failures = 0;
      entry.lastError = undefined;
      this.#scheduleRefresh(entry, certificate);
      this.#scheduleExpiry(entry, certificate);
      if (previous === undefined) this.emit('issued', { identity, certificate });
      else this.emit('renewed', { identity, certificate, previous });
      return;
    }
    entry.failures++;
    entry.lastError = outcome.error;
    const retryInMs = this.backoffDelay(entry.failures);
    this.#at(entry, 'retryTimer', this.#clock.now() + retryInMs, () => {
      this.#startFetch(entry);
    });
    this.emit('renewal-failed', {
      identity,
      error: outcome.error,
      attempt: entry.failures,
      retryInMs,
      current: this.#valid(entry),
    });
  }

  #scheduleRefresh(entry: Entry, certificate: WorkloadCertificate): void {
    const now = this.#clock.now();
    const target = Math.max(certificate.refreshAt.getTime(), now + this.#minRefreshDelayMs);
    this.#at(entry, 'retryTimer', target, () => {
      this.#startFetch(entry);
    });
  }

  #scheduleExpiry(entry: Entry, certificate: WorkloadCertificate): void {
    // Validity is inclusive of NotAfter, so the certificate is expired 1 ms later.
    this.#at(entry, 'expiryTimer', certificate.notAfter.getTime() + 1, () => {
      if (entry.current !== certificate) return;
      entry.current = undefined;
      this.emit('expired', { identity: entry.identity, certificate });
    });
  }

  /** Runs `fn` at `targetMs` (clock time), chaining timers past the setTimeout limit. */
  #at(entry: Entry, slot: 'retryTimer' | 'expiryTimer', targetMs: number, fn: () => void): void {
    const existing = entry[slot];
    if (existing !== undefined) this.#clock.clearTimeout(existing);
    const delay = Math.max(0, targetMs - this.#clock.now());
    entry[slot] = this.#clock.setTimeout(
      () => {
        entry[slot] = undefined;
        if (!this.#isLive(entry)) return;
        if (targetMs > this.#clock.now()) this.#at(entry, slot, targetMs, fn);
        else fn();
      },
      Math.min(delay, MAX_TIMER_MS),
    );
  }

  #clearTimers(entry: Entry): void {
    for (const slot of ['retryTimer', 'expiryTimer'] as const) {
      const handle = entry[slot];
      if (handle !== undefined) this.#clock.clearTimeout(handle);
      entry[slot] = undefined;
    }
  }
}
