/**
 * istiod's JWKS resolver: fetches the key set of a RequestAuthentication's `jwksUri` so that the
 * waypoint's `jwt_authn` filter gets it inline (`local_jwks`), as upstream's istiod does by
 * default (`PILOT_JWT_ENABLE_REMOTE_JWKS=false`).
 *
 * - `keysFor(uri)` is synchronous (the waypoint index is): it answers the cached key set, or,
 *   before a first successful fetch, the fail-closed placeholder `{"keys":[]}` (every token of the
 *   issuer is rejected, 401, while requests without a token go on to AuthorizationPolicy), and
 *   starts a fetch. When a fetch brings a different key set, `onChange(uri)` fires and the
 *   composition root recomputes the waypoints that use it.
 * - Each fetch is bounded by the rule's `timeout` (default 5 s) and a body limit (1 MiB).
 * - Refresh: every `refreshIntervalMs` (upstream's `PILOT_JWT_PUB_KEY_REFRESH_INTERVAL`, 20 min);
 *   a failure is logged and retried with a backoff (1 s doubling to the refresh interval); a
 *   failed refresh keeps the last good key set (a rotation still needs a successful fetch).
 * - URIs no RequestAuthentication uses any more (`inUse`) are dropped at their next refresh.
 */
import { errorMessage } from '@ambient-mesh/errors';
import type { Logger, TimerHandle, Timers } from '@ambient-mesh/runtime';
import { WaypointError, WaypointErrorCode } from './errors.ts';

/** What a provider gets when its key set is unknown: no key, so every token fails (401). */
export const FAIL_CLOSED_JWKS = '{"keys":[]}';
export const DEFAULT_JWKS_REFRESH_MS = 20 * 60_000;
export const DEFAULT_JWKS_TIMEOUT_MS = 5_000;
const MAX_JWKS_BYTES = 1 << 20;
const FIRST_RETRY_MS = 1_000;

export interface JwksResolverOptions {
  readonly timers: Timers;
  readonly logger: Logger;
  /** A fetched key set differs from the one served for `uri` (also the first success). */
  readonly onChange: (uri: string) => void;
  /** The URIs some RequestAuthentication still uses; others are dropped at their refresh. */
  readonly inUse?: () => ReadonlySet<string>;
  readonly refreshIntervalMs?: number;
  /** Counts fetches by outcome (`success`, `failure`). */
  readonly onFetch?: (outcome: 'success' | 'failure') => void;
}

interface Entry {
  keys: string | undefined;
  timeoutMs: number;
  inFlight: boolean;
  failures: number;
  timer: TimerHandle | undefined;
  lastError: string | undefined;
}

export interface JwksStatus {
  readonly uri: string;
  readonly fetched: boolean;
  readonly lastError: string | undefined;
}

export class JwksResolver {
  readonly #opts: JwksResolverOptions;
  readonly #refreshMs: number;
  readonly #entries = new Map<string, Entry>();
  #closed = false;

  constructor(opts: JwksResolverOptions) {
    this.#opts = opts;
    this.#refreshMs = opts.refreshIntervalMs ?? DEFAULT_JWKS_REFRESH_MS;
  }

  /** The key set to inline for `uri`: the last fetched one, else the fail-closed placeholder. */
  keysFor(uri: string, timeoutMs = DEFAULT_JWKS_TIMEOUT_MS): string {
    let entry = this.#entries.get(uri);
    if (entry === undefined) {
      entry = {
        keys: undefined,
        timeoutMs,
        inFlight: false,
        failures: 0,
        timer: undefined,
        lastError: undefined,
      };
      this.#entries.set(uri, entry);
      if (!this.#closed) void this.#fetch(uri, entry);
    } else entry.timeoutMs = timeoutMs;
    return entry.keys ?? FAIL_CLOSED_JWKS;
  }

  /** What is known of each URI (for debugging and tests). */
  status(): JwksStatus[] {
    return [...this.#entries].map(([uri, e]) => ({
      uri,
      fetched: e.keys !== undefined,
      lastError: e.lastError,
    }));
  }

  /** Fetches now every known URI (a debug hook and for tests); resolves when all are done. */
  async refreshAll(): Promise<void> {
    await Promise.all([...this.#entries].map(([uri, e]) => this.#fetch(uri, e)));
  }

  close(): void {
    this.#closed = true;
    for (const e of this.#entries.values()) this.#opts.timers.clearTimeout(e.timer);
    this.#entries.clear();
  }

  /** Closed, or the entry was dropped while its fetch ran: the result is not used. */
  #gone(uri: string, entry: Entry): boolean {
    return this.#closed || this.#entries.get(uri) !== entry;
  }

  async #fetch(uri: string, entry: Entry): Promise<void> {
    if (entry.inFlight || this.#closed) return;
    entry.inFlight = true;
    this.#opts.timers.clearTimeout(entry.timer);
    entry.timer = undefined;
    let next: number;
    try {
      const keys = await fetchJwks(uri, entry.timeoutMs);
      if (this.#gone(uri, entry)) return;
      this.#opts.onFetch?.('success');
      entry.failures = 0;
      entry.lastError = undefined;
      next = this.#refreshMs;
      if (keys !== entry.keys) {
        const first = entry.keys === undefined;
        entry.keys = keys;
        this.#opts.logger.info({ jwksUri: uri }, first ? 'fetched the JWKS' : 'the JWKS changed');
        this.#opts.onChange(uri);
      }
    } catch (err) {
      if (this.#gone(uri, entry)) return;
      this.#opts.onFetch?.('failure');
      entry.failures += 1;
      entry.lastError = errorMessage(err);
      next = Math.min(FIRST_RETRY_MS * 2 ** (entry.failures - 1), this.#refreshMs);
      this.#opts.logger.error(
        {
          code: WaypointErrorCode.JwksFetch,
          jwksUri: uri,
          err: entry.lastError,
          failures: entry.failures,
          retryInMs: next,
          serving: entry.keys === undefined ? 'no key (tokens are rejected)' : 'the last fetched JWKS',
        },
        'could not fetch the JWKS of a RequestAuthentication; check that jwksUri is reachable from istiod and serves a JSON Web Key Set',
      );
    } finally {
      entry.inFlight = false;
    }
    entry.timer = this.#opts.timers.setTimeout(() => {
      entry.timer = undefined;
      const used = this.#opts.inUse?.();
      if (used !== undefined && !used.has(uri)) {
        this.#entries.delete(uri);
        return;
      }
      void this.#fetch(uri, entry);
    }, next);
    entry.timer.unref?.();
  }
}

/** GET `uri` within `timeoutMs`: a 2xx JSON object with a `keys` array (at most 1 MiB). */
export async function fetchJwks(uri: string, timeoutMs: number): Promise<string> {
  let res: Response;
  try {
    res = await fetch(uri, {
      signal: AbortSignal.timeout(timeoutMs),
      headers: { accept: 'application/json' },
      redirect: 'follow',
    });
  } catch (err) {
    const timedOut = err instanceof Error && err.name === 'TimeoutError';
    throw new WaypointError(
      WaypointErrorCode.JwksFetch,
      timedOut ? `GET ${uri} timed out after ${timeoutMs} ms` : `GET ${uri} failed: ${errorMessage(err)}`,
      err,
    );
  }
  if (res.status < 200 || res.status >= 300) {
    await res.body?.cancel();
    throw new WaypointError(WaypointErrorCode.JwksFetch, `GET ${uri} answered ${res.status}`);
  }
  const declared = Number(res.headers.get('content-length') ?? '0');
  if (declared > MAX_JWKS_BYTES) {
    await res.body?.cancel();
    throw new WaypointError(
      WaypointErrorCode.JwksFetch,
      `GET ${uri}: the JWKS is larger than ${MAX_JWKS_BYTES} bytes`,
    );
  }
  let text: string;
  try {
    text = await res.text();
  } catch (err) {
    throw new WaypointError(
      WaypointErrorCode.JwksFetch,
      `GET ${uri}: reading the body failed: ${errorMessage(err)}`,
      err,
    );
  }
  if (text.length > MAX_JWKS_BYTES)
    throw new WaypointError(
      WaypointErrorCode.JwksFetch,
      `GET ${uri}: the JWKS is larger than ${MAX_JWKS_BYTES} bytes`,
    );
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new WaypointError(
      WaypointErrorCode.JwksFetch,
      `GET ${uri}: the body is not JSON (${errorMessage(err)})`,
    );
  }
  if (typeof parsed !== 'object' || parsed === null || !Array.isArray((parsed as { keys?: unknown }).keys))
    throw new WaypointError(
      WaypointErrorCode.JwksFetch,
      `GET ${uri}: the body is not a JSON Web Key Set (no "keys" array)`,
    );
  return text;
}
