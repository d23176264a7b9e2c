import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KubeClient } from './client.ts';
import { Informer, clientSource } from './informer.ts';
import type { KubeObject } from './resources.ts';
import { FakeApiServer } from './testing/fake-apiserver.ts';
import { ManualTimers } from './testing/manual-timers.ts';
import { until } from './testing/until.ts';
import type { Timers } from './timers.ts';

const PODS = '/api/v1/pods';

interface Pod extends KubeObject {
  spec?: { nodeName?: string };
}

const pod = (name: string, nodeName = 'n1'): Pod & Record<string, unknown> => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'default' },
  spec: { nodeName },
});

describe('Informer over a watch stream on loopback', () => {
  let server: FakeApiServer;
  let client: KubeClient;
  const informers: Informer<Pod>[] = [];
  const errors: unknown[] = [];

  beforeEach(async () => {
    server = await FakeApiServer.start();
    client = new KubeClient(server.kubeConfig());
    errors.length = 0;
  });

  afterEach(async () => {
    await Promise.all(informers.splice(0).map(i => i.stop()));
    await server.close();
  });

  function informer(timers?: Timers, random = () => 0.5): { inf: Informer<Pod>; events: string[] } {
    const inf = new Informer<Pod>({
      name: 'pods',
      source: clientSource<Pod>(client, PODS, { timeoutSeconds: () => 300 }),
      ...(timers === undefined ? {} : { timers }),
      backoff: { initialMs: timers === undefined ? 1 : 100, maxMs: 1_000, jitter: 0.2, random },
      onError: err => errors.push(err),
    });
    const events: string[] = [];
    inf.on({
      add: o => events.push(`add ${o.metadata?.name ?? ''}`),
      update: (_o, n) => events.push(`update ${n.metadata?.name ?? ''} ${n.spec?.nodeName ?? ''}`),
      delete: o => events.push(`delete ${o.metadata?.name ?? ''}`),
    });
    informers.push(inf);
    return { inf, events };
  }

  it('lists, resolves synced, then feeds watch events to the handlers and the cache', async () => {
    server.put(PODS, pod('a'));
    const { inf, events } = informer();
    expect(inf.hasSynced).toBe(false);
    await inf.start();
    expect(inf.hasSynced).toBe(true);
    expect(events).toEqual(['add a']);
    await until('watch open', () => server.openWatches === 1);
    server.put(PODS, pod('b'));
    server.put(PODS, pod('a', 'n2'));
    server.remove(PODS, 'b', 'default');
    await until('events', () => events.length === 4);
    expect(events).toEqual(['add a', 'add b', 'update a n2', 'delete b']);
    expect(inf.cache.get('a', 'default')?.spec?.nodeName).toBe('n2');
    expect(inf.cache.list().map(o => o.metadata?.name)).toEqual(['a']);
    expect(inf.cache.size).toBe(1);
  });

  it('resumes from the last resourceVersion after a dropped watch, without relisting', async () => {
    server.put(PODS, pod('a'));
    const { inf, events } = informer();
    await inf.start();
    await until('watch open', () => server.openWatches === 1);
    server.put(PODS, pod('b'));
    await until('add b', () => events.includes('add b'));
    const seen = inf.resourceVersion;
    expect(seen).toBe(String(server.resourceVersion));

    server.dropWatches();
    // Written while no watch is open: only a resumed watch can deliver it.
    server.put(PODS, pod('c'));
    await until('add c', () => events.includes('add c'));

    const watches = server.requests.filter(r => r.path === PODS && r.query.watch === 'true');
    expect(watches.length).toBeGreaterThanOrEqual(2);
    expect(watches[1]?.query.resourceVersion).toBe(seen);
    expect(server.count('GET', PODS, r => r.query.watch === undefined)).toBe(1);
    expect(inf.lists).toBe(1);
    expect(events).toEqual(['add a', 'add b', 'add c']);
  });

  it('advances the resume point on bookmarks', async () => {
    const { inf } = informer();
    await inf.start();
    await until('watch open', () => server.openWatches === 1);
    server.put('/api/v1/services', {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 's', namespace: 'x' },
    });
    server.bookmark();
    await until('bookmark seen', () => inf.resourceVersion === String(server.resourceVersion));
  });

  it('relists on 410 Gone and reports what changed while it was away', async () => {
    server.put(PODS, pod('keep'));
    server.put(PODS, pod('change'));
    server.put(PODS, pod('vanish'));
    const { inf, events } = informer();
    await inf.start();
    await until('watch open', () => server.openWatches === 1);
    server.dropWatches();
    // Meanwhile: writes, then the log is compacted past the informer's resourceVersion.
    await until('watch closed', () => server.openWatches === 0);
    server.put(PODS, pod('change', 'n9'));
    server.remove(PODS, 'vanish', 'default');
    server.put(PODS, pod('new'));
    server.compact();

    await until('relisted', () => inf.lists === 2 && server.openWatches === 1);
    expect(events.slice(3).sort()).toEqual(['add new', 'delete vanish', 'update change n9']);
    expect(
      inf.cache
        .list()
        .map(o => o.metadata?.name)
        .sort(),
    ).toEqual(['change', 'keep', 'new']);
    expect(errors.some(e => (e as { status?: number }).status === 410)).toBe(true);
  });

  it('backs off with growing, jittered delays on errors and resets after a success', async () => {
    const timers = new ManualTimers();
    server.put(PODS, pod('a'));
    const { inf } = informer(timers, () => 0.5);
    await inf.start();
    await until('watch open', () => server.openWatches === 1);
    server.failNext(3, 500, r => r.query.watch === 'true');
    server.dropWatches();

    // The dropped watch (nothing delivered on it) and each failed one wait 100 * 2^n ms plus
    // 10 % (jitter 0.2 * random 0.5).
    for (const want of [110, 220, 440, 880]) {
      await until(`a ${want} ms back-off`, () => timers.pending === 1);
      expect(timers.fire()).toBe(want);
    }
    await until('watch reopened', () => server.openWatches === 1);
    expect(errors.filter(e => (e as { status?: number }).status === 500)).toHaveLength(3);
    expect(inf.lists).toBe(1);

    // A watch that delivered events resets the back-off: its failure waits the first delay again.
    server.put(PODS, pod('b'));
    await until('add b', () => inf.cache.get('b', 'default'));
    server.failNext(1, 503, r => r.query.watch === 'true');
    server.dropWatches();
    for (const want of [110, 220]) {
      await until(`a ${want} ms back-off`, () => timers.pending === 1);
      expect(timers.fire()).toBe(want);
    }
    await until('watch reopened', () => server.openWatches === 1);
    expect(inf.lists).toBe(1);
  });

  it('backs off when the first list fails, and syncs once it succeeds', async () => {
    const timers = new ManualTimers();
    server.failNext(2, 503, r => r.path === PODS && r.query.watch === undefined);
    const { inf } = informer(timers, () => 0);
    const synced = inf.start();
    await until('first back-off', () => timers.pending === 1);
    expect(timers.fire()).toBe(100);
    await until('second back-off', () => timers.pending === 1);
    expect(timers.fire()).toBe(200);
    await synced;
    expect(inf.lists).toBe(3);
  });

  it('rejects synced when stopped before the first list, and stop ends the loop', async () => {
    const timers = new ManualTimers();
    server.failNext(1, 500);
    const { inf } = informer(timers);
    const synced = inf.start();
    await until('back-off', () => timers.pending === 1);
    await inf.stop();
    await expect(synced).rejects.toMatchObject({ code: 'KUBE_INFORMER_STOPPED' });
  });

  it('reports a throwing handler and keeps going', async () => {
    const { inf, events } = informer();
    inf.on({
      add: () => {
        throw new Error('boom');
      },
    });
    server.put(PODS, pod('a'));
    await inf.start();
    expect(events).toEqual(['add a']);
    expect(errors.map(e => String(e))).toEqual([expect.stringContaining('a handler threw: boom')]);
  });
});
