import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '@ambient-mesh/runtime';
import { makeAuthorizationPolicy } from '../testing/fixtures.ts';
import { compileAuthorizationPolicyObject } from '../wds/policies.ts';
import { httpError, settle } from '../testing/status-writer.ts';
import { systemTimers as timers } from '../xds/push-queue.ts';
import type { AuthorizationPolicy } from './objects.ts';
import {
  isTransientStatusError,
  policyConditions,
  PolicyStatusWriter,
  writePolicyStatus,
  type StatusPatcher,
} from './policy-status.ts';

describe('writePolicyStatus', () => {
  it('reports every invalid field path, and does not rewrite an unchanged status', async () => {
    const writes: unknown[] = [];
    const patch: StatusPatcher = (_plural, ns, name, status) => {
      writes.push({ ns, name, status });
      return Promise.resolve();
    };
    const bad = makeAuthorizationPolicy('broken', 'apps', {
      rules: [{ from: [{ source: { ipBlocks: ['nope'] } }], to: [{ operation: { ports: ['99999'] } }] }],
    });
    const result = compileAuthorizationPolicyObject(bad, 'istio-system');
    expect(await writePolicyStatus(patch, bad, result, silentLogger())).toBe(true);
    const status = (writes[0] as { status: { conditions: { reason: string; message: string }[] } }).status;
    expect(status.conditions[0]!.reason).toBe('Invalid');
    expect(status.conditions[0]!.message).toContain('spec.rules[0].from[0].source.ipBlocks[0]');
    expect(status.conditions[0]!.message).toContain('spec.rules[0].to[0].operation.ports[0]');
    // Our own write comes back as an UPDATE with that status: nothing more is written.
    const echoed = { ...bad, status };
    expect(await writePolicyStatus(patch, echoed, result, silentLogger())).toBe(false);
    expect(writes).toHaveLength(1);
  });

  it("ignores other controllers' conditions when deciding whether the status changed", async () => {
    const writes: unknown[] = [];
    const patch: StatusPatcher = (_plural, _ns, _name, status) => {
      writes.push(status);
      return Promise.resolve();
    };
    const ok = makeAuthorizationPolicy('fine', 'apps', { action: 'ALLOW', rules: [{}] });
    const result = compileAuthorizationPolicyObject(ok, 'istio-system');
    const ours = policyConditions(result, ok.metadata?.generation);
    const theirs = {
      type: 'WaypointBound',
      status: 'True',
      reason: 'Bound',
      message: 'by a waypoint controller',
    };
    const withBoth = { ...ok, status: { conditions: [theirs, ...ours] } };
    expect(await writePolicyStatus(patch, withBoth, result, silentLogger())).toBe(false);
    const onlyTheirs = { ...ok, status: { conditions: [theirs] } };
    expect(await writePolicyStatus(patch, onlyTheirs, result, silentLogger())).toBe(true);
    expect(writes).toEqual([{ conditions: ours }]);
  });

  it('writes only WaypointAccepted for a policy with targetRefs (no ZtunnelAccepted, as upstream), rewrites when only it changed, and drops it when the targetRefs go', async () => {
    const writes: { conditions: { type: string; status: string; reason: string }[] }[] = [];
    const patch: StatusPatcher = (_plural, _ns, _name, status) => {
      writes.push(status);
      return Promise.resolve();
    };
    const p = makeAuthorizationPolicy('l7', 'apps', {
      targetRefs: [{ kind: 'Service', group: '', name: 'echo' }],
      rules: [{ to: [{ operation: { methods: ['GET'] } }] }],
    });
    const result = compileAuthorizationPolicyObject(p, 'istio-system');
    const notBound = {
      status: 'False',
      reason: 'AncestorNotBound',
      message: 'Service apps/echo is not bound to a waypoint',
    };
    const bound = {
      status: 'True',
      reason: 'Accepted',
      message: 'bound to apps/waypoint',
      observedGeneration: 1,
    };
    expect(await writePolicyStatus(patch, p, result, silentLogger(), notBound)).toBe(true);
    const first = writes[0]!;
    expect(first.conditions.map(c => c.type)).toEqual(['WaypointAccepted']);
    expect(first.conditions[0]).toMatchObject(notBound);
    const echoed = { ...p, status: first };
    expect(await writePolicyStatus(patch, echoed, result, silentLogger(), notBound)).toBe(false);
    expect(await writePolicyStatus(patch, echoed, result, silentLogger(), bound)).toBe(true);
    expect(writes[1]!.conditions[0]).toMatchObject({
      type: 'WaypointAccepted',
      status: 'True',
      reason: 'Accepted',
    });
    // Without targetRefs there is no WaypointAccepted: the owned condition is written away.
    const plain = compileAuthorizationPolicyObject(
      makeAuthorizationPolicy('l7', 'apps', { rules: [{ to: [{ operation: { ports: ['80'] } }] }] }),
      'istio-system',
    );
    expect(await writePolicyStatus(patch, echoed, plain, silentLogger())).toBe(true);
    expect(writes[2]!.conditions.map(c => c.type)).toEqual(['ZtunnelAccepted']);
  });

  it('reports an accepted policy and survives a failing patch', async () => {
    const ok = makeAuthorizationPolicy('fine', 'apps', { action: 'ALLOW', rules: [{}] });
    const result = compileAuthorizationPolicyObject(ok, 'istio-system');
    const failing: StatusPatcher = () => Promise.reject(new Error('forbidden'));
    expect(await writePolicyStatus(failing, ok, result, silentLogger())).toBe(false);
    let written: unknown;
    await writePolicyStatus(
      (_p, _ns, _n, status) => {
        written = status;
        return Promise.resolve();
      },
      ok,
      result,
      silentLogger(),
    );
    expect(written).toMatchObject({
      conditions: [{ type: 'ZtunnelAccepted', status: 'True', reason: 'Accepted' }],
    });
  });
});

interface Call {
  readonly key: string;
  readonly generation: number | undefined;
  resolve(): void;
  reject(err: Error): void;
}

/** A patcher whose writes stay in flight until the test settles them. */
function heldPatcher(): {
  patch: StatusPatcher;
  calls: Call[];
  inFlight: () => number;
  maxInFlight: () => number;
} {
  const calls: Call[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const patch: StatusPatcher = (_plural, ns, name, status) =>
    new Promise<void>((resolve, reject) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const done = (): void => {
        inFlight--;
      };
      calls.push({
        key: `${ns}/${name}`,
        generation: status.conditions[0]?.observedGeneration,
        resolve: () => {
          done();
          resolve();
        },
        reject: err => {
          done();
          reject(err);
        },
      });
    });
  return { patch, calls, inFlight: () => inFlight, maxInFlight: () => maxInFlight };
}

function policy(name: string, generation = 1): AuthorizationPolicy {
  const p = makeAuthorizationPolicy(name, 'apps', { action: 'ALLOW', rules: [{}] });
  return { ...p, metadata: { ...p.metadata, generation } };
}

const compiled = (p: AuthorizationPolicy) => compileAuthorizationPolicyObject(p, 'istio-system');

describe('PolicyStatusWriter', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('keeps at most maxInFlight patches running and writes every policy', async () => {
    const held = heldPatcher();
    const writer = new PolicyStatusWriter({
      patch: held.patch,
      logger: silentLogger(),
      timers,
      maxInFlight: 4,
    });
    for (let i = 0; i < 10; i++) {
      const p = policy(`p${String(i)}`);
      writer.enqueue(p, compiled(p));
    }
    expect(held.calls).toHaveLength(4);
    expect(writer.pending).toBe(10);
    for (let i = 0; i < 10; i++) {
      held.calls[i]!.resolve();
      await settle();
      expect(held.inFlight()).toBeLessThanOrEqual(4);
    }
    expect(held.calls.map(c => c.key)).toEqual(Array.from({ length: 10 }, (_, i) => `apps/p${String(i)}`));
    expect(held.maxInFlight()).toBe(4);
    expect(writer.pending).toBe(0);
  });

  it('writes only the latest wanted status, and never two at once for one policy', async () => {
    const held = heldPatcher();
    const writer = new PolicyStatusWriter({
      patch: held.patch,
      logger: silentLogger(),
      timers,
      maxInFlight: 1,
    });
    for (const [name, gen] of [
      ['a', 1],
      ['b', 1],
      ['b', 2],
      ['a', 2],
      ['b', 3],
    ] as const) {
      const p = policy(name, gen);
      writer.enqueue(p, compiled(p));
    }
    expect(held.calls.map(c => [c.key, c.generation])).toEqual([['apps/a', 1]]);
    held.calls[0]!.resolve();
    await settle();
    // b's queued generations collapsed into the latest; a's newer status follows its in-flight one.
    expect(held.calls.map(c => [c.key, c.generation])).toEqual([
      ['apps/a', 1],
      ['apps/b', 3],
    ]);
    held.calls[1]!.resolve();
    await settle();
    expect(held.calls[2]).toMatchObject({ key: 'apps/a', generation: 2 });
    held.calls[2]!.resolve();
    await settle();
    expect(held.calls).toHaveLength(3);
    expect(writer.pending).toBe(0);
  });

  it('drops a queued write once the policy already carries the wanted status', async () => {
    const held = heldPatcher();
    const writer = new PolicyStatusWriter({
      patch: held.patch,
      logger: silentLogger(),
      timers,
      maxInFlight: 1,
    });
    const a = policy('a');
    const b = policy('b');
    writer.enqueue(a, compiled(a));
    writer.enqueue(b, compiled(b));
    const carried = { ...b, status: { conditions: policyConditions(compiled(b), 1) } };
    writer.enqueue(carried, compiled(b));
    held.calls[0]!.resolve();
    await settle();
    expect(held.calls.map(c => c.key)).toEqual(['apps/a']);
    expect(writer.pending).toBe(0);
  });

  it('retries transient failures with exponential back-off, then succeeds', async () => {
    const held = heldPatcher();
    const giveUps: string[] = [];
    const writer = new PolicyStatusWriter({
      patch: held.patch,
      logger: silentLogger(),
      timers,
      initialBackoffMs: 500,
      onGiveUp: p => giveUps.push(p),
    });
    const p = policy('flaky');
    writer.enqueue(p, compiled(p));
    held.calls[0]!.reject(new TypeError('fetch failed'));
    await settle();
    await vi.advanceTimersByTimeAsync(499);
    expect(held.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(held.calls).toHaveLength(2);
    held.calls[1]!.reject(httpError(503));
    await settle();
    await vi.advanceTimersByTimeAsync(999);
    expect(held.calls).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(held.calls).toHaveLength(3);
    held.calls[2]!.reject(httpError(409));
    await settle();
    await vi.advanceTimersByTimeAsync(2000);
    expect(held.calls).toHaveLength(4);
    held.calls[3]!.resolve();
    await settle();
    expect(writer.pending).toBe(0);
    expect(giveUps).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('does not retry a permanent failure, and reports it once', async () => {
    for (const code of [404, 422]) {
      const held = heldPatcher();
      const giveUps: [string, string][] = [];
      const writer = new PolicyStatusWriter({
        patch: held.patch,
        logger: silentLogger(),
        timers,
        onGiveUp: (p, reason) => giveUps.push([p, reason]),
      });
      const p = policy(`gone-${String(code)}`);
      writer.enqueue(p, compiled(p));
      held.calls[0]!.reject(httpError(code));
      await settle();
      await vi.advanceTimersByTimeAsync(120_000);
      expect(held.calls).toHaveLength(1);
      expect(writer.pending).toBe(0);
      expect(giveUps).toHaveLength(1);
      expect(giveUps[0]![0]).toBe(`apps/gone-${String(code)}`);
      expect(giveUps[0]![1]).toContain(`HTTP ${String(code)}`);
    }
  });

  it('gives up after maxAttempts with capped back-off', async () => {
    const attemptsAt: number[] = [];
    const giveUps: [string, string][] = [];
    const writer = new PolicyStatusWriter({
      patch: () => {
        attemptsAt.push(Date.now());
        return Promise.reject(httpError(429));
      },
      logger: silentLogger(),
      timers,
      maxAttempts: 5,
      initialBackoffMs: 500,
      maxBackoffMs: 2000,
      onGiveUp: (p, reason) => giveUps.push([p, reason]),
    });
    const start = Date.now();
    const p = policy('throttled');
    writer.enqueue(p, compiled(p));
    await vi.advanceTimersByTimeAsync(60_000);
    expect(attemptsAt.map(t => t - start)).toEqual([0, 500, 1500, 3500, 5500]);
    expect(giveUps).toEqual([['apps/throttled', expect.stringContaining('HTTP 429') as string]]);
    expect(writer.pending).toBe(0);
  });

  it('close() drops queued writes and pending retries', async () => {
    const held = heldPatcher();
    const writer = new PolicyStatusWriter({
      patch: held.patch,
      logger: silentLogger(),
      timers,
      maxInFlight: 1,
    });
    for (const name of ['a', 'b', 'c']) {
      const p = policy(name);
      writer.enqueue(p, compiled(p));
    }
    held.calls[0]!.reject(new Error('fetch failed'));
    await settle();
    expect(held.calls.map(c => c.key)).toEqual(['apps/a', 'apps/b']);
    writer.close();
    expect(vi.getTimerCount()).toBe(0);
    held.calls[1]!.resolve();
    await settle();
    await vi.advanceTimersByTimeAsync(60_000);
    const late = policy('d');
    writer.enqueue(late, compiled(late));
    expect(held.calls).toHaveLength(2);
    expect(writer.pending).toBe(0);
  });
});

describe('isTransientStatusError', () => {
  it('retries no answer, 409, 429 and 5xx, and nothing else', () => {
    expect(isTransientStatusError(new TypeError('fetch failed'))).toBe(true);
    expect(isTransientStatusError(Object.assign(new Error('reset'), { code: 'ECONNRESET' }))).toBe(true);
    for (const code of [409, 429, 500, 503]) expect(isTransientStatusError(httpError(code))).toBe(true);
    for (const code of [400, 403, 404, 422]) expect(isTransientStatusError(httpError(code))).toBe(false);
  });
});
