import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Informer, KubeClient, clientSource } from '@ambient-mesh/kube';
import { FakeApiServer, ManualTimers, until } from '@ambient-mesh/kube/testing';
import { createLogger, silentLogger } from '@ambient-mesh/runtime';
import { ObjectKinds, type ObjectKind } from '../wds/wds-index.ts';
import { KubeWatcher, istiodWatchedKinds, kubeInformerFactory, type InformerFactory } from './informers.ts';
import type { KubeObject } from './objects.ts';

const PODS = '/api/v1/pods';
const NODES = '/api/v1/nodes';
const GATEWAYS = '/apis/gateway.networking.k8s.io/v1/gateways';

describe('KubeWatcher', () => {
  let server: FakeApiServer;
  const watchers: KubeWatcher[] = [];

  beforeEach(async () => {
    server = await FakeApiServer.start();
  });

  afterEach(async () => {
    await Promise.all(watchers.splice(0).map(w => w.stop()));
    await server.close();
  });

  it('feeds add, update and delete events to the sink and reports sync', async () => {
    const events: [string, ObjectKind, string][] = [];
    const sink = {
      upsert: (k: ObjectKind, o: KubeObject) => events.push(['upsert', k, o.metadata?.name ?? '']),
      delete: (k: ObjectKind, o: KubeObject) => events.push(['delete', k, o.metadata?.name ?? '']),
    };
    const w = new KubeWatcher({
      kinds: [{ kind: ObjectKinds.POD, path: PODS }],
      sink,
      informerFactory: kubeInformerFactory(server.kubeConfig()),
      logger: silentLogger(),
    });
    watchers.push(w);
    expect(w.synced).toBe(false);
    await w.start();
    expect(w.synced).toBe(true);
    await until('watch open', () => server.openWatches === 1);
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'a', namespace: 'ns' } };
    server.put(PODS, pod);
    server.put(PODS, { ...pod, spec: { nodeName: 'n' } });
    server.remove(PODS, 'a', 'ns');
    await until('three events', () => events.length === 3);
    expect(events).toEqual([
      ['upsert', 'Pod', 'a'],
      ['upsert', 'Pod', 'a'],
      ['delete', 'Pod', 'a'],
    ]);
  });

  it('watches only TLS Secrets (for ingress gateways), with the field selector on list and watch', async () => {
    const secrets = istiodWatchedKinds().find(k => k.kind === 'Secret');
    expect(secrets).toMatchObject({
      path: '/api/v1/secrets',
      query: { fieldSelector: 'type=kubernetes.io/tls' },
      optional: true,
    });
    const w = new KubeWatcher({
      kinds: [secrets!],
      sink: { upsert: () => undefined, delete: () => undefined },
      informerFactory: kubeInformerFactory(server.kubeConfig()),
      logger: silentLogger(),
    });
    watchers.push(w);
    await w.start();
    await until('watch open', () => server.openWatches === 1);
    const asked = server.requests.filter(r => r.path === '/api/v1/secrets');
    expect(asked.length).toBeGreaterThanOrEqual(2);
    for (const r of asked) expect(r.query.fieldSelector).toBe('type=kubernetes.io/tls');
  });

  it('retries a failed first list with back-off and ignores optional kinds for readiness', async () => {
    const timers = new ManualTimers();
    const client = new KubeClient(server.kubeConfig());
    // Nodes: the first list fails. Gateways: the API is not installed (every list fails).
    server.failNext(1, 503, r => r.path === NODES && r.query.watch === undefined);
    const factory: InformerFactory = (k, onError) =>
      new Informer<KubeObject>({
        name: k.kind,
        source:
          k.path === GATEWAYS
            ? {
                list: () => Promise.reject(new Error('the server could not find the requested resource')),
                watch: () => Promise.resolve(),
              }
            : clientSource<KubeObject>(client, k.path),
        timers,
        backoff: { initialMs: 1000, jitter: 0 },
        onError,
      });
    const w = new KubeWatcher({
      kinds: [
        { kind: ObjectKinds.NODE, path: NODES },
        { kind: ObjectKinds.GATEWAY, path: GATEWAYS, optional: true },
      ],
      sink: { upsert: () => undefined, delete: () => undefined },
      informerFactory: factory,
      logger: silentLogger(),
    });
    watchers.push(w);
    const started = w.start();
    await until('both back off', () => timers.pending === 2);
    expect(w.synced).toBe(false);
    expect(timers.delays).toEqual([1000, 1000]);
    timers.fire();
    timers.fire();
    await started;
    expect(w.synced).toBe(true);
    expect(server.count('GET', NODES, r => r.query.watch === undefined)).toBe(2);
    // The optional kind keeps backing off, longer each time, without blocking readiness.
    await until('gateway back-off', () => timers.pending === 1);
    expect(timers.fire()).toBe(2000);
  });

  it('treats the watch errors of its own stop() as a shutdown, not a failure', async () => {
    const lines: string[] = [];
    const w = new KubeWatcher({
      kinds: [{ kind: ObjectKinds.POD, path: PODS }],
      sink: { upsert: () => undefined, delete: () => undefined },
      informerFactory: kubeInformerFactory(server.kubeConfig()),
      logger: createLogger({ format: 'json', level: 'info', destination: { write: l => lines.push(l) } }),
    });
    await w.start();
    await until('watch open', () => server.openWatches === 1);
    await w.stop();
    await until('watch closed', () => server.openWatches === 0);
    expect(lines.filter(l => l.includes('"warn"'))).toEqual([]);
    expect(server.count('GET', PODS, r => r.query.watch === 'true')).toBe(1);
  });
});
