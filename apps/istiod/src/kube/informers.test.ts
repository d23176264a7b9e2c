import { describe, expect, it, vi } from 'vitest';
import type { KubernetesObject } from '@kubernetes/client-node';
import { createLogger, silentLogger } from '@ambient-mesh/runtime';
import { ObjectKinds, type ObjectKind } from '../wds/wds-index.ts';
import { KubeWatcher, type InformerFactory } from './informers.ts';
import type { KubeObject } from './objects.ts';

type Callback = (arg: never) => void;

/** A hand-driven informer: the test fires events and decides whether start() succeeds. */
function fakeFactory(startResults: Record<string, boolean[]>) {
  const handlers = new Map<string, Map<string, Callback[]>>();
  const starts = new Map<string, number>();
  const factory: InformerFactory = path => {
    const h = new Map<string, Callback[]>();
    handlers.set(path, h);
    return {
      on: (verb: string, cb: Callback) => {
        h.set(verb, [...(h.get(verb) ?? []), cb]);
      },
      off: () => undefined,
      start: () => {
        const n = starts.get(path) ?? 0;
        starts.set(path, n + 1);
        const ok = startResults[path]?.[n] ?? true;
        return ok ? Promise.resolve() : Promise.reject(new Error('list failed'));
      },
      stop: () => Promise.resolve(),
    };
  };
  const fire = (path: string, verb: string, arg: unknown): void => {
    for (const cb of handlers.get(path)?.get(verb) ?? []) (cb as (a: unknown) => void)(arg);
  };
  return { factory, fire, starts };
}

const list = (): Promise<{ items: KubernetesObject[] }> => Promise.resolve({ items: [] });

describe('KubeWatcher', () => {
  it('feeds add, update and delete events to the sink and reports sync', async () => {
    const { factory, fire } = fakeFactory({});
    const events: [string, ObjectKind, string][] = [];
    const sink = {
      upsert: (k: ObjectKind, o: KubeObject) => events.push(['upsert', k, o.metadata?.name ?? '']),
      delete: (k: ObjectKind, o: KubeObject) => events.push(['delete', k, o.metadata?.name ?? '']),
    };
    const w = new KubeWatcher({
      kinds: [{ kind: ObjectKinds.POD, path: '/api/v1/pods', list }],
      sink,
      informerFactory: factory,
      logger: silentLogger(),
    });
    expect(w.synced).toBe(false);
    await w.start();
    expect(w.synced).toBe(true);
    fire('/api/v1/pods', 'add', { metadata: { name: 'a' } });
    fire('/api/v1/pods', 'update', { metadata: { name: 'a' } });
    fire('/api/v1/pods', 'delete', { metadata: { name: 'a' } });
    expect(events).toEqual([
      ['upsert', 'Pod', 'a'],
      ['upsert', 'Pod', 'a'],
      ['delete', 'Pod', 'a'],
    ]);
    await w.stop();
  });

  it('restarts a failed informer after the retry delay and ignores optional kinds for readiness', async () => {
    vi.useFakeTimers();
    try {
      const { factory, fire, starts } = fakeFactory({ '/api/v1/nodes': [false, true] });
      const w = new KubeWatcher({
        kinds: [
          { kind: ObjectKinds.NODE, path: '/api/v1/nodes', list },
          { kind: ObjectKinds.GATEWAY, path: '/apis/gw', list, optional: true },
        ],
        sink: { upsert: () => undefined, delete: () => undefined },
        informerFactory: factory,
        logger: silentLogger(),
        retryDelayMs: 1000,
        timers: {
          setTimeout: (f, ms) => setTimeout(f, ms),
          clearTimeout: h => {
            clearTimeout(h as number);
          },
          now: () => Date.now(),
        },
      });
      await w.start();
      expect(w.synced).toBe(false);
      await vi.advanceTimersByTimeAsync(1000);
      expect(starts.get('/api/v1/nodes')).toBe(2);
      expect(w.synced).toBe(true);
      // A watch error schedules another restart.
      fire('/api/v1/nodes', 'error', new Error('watch closed'));
      await vi.advanceTimersByTimeAsync(1000);
      expect(starts.get('/api/v1/nodes')).toBe(3);
      await w.stop();
    } finally {
      vi.useRealTimers();
    }
  });

  it('treats the watch errors of its own stop() as a shutdown, not a failure', async () => {
    const { factory, fire, starts } = fakeFactory({});
    const lines: string[] = [];
    const w = new KubeWatcher({
      kinds: [{ kind: ObjectKinds.POD, path: '/api/v1/pods', list }],
      sink: { upsert: () => undefined, delete: () => undefined },
      informerFactory: factory,
      logger: createLogger({ format: 'json', level: 'info', destination: { write: l => lines.push(l) } }),
      retryDelayMs: 0,
    });
    await w.start();
    await w.stop();
    fire('/api/v1/pods', 'error', new Error('This operation was aborted'));
    expect(lines.filter(l => l.includes('"warn"'))).toEqual([]);
    expect(starts.get('/api/v1/pods')).toBe(1);
  });
});
