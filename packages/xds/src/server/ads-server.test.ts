// Direct tier: the ADS server on loopback, driven by plain grpc-js calls (RawDeltaStream and
// RawSotwStream write exactly the requests each test sends).
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { TypeUrl } from '@ambient-mesh/mesh-api';
import { AddressCodec, AuthorizationCodec, codecFor, type workload } from '@ambient-mesh/xds-types';
import { ResourceTypeRegistry, resourceType } from '../resource-types.ts';
import { RawDeltaStream, RawSotwStream } from '../testing/raw-ads-stream.ts';
import { AdsServer, type AdsServerOptions, type StreamAuthRequest } from './ads-server.ts';
import { MemoryResourceSource } from './memory-source.ts';
import { RESOURCE_WRAPPER_TYPE_URL } from './sotw-stream.ts';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const registry = (): ResourceTypeRegistry =>
  new ResourceTypeRegistry([
    resourceType(TypeUrl.address, AddressCodec),
    resourceType(TypeUrl.authorization, AuthorizationCodec),
  ]);

function pod(name: string, ip: number, extra: Partial<workload.WorkloadInit> = {}): workload.AddressInit {
  return {
    workload: {
      uid: `Kubernetes//Pod/demo/${name}`,
      name,
      namespace: 'demo',
      addresses: [Uint8Array.of(10, 0, 0, ip)],
      ...extra,
    },
  };
}

async function waitUntil(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise(r => setTimeout(r, 5));
  }
}

interface Harness<C> {
  readonly server: AdsServer<C>;
  readonly source: MemoryResourceSource;
  readonly address: string;
  delta(metadata?: grpc.Metadata, paused?: boolean): RawDeltaStream;
  sotw(): RawSotwStream;
}

async function harness<C = undefined>(opts: Partial<AdsServerOptions<C>> = {}): Promise<Harness<C>> {
  const source = new MemoryResourceSource();
  source.set(TypeUrl.address, 'Kubernetes//Pod/demo/a', pod('a', 1));
  source.set(TypeUrl.address, 'Kubernetes//Pod/demo/b', pod('b', 2));
  source.set(TypeUrl.authorization, 'demo/deny', { name: 'deny', namespace: 'demo', action: 1 });
  const server = new AdsServer<C>({ registry: registry(), source, ...opts });
  const grpcServer = new grpc.Server();
  server.register(grpcServer);
  const port = await new Promise<number>((resolve, reject) => {
    grpcServer.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => {
      if (err) reject(err);
      else resolve(p);
    });
  });
  cleanups.push(() => {
    server.closeAll();
    grpcServer.forceShutdown();
  });
  const address = `127.0.0.1:${port}`;
  return {
    server,
    source,
    address,
    delta: (metadata, paused) => {
      const c = new RawDeltaStream({ address, ...(metadata ? { metadata } : {}), paused: paused ?? false });
      cleanups.push(() => {
        c.close();
      });
      return c;
    },
    sotw: () => {
      const c = new RawSotwStream({ address });
      cleanups.push(() => {
        c.close();
      });
      return c;
    },
  };
}

const node = { id: 'ztunnel~10.0.0.9~ztunnel-x.istio-system~istio-system.svc.cluster.local' };

describe('AdsServer, delta', () => {
  it('serves a wildcard subscriber every resource, then only what changed, and records ACKs', async () => {
    const h = await harness({ now: () => 1_700_000_000_000 });
    const c = h.delta();
    c.send({ node, typeUrl: TypeUrl.address });
    const first = await c.next();
    expect(first.typeUrl).toBe(TypeUrl.address);
    expect(first.resources.map(r => r.name).sort()).toEqual([
      'Kubernetes//Pod/demo/a',
      'Kubernetes//Pod/demo/b',
    ]);
    expect(AddressCodec.decode(first.resources[0]!.resource!.value).workload?.namespace).toBe('demo');
    c.ack(first);

    h.server.push(h.source.set(TypeUrl.address, 'Kubernetes//Pod/demo/a', pod('a', 7)));
    const update = await c.next();
    expect(update.resources.map(r => r.name)).toEqual(['Kubernetes//Pod/demo/a']);
    expect(update.systemVersionInfo).not.toBe(first.systemVersionInfo);
    c.ack(update);
    h.server.push(h.source.delete(TypeUrl.address, 'Kubernetes//Pod/demo/b'));
    const removal = await c.next();
    expect(removal.removedResources).toEqual(['Kubernetes//Pod/demo/b']);
    c.ack(removal);
    await waitUntil('the ACK', () => h.server.syncStatus()[0]?.types[0]?.lastNonceAcked === removal.nonce);
    const [status] = h.server.syncStatus();
    expect(status).toMatchObject({ protocol: 'delta', nodeId: node.id, backpressured: false });
    expect(status?.types).toEqual([
      {
        typeUrl: TypeUrl.address,
        wildcard: true,
        subscribedNames: 0,
        resourcesKnown: 1,
        lastNonceSent: removal.nonce,
        lastVersionSent: removal.systemVersionInfo,
        lastNonceAcked: removal.nonce,
        lastVersionAcked: removal.systemVersionInfo,
        lastSentAtMs: 1_700_000_000_000,
        lastNack: undefined,
        lastNackNonce: '',
        nacks: 0,
        state: 'synced',
      },
    ]);
  });

  it('serves named subscriptions and follows subscribe/unsubscribe', async () => {
    const h = await harness();
    const c = h.delta();
    c.send({ node, typeUrl: TypeUrl.address, resourceNamesSubscribe: ['Kubernetes//Pod/demo/a'] });
    const first = await c.next();
    expect(first.resources.map(r => r.name)).toEqual(['Kubernetes//Pod/demo/a']);
    c.ack(first);
    c.send({ typeUrl: TypeUrl.address, resourceNamesSubscribe: ['Kubernetes//Pod/demo/b'] });
    const more = await c.next();
    expect(more.resources.map(r => r.name)).toEqual(['Kubernetes//Pod/demo/b']);
    c.ack(more);
    c.send({ typeUrl: TypeUrl.address, resourceNamesUnsubscribe: ['Kubernetes//Pod/demo/a'] });
    await waitUntil('the unsubscribe', () => h.server.syncStatus()[0]?.types[0]?.subscribedNames === 1);
    h.server.push(h.source.set(TypeUrl.address, 'Kubernetes//Pod/demo/a', pod('a', 8)));
    h.server.push(h.source.set(TypeUrl.address, 'Kubernetes//Pod/demo/b', pod('b', 9)));
    const next = await c.next();
    expect(next.resources.map(r => r.name)).toEqual(['Kubernetes//Pod/demo/b']);
    expect(c.buffered).toBe(0);
  });

  it('answers a reconnect with only the difference from initial_resource_versions', async () => {
    const h = await harness();
    const c1 = h.delta();
    c1.send({ node, typeUrl: TypeUrl.address });
    const first = await c1.next();
    const versions = Object.fromEntries(first.resources.map(r => [r.name, r.version]));
    c1.close();
    h.source.delete(TypeUrl.address, 'Kubernetes//Pod/demo/b');
    h.source.set(TypeUrl.address, 'Kubernetes//Pod/demo/c', pod('c', 3));
    const c2 = h.delta();
    c2.send({ node, typeUrl: TypeUrl.address, initialResourceVersions: { ...versions, gone: '' } });
    const again = await c2.next();
    expect(again.resources.map(r => r.name)).toEqual(['Kubernetes//Pod/demo/c']);
    expect(again.removedResources.sort()).toEqual(['Kubernetes//Pod/demo/b', 'gone']);
  });

  it('records a NACK with its nonce and message, keeps serving, and never resends in a loop', async () => {
    const nacks: string[] = [];
    const h = await harness({
      observer: { nack: (_c, _t, nonce, message) => nacks.push(`${nonce} ${message}`) },
    });
    const c = h.delta();
    c.send({ node, typeUrl: TypeUrl.address });
    const first = await c.next();
    c.nack(first, 'Kubernetes//Pod/demo/a: bad');
    await waitUntil('the NACK', () => nacks.length === 1);
    expect(nacks).toEqual([`${first.nonce} Kubernetes//Pod/demo/a: bad`]);
    const type = h.server.syncStatus()[0]!.types[0]!;
    expect(type).toMatchObject({
      nacks: 1,
      lastNack: 'Kubernetes//Pod/demo/a: bad',
      lastNackNonce: first.nonce,
    });
    expect(type.state).toBe('nacked');
    expect(c.buffered).toBe(0);
    h.server.push(h.source.delete(TypeUrl.address, 'Kubernetes//Pod/demo/a'));
    const next = await c.next();
    expect(next.removedResources).toEqual(['Kubernetes//Pod/demo/a']);
    c.ack(next);
    await waitUntil('the ACK', () => h.server.syncStatus()[0]!.types[0]!.state === 'synced');
    expect(h.server.syncStatus()[0]!.types[0]!.lastNack).toBeUndefined();
  });

  it('ignores type URLs that are not registered', async () => {
    const unknown: string[] = [];
    const h = await harness({ observer: { unknownType: (_c, t) => unknown.push(t) } });
    const c = h.delta();
    c.send({ node, typeUrl: 'type.googleapis.com/envoy.config.cluster.v3.Cluster' });
    c.send({ typeUrl: TypeUrl.authorization });
    const r = await c.next();
    expect(r.typeUrl).toBe(TypeUrl.authorization);
    expect(unknown).toEqual(['type.googleapis.com/envoy.config.cluster.v3.Cluster']);
  });
});

describe('AdsServer, state of the world', () => {
  it('sends every subscribed resource wrapped with its name, on subscribe and on each change', async () => {
    const h = await harness();
    const c = h.sotw();
    c.send({ node, typeUrl: TypeUrl.address });
    const first = await c.next();
    const names = (r: typeof first): string[] =>
      r.resources.map(any => {
        expect(any.type_url).toBe(RESOURCE_WRAPPER_TYPE_URL);
        const wrapped = codecFor('envoy.service.discovery.v3.Resource').decode(any.value);
        expect(wrapped.resource?.type_url).toBe(TypeUrl.address);
        return wrapped.name;
      });
    expect(names(first).sort()).toEqual(['Kubernetes//Pod/demo/a', 'Kubernetes//Pod/demo/b']);
    expect(first.versionInfo).not.toBe('');
    c.ack(first);
    h.server.push(h.source.delete(TypeUrl.address, 'Kubernetes//Pod/demo/b'));
    const second = await c.next();
    expect(names(second)).toEqual(['Kubernetes//Pod/demo/a']);
    c.ack(second);
    await waitUntil('the ACK', () => h.server.syncStatus()[0]?.types[0]?.state === 'synced');
    expect(h.server.syncStatus()[0]).toMatchObject({
      protocol: 'sotw',
      types: [{ lastNonceAcked: second.nonce, lastVersionAcked: second.versionInfo, resourcesKnown: 1 }],
    });
  });

  it('follows resource_names changes and records a NACK without resending', async () => {
    const h = await harness();
    const c = h.sotw();
    c.send({ node, typeUrl: TypeUrl.address, resourceNames: ['Kubernetes//Pod/demo/a'] });
    const first = await c.next();
    expect(first.resources).toHaveLength(1);
    c.ack(first, ['Kubernetes//Pod/demo/a', 'Kubernetes//Pod/demo/b']);
    const widened = await c.next();
    expect(widened.resources).toHaveLength(2);
    c.nack(widened, 'b: bad', first.versionInfo, ['Kubernetes//Pod/demo/a', 'Kubernetes//Pod/demo/b']);
    await waitUntil('the NACK', () => h.server.syncStatus()[0]?.types[0]?.nacks === 1);
    expect(h.server.syncStatus()[0]!.types[0]).toMatchObject({
      state: 'nacked',
      lastNack: 'b: bad',
      lastNackNonce: widened.nonce,
      lastNonceAcked: first.nonce,
      lastVersionAcked: first.versionInfo,
    });
    expect(c.buffered).toBe(0);
    // A change to a name nobody subscribed to sends nothing; one to a subscribed name does.
    h.server.push(h.source.set(TypeUrl.address, 'Kubernetes//Pod/demo/z', pod('z', 26)));
    h.server.push(h.source.set(TypeUrl.address, 'Kubernetes//Pod/demo/a', pod('a', 11)));
    const next = await c.next();
    expect(next.resources).toHaveLength(2);
    expect(c.buffered).toBe(0);
  });
});

describe('AdsServer, generated (debug) types', () => {
  const DEBUG = 'istio.io/debug/syncz';
  const generated = (client: string | undefined, names: readonly string[]) => ({
    resources: [
      {
        name: `for-${client ?? 'anyone'}`,
        resource: {
          type_url: 'type.googleapis.com/google.rpc.Status',
          value: Uint8Array.of(8, names.length),
        },
      },
    ],
    controlPlane: { identifier: '{"Component":"test"}' },
  });

  it('answers each SotW request unwrapped with its control plane, ignores its ACK, keeps it out of the status', async () => {
    const calls: string[] = [];
    const h = await harness<string>({
      authenticate: () => ({ ok: true, client: 'debugger' }),
      generate: (client, t, names) => {
        if (t !== DEBUG) return undefined;
        calls.push(client);
        return generated(client, names);
      },
    });
    const c = h.sotw();
    c.send({ node, typeUrl: DEBUG });
    const first = await c.next();
    expect(first).toMatchObject({ typeUrl: DEBUG, controlPlane: { identifier: '{"Component":"test"}' } });
    expect(first.resources).toEqual([
      { type_url: 'type.googleapis.com/google.rpc.Status', value: Buffer.from([8, 0]) },
    ]);
    c.ack(first);
    // The ACK is not answered; a new request (another nonce) is.
    c.send({ typeUrl: DEBUG, responseNonce: 'a-client-clock', resourceNames: ['x'] });
    const second = await c.next();
    expect(second.resources[0]?.value).toEqual(Buffer.from([8, 1]));
    expect(second.nonce).not.toBe(first.nonce);
    expect(calls).toEqual(['debugger', 'debugger']);
    expect(c.buffered).toBe(0);
    expect(h.server.syncStatus()[0]?.types).toEqual([]);
  });

  it('answers a delta request with named resources; other unknown types stay unknown', async () => {
    const unknown: string[] = [];
    const h = await harness({
      generate: (_c, t, names) => (t === DEBUG ? generated(undefined, names) : undefined),
      observer: { unknownType: (_c, t) => unknown.push(t) },
    });
    const c = h.delta();
    c.send({ node, typeUrl: 'istio.io/debug/unknown' });
    c.send({ typeUrl: DEBUG });
    const r = await c.next();
    expect(r.resources.map(x => x.name)).toEqual(['for-anyone']);
    expect(r.controlPlane?.identifier).toBe('{"Component":"test"}');
    expect(unknown).toEqual(['istio.io/debug/unknown']);
  });
});

describe('AdsServer, authentication and isolation', () => {
  it('passes node, metadata and peer to the hook, and ends a refused stream with its status', async () => {
    const seen: StreamAuthRequest[] = [];
    const rejected: string[] = [];
    const h = await harness<{ sa: string }>({
      authenticate: req => {
        seen.push(req);
        const token = req.metadata.get('authorization')[0];
        return token === 'Bearer good'
          ? { ok: true, client: { sa: 'ztunnel' }, label: 'z' }
          : { ok: false, code: grpc.status.UNAUTHENTICATED, message: 'no valid token' };
      },
      observer: { rejected: (_r, code, message) => rejected.push(`${code} ${message}`) },
    });
    const bad = h.delta();
    bad.send({ node, typeUrl: TypeUrl.address });
    const err = await bad.failure();
    expect(err.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(err.details).toBe('no valid token');
    expect(rejected).toEqual([`${grpc.status.UNAUTHENTICATED} no valid token`]);
    expect(h.server.connectionCount).toBe(0);

    const md = new grpc.Metadata();
    md.set('authorization', 'Bearer good');
    const good = h.delta(md);
    good.send({ node, typeUrl: TypeUrl.address });
    good.send({ typeUrl: TypeUrl.authorization });
    expect((await good.next()).typeUrl).toBe(TypeUrl.address);
    expect((await good.next()).typeUrl).toBe(TypeUrl.authorization);
    expect(seen[1]).toMatchObject({ protocol: 'delta', node: { id: node.id } });
    expect(seen[1]!.peer).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(seen[1]!.peerCertificate).toBeUndefined();
    const [status] = h.server.syncStatus();
    expect(status?.client).toEqual({ sa: 'ztunnel' });
    expect(status?.connectionId).toMatch(/^z-\d+$/);
    expect(status?.types.map(t => t.typeUrl)).toEqual([TypeUrl.address, TypeUrl.authorization]);
  });

  it('serves each client its own source and pushes only to the clients a push names', async () => {
    const sources = new Map([
      ['a', new MemoryResourceSource()],
      ['b', new MemoryResourceSource()],
    ]);
    sources.get('a')!.set(TypeUrl.address, 'shared', pod('a', 1));
    sources.get('b')!.set(TypeUrl.address, 'shared', pod('b', 2));
    const h = await harness<{ who: string }>({
      authenticate: req => ({ ok: true, client: { who: req.metadata.get('who')[0] as string } }),
      sourceFor: client => sources.get(client.who)!,
    });
    const open = (who: string): RawDeltaStream => {
      const md = new grpc.Metadata();
      md.set('who', who);
      const c = h.delta(md);
      c.send({ node, typeUrl: TypeUrl.address });
      return c;
    };
    const a = open('a');
    const b = open('b');
    const firstA = await a.next();
    const firstB = await b.next();
    expect(AddressCodec.decode(firstA.resources[0]!.resource!.value).workload?.name).toBe('a');
    expect(AddressCodec.decode(firstB.resources[0]!.resource!.value).workload?.name).toBe('b');
    a.ack(firstA);
    b.ack(firstB);
    const changes = sources.get('a')!.set(TypeUrl.address, 'shared', pod('a', 9));
    expect(h.server.push(changes, client => client.who === 'a')).toBe(1);
    const update = await a.next();
    const addresses = AddressCodec.decode(update.resources[0]!.resource!.value).workload?.addresses ?? [];
    expect(addresses.map(ip => [...ip])).toEqual([[10, 0, 0, 9]]);
    // b was not named by the push, and its own source did not change.
    expect(b.buffered).toBe(0);
  });

  it('a stream that never reads does not delay pushes to the others', async () => {
    const h = await harness();
    // Resources big enough that a few responses fill the paused stream's flow-control window.
    const big = (i: number): workload.AddressInit =>
      pod('a', 1, { canonicalName: `${'x'.repeat(64 * 1024)}-${i}` });
    const slow = h.delta(undefined, true);
    slow.send({
      node: { id: 'ztunnel~10.0.0.1~slow.istio-system~istio-system.svc.cluster.local' },
      typeUrl: TypeUrl.address,
    });
    const fast = h.delta();
    fast.send({ node, typeUrl: TypeUrl.address });
    fast.ack(await fast.next());
    await waitUntil('both streams', () => h.server.connectionCount === 2);
    const slowStatus = () => h.server.syncStatus().find(s => s.nodeId.includes('~slow.'));
    for (let i = 0; i < 200 && slowStatus()?.backpressured !== true; i++) {
      h.server.push(h.source.set(TypeUrl.address, 'Kubernetes//Pod/demo/a', big(i)));
      fast.ack(await fast.next());
    }
    expect(slowStatus()?.backpressured).toBe(true);
    // Pushes continue to the fast stream while the slow one stays blocked.
    for (let i = 0; i < 20; i++) {
      h.server.push(h.source.set(TypeUrl.address, 'Kubernetes//Pod/demo/b', pod('b', 100 + i)));
      const r = await fast.next(10_000);
      expect(r.resources.map(x => x.name)).toEqual(['Kubernetes//Pod/demo/b']);
      fast.ack(r);
    }
    expect(slowStatus()?.backpressured).toBe(true);
    // Once it reads, the slow stream drains and catches up with coalesced responses.
    slow.startReading();
    const received: string[] = [];
    for (let i = 0; i < 500 && !received.includes('Kubernetes//Pod/demo/b'); i++) {
      const r = await slow.next(10_000);
      received.push(...r.resources.map(x => x.name));
    }
    await waitUntil('the slow stream drained', () => slowStatus()?.backpressured === false);
    // 20 updates of b were pushed while it was blocked; far fewer responses carried them.
    expect(received.filter(n => n === 'Kubernetes//Pod/demo/b').length).toBeLessThan(20);
  });
});
