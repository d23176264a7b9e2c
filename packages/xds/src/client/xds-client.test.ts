// Direct tier: the client against the scripted TestAdsServer (exact requests) and against the
// package's own AdsServer (both protocols end to end), on loopback.
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { TypeUrl } from '@ambient-mesh/mesh-api';
import { AddressCodec, AuthorizationCodec, packAny, type workload } from '@ambient-mesh/xds-types';
import { ResourceTypeRegistry, resourceType } from '../resource-types.ts';
import { AdsServer } from '../server/ads-server.ts';
import { RESOURCE_WRAPPER_TYPE_URL } from '../server/sotw-stream.ts';
import { MemoryResourceSource } from '../server/memory-source.ts';
import { TestAdsServer } from '../testing/test-ads-server.ts';
import type { Timers } from '../timers.ts';
import { typedHandler, type DecodedResource } from './handlers.ts';
import { deltaStreamFactory, sotwStreamFactory } from './transport.ts';
import { XdsClient, type ResponseRecord, type XdsClientOptions } from './xds-client.ts';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function waitUntil(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise(r => setTimeout(r, 5));
  }
}

const addressType = resourceType(TypeUrl.address, AddressCodec);
const authorizationType = resourceType(TypeUrl.authorization, AuthorizationCodec);
const node = { id: 'ztunnel~10.0.0.5~z.istio-system~istio-system.svc.cluster.local' };

function pod(name: string, ip: number[]): workload.AddressInit {
  return {
    workload: {
      uid: `Kubernetes//Pod/demo/${name}`,
      name,
      namespace: 'demo',
      addresses: [Uint8Array.from(ip)],
    },
  };
}

/** A store that rejects addresses whose first IP is not 4 or 16 bytes (a stand-in for validation). */
class Store {
  readonly addresses = new Map<string, workload.Address>();
  readonly policies = new Set<string>();
  readonly responses: ResponseRecord[] = [];
  applyAddresses = (accepted: readonly DecodedResource<workload.Address>[], removed: readonly string[]) => {
    const rejected = [];
    for (const r of accepted) {
      const ip = r.value.workload?.addresses[0];
      if (ip !== undefined && ip.length !== 4 && ip.length !== 16) {
        rejected.push({ name: r.name, reason: `an IP must be 4 or 16 bytes, got ${ip.length}` });
      } else {
        this.addresses.set(r.name, r.value);
      }
    }
    for (const n of removed) this.addresses.delete(n);
    return rejected;
  };
}

function grpcClient(address: string): grpc.Client {
  const c = new grpc.Client(address, grpc.credentials.createInsecure());
  cleanups.push(() => {
    c.close();
  });
  return c;
}

function startClient(
  address: string,
  store: Store,
  extra: Partial<XdsClientOptions> & { protocol?: 'delta' | 'sotw' } = {},
): XdsClient {
  const channel = grpcClient(address);
  const metadata = (): grpc.Metadata => {
    const m = new grpc.Metadata();
    m.set('clusterid', 'c1');
    return m;
  };
  const common = {
    node,
    handlers: [
      typedHandler({ type: addressType, apply: store.applyAddresses }),
      typedHandler({
        type: authorizationType,
        apply: (accepted, removed) => {
          for (const r of accepted) store.policies.add(r.name);
          for (const n of removed) store.policies.delete(n);
          return [];
        },
      }),
    ],
    observer: { response: (r: ResponseRecord) => store.responses.push(r) },
    backoff: { initialMs: 5, maxMs: 50 },
    ...extra,
  };
  const client =
    extra.protocol === 'sotw'
      ? new XdsClient({ ...common, protocol: 'sotw', connect: sotwStreamFactory(channel, metadata) })
      : new XdsClient({ ...common, protocol: 'delta', connect: deltaStreamFactory(channel, metadata) });
  cleanups.push(() => {
    client.stop();
  });
  client.start();
  return client;
}

async function scripted(): Promise<{ server: TestAdsServer; address: string }> {
  const server = new TestAdsServer();
  const address = await server.start();
  cleanups.push(() => server.stop());
  return { server, address };
}

describe('XdsClient, delta', () => {
  it('opens one wildcard request per handler with the node and the call metadata', async () => {
    const { server, address } = await scripted();
    startClient(address, new Store());
    await waitUntil('initial requests', () => server.requests.length >= 2);
    expect(server.requests.map(r => r.typeUrl)).toEqual([TypeUrl.address, TypeUrl.authorization]);
    for (const r of server.requests) {
      expect(r.node?.id).toBe(node.id);
      expect(r.resourceNamesSubscribe).toEqual([]);
      expect(r.initialResourceVersions).toEqual({});
    }
    expect(server.metadata[0]?.get('clusterid')).toEqual(['c1']);
  });

  it('NACKs rejected resources by name with the joined reasons and keeps the last good state', async () => {
    const { server, address } = await scripted();
    const store = new Store();
    const client = startClient(address, store);
    await waitUntil('initial requests', () => server.requests.length >= 2);
    server.push({
      typeUrl: TypeUrl.address,
      resources: [
        { name: 'a', version: '1', resource: packAny(TypeUrl.address, pod('a', [10, 0, 0, 1])) },
        { name: 'b', version: '1', resource: packAny(TypeUrl.address, pod('b', [10, 0, 0, 2])) },
      ],
    });
    await waitUntil('the ACK', () => server.requestsFor(TypeUrl.address).length >= 2);
    expect(server.requestsFor(TypeUrl.address)[1]?.errorDetail).toBeNull();
    const nonce = server.push({
      typeUrl: TypeUrl.address,
      resources: [
        { name: 'a', version: '2', resource: packAny(TypeUrl.address, pod('a', [10, 0, 0])) },
        { name: 'b', version: '2', resource: packAny(TypeUrl.address, pod('b', [10, 0, 0, 22])) },
        {
          name: 'garbage',
          version: '2',
          resource: { type_url: TypeUrl.address, value: Uint8Array.of(0xff, 0xff) },
        },
      ],
    });
    await waitUntil('the NACK', () => server.requestsFor(TypeUrl.address).length >= 3);
    const nack = server.requestsFor(TypeUrl.address)[2]!;
    expect(nack.responseNonce).toBe(nonce);
    expect(nack.errorDetail?.code).toBe(3);
    expect(nack.errorDetail?.message).toMatch(/^garbage: .+; a: an IP must be 4 or 16 bytes, got 3$/);
    // a keeps its last good version; b's valid update applied.
    expect([...store.addresses.get('a')!.workload!.addresses[0]!]).toEqual([10, 0, 0, 1]);
    expect([...store.addresses.get('b')!.workload!.addresses[0]!]).toEqual([10, 0, 0, 22]);
    expect(client.known().get(TypeUrl.address)).toEqual(
      new Map([
        ['a', '1'],
        ['b', '2'],
      ]),
    );
    expect(store.responses.at(-1)?.nack).toBe(nack.errorDetail?.message);
    expect(client.synced).toBe(false);
    server.push({ typeUrl: TypeUrl.authorization, resources: [] });
    await waitUntil('synced', () => client.synced);
  });

  it('waits for an asynchronous handler before answering, and handles later responses after it, in order', async () => {
    const { server, address } = await scripted();
    const order: string[] = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>(resolve => {
      release = resolve;
    });
    const channel = grpcClient(address);
    const client = new XdsClient({
      node,
      handlers: [
        {
          typeUrl: TypeUrl.address,
          handle: async resources => {
            order.push(`address:${resources.map(r => r.name).join(',')}`);
            await gate;
            return resources
              .filter(r => r.name === 'bad')
              .map(r => ({ name: r.name, reason: 'cannot bind' }));
          },
        },
        {
          typeUrl: TypeUrl.authorization,
          handle: resources => {
            order.push(`authorization:${resources.length}`);
            return [];
          },
        },
      ],
      connect: deltaStreamFactory(channel, () => new grpc.Metadata()),
    });
    cleanups.push(() => {
      client.stop();
    });
    client.start();
    await waitUntil('initial requests', () => server.requests.length >= 2);
    const nonce = server.push({
      typeUrl: TypeUrl.address,
      resources: [
        { name: 'good', version: '1', resource: packAny(TypeUrl.address, pod('good', [10, 0, 0, 1])) },
        { name: 'bad', version: '1', resource: packAny(TypeUrl.address, pod('bad', [10, 0, 0, 2])) },
      ],
    });
    server.push({ typeUrl: TypeUrl.authorization, resources: [] });
    await waitUntil('the first handler call', () => order.length >= 1);
    // Nothing answered and the next response not handled while the first one is pending.
    await new Promise(resolve => setImmediate(resolve));
    expect(server.requestsFor(TypeUrl.address)).toHaveLength(1);
    expect(order).toEqual(['address:good,bad']);
    release();
    await waitUntil('the NACK', () => server.requestsFor(TypeUrl.address).length >= 2);
    const nack = server.requestsFor(TypeUrl.address)[1]!;
    expect(nack.responseNonce).toBe(nonce);
    expect(nack.errorDetail?.message).toBe('bad: cannot bind');
    expect(client.known().get(TypeUrl.address)).toEqual(new Map([['good', '1']]));
    await waitUntil('synced', () => client.synced);
    expect(order).toEqual(['address:good,bad', 'authorization:0']);
  });

  it('reconnects with backoff and resumes with initial_resource_versions', async () => {
    const { server, address } = await scripted();
    const store = new Store();
    startClient(address, store);
    await waitUntil('initial requests', () => server.requests.length >= 2);
    server.push({
      typeUrl: TypeUrl.address,
      resources: [
        { name: 'a', version: '1', resource: packAny(TypeUrl.address, pod('a', [10, 0, 0, 1])) },
        { name: 'b', version: '1', resource: packAny(TypeUrl.address, pod('b', [10, 0, 0, 2])) },
      ],
    });
    server.push({ typeUrl: TypeUrl.address, resources: [], removedResources: ['b'] });
    await waitUntil('the ACKs', () => server.requestsFor(TypeUrl.address).length >= 3);
    server.dropStream();
    await waitUntil(
      'the reconnect',
      () => server.streams >= 2 && server.requestsFor(TypeUrl.address).length >= 4,
    );
    const resumed = server.requestsFor(TypeUrl.address)[3]!;
    expect(resumed.node?.id).toBe(node.id);
    expect(resumed.initialResourceVersions).toEqual({ a: '' });
    expect(store.addresses.has('a')).toBe(true);
  });

  it('announces recorded versions when asked to', async () => {
    const { server, address } = await scripted();
    startClient(address, new Store(), {
      resumeVersions: 'recorded',
      initialResources: new Map([[TypeUrl.address, new Map([['a', 'v7']])]]),
    });
    await waitUntil('initial requests', () => server.requests.length >= 2);
    expect(server.requestsFor(TypeUrl.address)[0]?.initialResourceVersions).toEqual({ a: 'v7' });
  });

  it('waits the backoff between reconnects, growing it, with injected timers', async () => {
    const scheduled: number[] = [];
    const timers: Timers = {
      setTimeout: (fn, ms) => {
        scheduled.push(ms);
        return setTimeout(fn, 0);
      },
      clearTimeout: h => {
        clearTimeout(h as ReturnType<typeof setTimeout>);
      },
      now: () => 0,
    };
    let attempts = 0;
    const client = new XdsClient({
      node,
      handlers: [typedHandler({ type: addressType, apply: () => [] })],
      timers,
      backoff: { initialMs: 100, maxMs: 400, jitter: 0.5, random: () => 0.5 },
      connect: () => {
        attempts++;
        throw new Error('no route');
      },
    });
    cleanups.push(() => {
      client.stop();
    });
    client.start();
    await waitUntil('five attempts', () => attempts >= 5);
    client.stop();
    expect(scheduled.slice(0, 4)).toEqual([75, 150, 300, 300]);
  });
});

describe('XdsClient, state of the world', () => {
  it('names wrapped resources, derives removals, NACKs with the last accepted version and resumes with it', async () => {
    const { server, address } = await scripted();
    const store = new Store();
    startClient(address, store, { protocol: 'sotw' });
    await waitUntil('initial requests', () => server.sotwRequests.length >= 2);
    expect(server.sotwRequests.map(r => [r.typeUrl, r.versionInfo, r.resourceNames, r.node?.id])).toEqual([
      [TypeUrl.address, '', [], node.id],
      [TypeUrl.authorization, '', [], node.id],
    ]);
    const wrap = (name: string, ip: number[]) =>
      packAny(RESOURCE_WRAPPER_TYPE_URL, {
        name,
        version: `r-${name}`,
        resource: packAny(TypeUrl.address, pod(name, ip)),
      });
    const first = server.pushSotw({
      typeUrl: TypeUrl.address,
      versionInfo: '1',
      resources: [wrap('a', [10, 0, 0, 1]), wrap('b', [10, 0, 0, 2])],
    });
    await waitUntil('the ACK', () => server.sotwRequestsFor(TypeUrl.address).length >= 2);
    expect(server.sotwRequestsFor(TypeUrl.address)[1]).toMatchObject({
      responseNonce: first,
      versionInfo: '1',
      errorDetail: null,
    });
    // b is gone (absent from the full set); a's new version is rejected and keeps its last good one.
    const second = server.pushSotw({
      typeUrl: TypeUrl.address,
      versionInfo: '2',
      resources: [wrap('a', [10, 0])],
    });
    await waitUntil('the NACK', () => server.sotwRequestsFor(TypeUrl.address).length >= 3);
    expect(server.sotwRequestsFor(TypeUrl.address)[2]).toMatchObject({
      responseNonce: second,
      versionInfo: '1',
      errorDetail: { code: 3, message: 'a: an IP must be 4 or 16 bytes, got 2' },
    });
    expect([...store.addresses.keys()]).toEqual(['a']);
    expect([...store.addresses.get('a')!.workload!.addresses[0]!]).toEqual([10, 0, 0, 1]);
    server.dropStream();
    await waitUntil('the reconnect', () => server.sotwRequestsFor(TypeUrl.address).length >= 4);
    expect(server.sotwRequestsFor(TypeUrl.address)[3]).toMatchObject({ versionInfo: '1', responseNonce: '' });
  });
});

describe('XdsClient against AdsServer', () => {
  async function served(): Promise<{ server: AdsServer; source: MemoryResourceSource; address: string }> {
    const source = new MemoryResourceSource();
    source.set(TypeUrl.address, 'a', pod('a', [10, 0, 0, 1]));
    source.set(TypeUrl.authorization, 'demo/deny', { name: 'deny', namespace: 'demo' });
    const server = new AdsServer({
      registry: new ResourceTypeRegistry([addressType, authorizationType]),
      source,
    });
    const grpcServer = new grpc.Server();
    server.register(grpcServer);
    const port = await new Promise<number>((resolve, reject) => {
      grpcServer.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => {
        if (e) reject(e);
        else resolve(p);
      });
    });
    cleanups.push(() => {
      server.closeAll();
      grpcServer.forceShutdown();
    });
    return { server, source, address: `127.0.0.1:${port}` };
  }

  it.each(['delta', 'sotw'] as const)(
    'syncs, follows changes and removals, and NACKs without losing state (%s)',
    async protocol => {
      const { server, source, address } = await served();
      const store = new Store();
      const client = startClient(address, store, { protocol });
      await waitUntil('synced', () => client.synced);
      expect([...store.addresses.keys()]).toEqual(['a']);
      expect([...store.policies]).toEqual(['demo/deny']);
      server.push(source.set(TypeUrl.address, 'b', pod('b', [10, 0, 0, 2])));
      await waitUntil('b', () => store.addresses.has('b'));
      server.push(source.set(TypeUrl.address, 'b', pod('b', [10, 0])));
      await waitUntil(
        'the NACK',
        () => server.syncStatus()[0]?.types.find(t => t.typeUrl === TypeUrl.address)?.state === 'nacked',
      );
      expect(server.syncStatus()[0]?.types.find(t => t.typeUrl === TypeUrl.address)?.lastNack).toBe(
        'b: an IP must be 4 or 16 bytes, got 2',
      );
      expect([...store.addresses.get('b')!.workload!.addresses[0]!]).toEqual([10, 0, 0, 2]);
      // SotW resends every subscribed resource, so b must be valid again before the next ACK.
      source.set(TypeUrl.address, 'b', pod('b', [10, 0, 0, 3]));
      server.push(new Map([[TypeUrl.address, new Set(['a', 'b'])], ...source.delete(TypeUrl.address, 'a')]));
      await waitUntil('a removed', () => !store.addresses.has('a'));
      await waitUntil(
        'synced again',
        () => server.syncStatus()[0]?.types.every(t => t.state === 'synced') === true,
      );
      expect(server.syncStatus()[0]?.protocol).toBe(protocol);
    },
  );

  it('a delta reconnect announcing recorded versions receives only what changed while it was away', async () => {
    const { server, source, address } = await served();
    const store = new Store();
    const client = startClient(address, store, { resumeVersions: 'recorded' });
    await waitUntil('synced', () => client.synced);
    const before = store.responses.length;
    server.closeAll();
    source.set(TypeUrl.address, 'c', pod('c', [10, 0, 0, 3]));
    await waitUntil('c after the reconnect', () => store.addresses.has('c'));
    const after = store.responses.slice(before).filter(r => r.typeUrl === TypeUrl.address);
    expect(after.flatMap(r => r.resourceNames)).toEqual(['c']);
  });
});
