import { once } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  BACKOFF_DEFAULTS,
  CertificateCache,
  CertificateUnavailableError,
  IdentityMismatchError,
  SpiffeId,
  type CertificateCacheEvents,
  type CertificateCacheOptions,
  type WorkloadCertificate,
} from './index.ts';
import { createLocalFetcher, createTestCa, issueWorkloadCert } from './testing/index.ts';
import type { CertificateAuthority } from './certificate-authority.ts';

const alice = SpiffeId.parse('spiffe://cluster.local/ns/default/sa/alice');
const bob = SpiffeId.parse('spiffe://cluster.local/ns/default/sa/bob');

let ca: CertificateAuthority;
const caches: CertificateCache[] = [];

beforeEach(async () => {
  ca = await createTestCa();
  vi.useFakeTimers({ now: Date.UTC(2030, 0, 1) });
});
afterEach(() => {
  for (const cache of caches.splice(0)) cache.close();
  vi.useRealTimers();
});

/** A fetcher whose CA can be switched off; counts calls. */
function flakyFetcher(ttlSeconds: number) {
  const state = { down: false, calls: 0 };
  const fetch = async (identity: SpiffeId): Promise<WorkloadCertificate> => {
    state.calls++;
    if (state.down) throw new Error('connection refused by istiod:15012');
    return issueWorkloadCert(ca, identity, { ttlSeconds });
  };
  return { state, fetch };
}

function newCache(options: CertificateCacheOptions): CertificateCache {
  const cache = new CertificateCache({ random: () => 0.5, ...options });
  caches.push(cache);
  return cache;
}

function next<K extends keyof CertificateCacheEvents>(
  cache: CertificateCache,
  event: K,
): Promise<CertificateCacheEvents[K][0]> {
  return once(cache, event).then(args => args[0] as CertificateCacheEvents[K][0]);
}

describe('CertificateCache', () => {
  it('renews a certificate at half of its lifetime, not before', async () => {
    const { state, fetch } = flakyFetcher(3600);
    const cache = newCache({ fetch });
    const issued = next(cache, 'issued');
    const first = await cache.get(alice);
    expect((await issued).certificate).toBe(first);
    // Lifetime = 2 min backdate + 1 h; half-life is 1740 s after issuance.
    expect(first.refreshAt.getTime() - Date.now()).toBe(1_740_000);

    await vi.advanceTimersByTimeAsync(1_739_000);
    expect(state.calls).toBe(1);
    const renewed = next(cache, 'renewed');
    await vi.advanceTimersByTimeAsync(1_000);
    const event = await renewed;
    expect(state.calls).toBe(2);
    expect(event.previous).toBe(first);
    expect(event.certificate.notAfter.getTime()).toBeGreaterThan(first.notAfter.getTime());
    expect(await cache.get(alice)).toBe(event.certificate);
  });

  it('keeps serving the old certificate while the CA fails, retrying with backoff until it succeeds', async () => {
    const { state, fetch } = flakyFetcher(3600);
    const cache = newCache({ fetch });
    const first = await cache.get(alice);
    const failures: CertificateCacheEvents['renewal-failed'][0][] = [];
    cache.on('renewal-failed', e => failures.push(e));

    state.down = true;
    await vi.advanceTimersByTimeAsync(first.refreshAt.getTime() - Date.now());
    // Attempts follow 500 ms, 1 s, 2 s, 4 s (random = 0.5 means no jitter).
    for (const [attempt, delay] of [
      [1, 500],
      [2, 1000],
      [3, 2000],
      [4, 4000],
    ] as const) {
      await vi.advanceTimersByTimeAsync(0);
      expect(failures).toHaveLength(attempt);
      const failure = failures[attempt - 1]!;
      expect(failure).toMatchObject({ attempt, retryInMs: delay });
      expect(failure.error).toBeInstanceOf(CertificateUnavailableError);
      expect(failure.current).toBe(first);
      expect(cache.peek(alice)).toBe(first);
      await expect(cache.get(alice)).resolves.toBe(first);
      const callsBefore = state.calls;
      await vi.advanceTimersByTimeAsync(delay - 1);
      expect(state.calls).toBe(callsBefore);
      if (attempt === 4) state.down = false;
      await vi.advanceTimersByTimeAsync(1);
      expect(state.calls).toBe(callsBefore + 1);
    }
    const renewed = await next(cache, 'renewed');
    expect(renewed.previous).toBe(first);
    expect(cache.peek(alice)).toBe(renewed.certificate);
    expect(failures).toHaveLength(4);
  });

  it('spreads backoff delays by ±20 % and caps them at 150 s', () => {
    const low = newCache({ fetch: flakyFetcher(60).fetch, random: () => 0 });
    const high = newCache({ fetch: flakyFetcher(60).fetch, random: () => 0.999_999 });
    expect(low.backoffDelay(1)).toBe(400);
    expect(high.backoffDelay(1)).toBe(600);
    expect(low.backoffDelay(3)).toBe(1600);
    expect(high.backoffDelay(3)).toBe(2400);
    for (const cache of [low, high]) {
      for (let attempt = 1; attempt <= 40; attempt++) {
        expect(cache.backoffDelay(attempt)).toBeLessThanOrEqual(BACKOFF_DEFAULTS.maxMs);
      }
    }
    expect(low.backoffDelay(40)).toBe(120_000);
    expect(high.backoffDelay(40)).toBe(150_000);
  });

  it('emits expired when renewal never succeeds, then reports the identity unavailable', async () => {
    const { state, fetch } = flakyFetcher(600);
    const cache = newCache({ fetch });
    const first = await cache.get(alice);
    state.down = true;
    const expired = next(cache, 'expired');
    await vi.advanceTimersByTimeAsync(first.notAfter.getTime() - Date.now() + 1);
    expect((await expired).certificate).toBe(first);
    expect(cache.peek(alice)).toBeUndefined();
    await expect(cache.get(alice)).rejects.toBeInstanceOf(CertificateUnavailableError);
    // Retries go on; when the CA is back the identity is served again.
    state.down = false;
    const issued = next(cache, 'issued');
    await vi.advanceTimersByTimeAsync(BACKOFF_DEFAULTS.maxMs);
    expect((await issued).certificate.identity.uri).toBe(alice.uri);
    expect(cache.peek(alice)).toBeDefined();
  });

  it('shares one fetch between concurrent callers and keys certificates by identity', async () => {
    const { state, fetch } = flakyFetcher(3600);
    const cache = newCache({ fetch });
    const [a1, a2, b] = await Promise.all([cache.get(alice), cache.get(alice), cache.get(bob)]);
    expect(a1).toBe(a2);
    expect(b.identity.uri).toBe(bob.uri);
    expect(state.calls).toBe(2);
    expect(
      cache
        .identities()
        .map(id => id.uri)
        .sort(),
    ).toEqual([alice.uri, bob.uri]);
  });

  it('rejects a certificate for another identity than the one requested', async () => {
    const cache = newCache({ fetch: () => issueWorkloadCert(ca, bob) });
    const failed = next(cache, 'renewal-failed');
    await expect(cache.get(alice)).rejects.toBeInstanceOf(CertificateUnavailableError);
    const event = await failed;
    expect(event.error).toBeInstanceOf(IdentityMismatchError);
    expect(event.retryInMs).toBe(500);
  });

  it('waits past the 24.8-day timer limit to renew a 90-day certificate at half-life', async () => {
    const cache = newCache({ fetch: createLocalFetcher(ca, { ttlSeconds: 90 * 86_400 }) });
    const first = await cache.get(alice);
    const renewed = next(cache, 'renewed');
    await vi.advanceTimersByTimeAsync(first.refreshAt.getTime() - Date.now() - 1000);
    expect(cache.peek(alice)).toBe(first);
    await vi.advanceTimersByTimeAsync(1000);
    expect((await renewed).previous).toBe(first);
  });

  it('aborts the fetch and stops timers when an identity is forgotten', async () => {
    let signal: AbortSignal | undefined;
    const cache = newCache({
      fetch: (identity, s) => {
        signal = s;
        return issueWorkloadCert(ca, identity, { ttlSeconds: 60 });
      },
    });
    await cache.get(alice);
    cache.forget(alice);
    expect(signal?.aborted).toBe(true);
    expect(cache.peek(alice)).toBeUndefined();
    expect(vi.getTimerCount()).toBe(0);
  });
});
