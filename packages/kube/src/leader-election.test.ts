import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KubeClient } from './client.ts';
import { LeaderElector, leasePath, microTime, type Lease } from './leader-election.ts';
import { FakeApiServer, ManualTimers, until } from './testing/index.ts';

const NS = 'istio-system';
const NAME = 'istio-status-leader';
const LEASES = '/apis/coordination.k8s.io/v1/leases';

interface Candidate {
  readonly elector: LeaderElector;
  readonly timers: ManualTimers;
  readonly changes: boolean[];
}

let server: FakeApiServer;
let client: KubeClient;
const started: LeaderElector[] = [];

beforeEach(async () => {
  server = await FakeApiServer.start();
  client = new KubeClient(server.kubeConfig());
});
afterEach(async () => {
  for (const e of started.splice(0)) await e.stop();
  await server.close();
});

/** Each candidate has its own clock, as each replica has. */
function candidate(identity: string): Candidate {
  const timers = new ManualTimers();
  const elector = new LeaderElector({
    client,
    namespace: NS,
    name: NAME,
    identity,
    timers,
    leaseDurationMs: 30_000,
    renewDeadlineMs: 15_000,
    retryPeriodMs: 5_000,
    jitter: 0,
  });
  const changes: boolean[] = [];
  elector.onChange(leader => changes.push(leader));
  started.push(elector);
  elector.start();
  return { elector, timers, changes };
}

/** Runs the candidate's next attempt and waits until it scheduled the one after. */
async function step(c: Candidate, advanceMs = 0): Promise<void> {
  c.timers.advance(advanceMs);
  c.timers.fire();
  await until('the attempt to finish', () => c.timers.pending === 1);
}

function lease(): Lease | undefined {
  return server.get(LEASES, NAME, NS);
}

describe('LeaderElector', () => {
  it('creates the Lease and leads; a second candidate sees the holder and follows', async () => {
    const a = candidate('istiod-a');
    await step(a);
    expect(a.elector.isLeader()).toBe(true);
    expect(a.changes).toEqual([true]);
    expect(lease()?.spec).toMatchObject({
      holderIdentity: 'istiod-a',
      leaseDurationSeconds: 30,
      leaseTransitions: 0,
      renewTime: microTime(0),
    });

    const b = candidate('istiod-b');
    await step(b);
    expect(b.elector.isLeader()).toBe(false);
    expect(b.elector.observedHolder).toBe('istiod-a');
  });

  it('renews every retry period, and a follower never takes a renewed Lease', async () => {
    const a = candidate('istiod-a');
    const b = candidate('istiod-b');
    await step(a);
    for (let i = 0; i < 10; i++) {
      await step(a, 5_000);
      await step(b, 5_000);
    }
    expect(a.elector.isLeader()).toBe(true);
    expect(b.elector.isLeader()).toBe(false);
    expect(lease()?.spec?.renewTime).toBe(microTime(50_000));
    expect(b.changes).toEqual([]);
  });

  it('releases the Lease on stop, and the other candidate takes it at its next attempt', async () => {
    const a = candidate('istiod-a');
    const b = candidate('istiod-b');
    await step(a);
    await step(b);
    await a.elector.stop();
    expect(a.changes).toEqual([true, false]);
    expect(lease()?.spec?.holderIdentity).toBe('');

    await step(b, 5_000);
    expect(b.elector.isLeader()).toBe(true);
    expect(lease()?.spec).toMatchObject({ holderIdentity: 'istiod-b', leaseTransitions: 1 });
  });

  it('takes over from a holder that went silent once its lease duration passed on our clock', async () => {
    const a = candidate('istiod-a');
    const b = candidate('istiod-b');
    await step(a);
    await step(b);
    // a is killed: its timers never fire again. b tries every 5 s.
    for (let t = 5_000; t < 30_000; t += 5_000) {
      await step(b, 5_000);
      expect(b.elector.isLeader()).toBe(false);
    }
    await step(b, 5_000);
    expect(b.elector.isLeader()).toBe(true);
    expect(lease()?.spec).toMatchObject({ holderIdentity: 'istiod-b', leaseTransitions: 1 });
  });

  it('steps down when it cannot renew within the renew deadline, and reports the loss', async () => {
    const a = candidate('istiod-a');
    await step(a);
    server.failNext(100, 503, r => r.path === leasePath(NS, NAME));
    await step(a, 5_000);
    await step(a, 5_000);
    expect(a.elector.isLeader()).toBe(true);
    await step(a, 5_000);
    expect(a.elector.isLeader()).toBe(false);
    expect(a.changes).toEqual([true, false]);
  });

  it('a leader whose Lease was taken by another replica steps down at its next attempt', async () => {
    const a = candidate('istiod-a');
    await step(a);
    const current = lease()!;
    server.put(LEASES, {
      ...current,
      metadata: { ...current.metadata, name: NAME, namespace: NS },
      spec: { ...current.spec, holderIdentity: 'istiod-z', renewTime: microTime(1) },
    });
    await step(a, 5_000);
    expect(a.elector.isLeader()).toBe(false);
    expect(a.elector.observedHolder).toBe('istiod-z');
  });

  it('of two candidates racing for a released Lease exactly one wins', async () => {
    const a = candidate('istiod-a');
    const b = candidate('istiod-b');
    const c = candidate('istiod-c');
    await step(c);
    await step(a);
    await step(b);
    await c.elector.stop();
    a.timers.advance(5_000);
    b.timers.advance(5_000);
    a.timers.fire();
    b.timers.fire();
    await until('both attempts', () => a.timers.pending === 1 && b.timers.pending === 1);
    expect([a.elector.isLeader(), b.elector.isLeader()].filter(Boolean)).toHaveLength(1);
    const holder = lease()?.spec?.holderIdentity;
    expect(holder === 'istiod-a' ? a.elector.isLeader() : b.elector.isLeader()).toBe(true);
  });

  it('rejects timings where a leader could outlive its lease', () => {
    expect(
      () =>
        new LeaderElector({
          client,
          namespace: NS,
          name: NAME,
          identity: 'x',
          leaseDurationMs: 10_000,
          renewDeadlineMs: 10_000,
        }),
    ).toThrow(/leaseDuration > renewDeadline > retryPeriod/);
  });
});
