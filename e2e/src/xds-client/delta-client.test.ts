// Direct tier: the delta-xDS test client against an in-process grpc-js server on loopback that
// serves TLS 1.3 with a certificate for istiod.istio-system.svc (made with the openssl CLI).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { TestAdsServer } from '@ambient-mesh/xds/testing';
import { TypeUrl, fromStruct, packAny, security, workload, type discovery } from '@ambient-mesh/xds-types';
import { Pki } from '../control-plane/pki.ts';
import { runCommand, waitFor } from '../exec.ts';
import { DeltaXdsClient, type DeltaXdsClientOptions } from './delta-client.ts';
import { ztunnelNode } from './node.ts';
import { isMeshError } from '@ambient-mesh/errors';

type Call = grpc.ServerDuplexStream<discovery.DeltaDiscoveryRequest, discovery.DeltaDiscoveryResponseInit>;

/** The scripted ADS server of `@ambient-mesh/xds/testing` with istiod's TLS serving certificate. */
type FakeIstiod = TestAdsServer & { readonly address: string };

let dir: string;
let rootCert: string;
let serving: { cert: Buffer; key: Buffer };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'am-xds-client-'));
  const pki = new Pki(dir, runCommand);
  await pki.init();
  const pair = await pki.serving('istiod', ['istiod.istio-system.svc'], []);
  rootCert = readFileSync(pki.ca.cert, 'utf8');
  serving = { cert: readFileSync(pair.cert), key: readFileSync(pair.key) };
}, 60_000);

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function startFakeIstiod(): Promise<FakeIstiod> {
  const server = new TestAdsServer({
    credentials: grpc.ServerCredentials.createSsl(null, [
      { cert_chain: serving.cert, private_key: serving.key },
    ]),
  });
  onTestFinished(() => server.stop());
  const address = await server.start();
  return Object.assign(server, { address });
}

const node = ztunnelNode({
  ip: '10.244.0.9',
  podName: 'ztunnel-x',
  namespace: 'istio-system',
  nodeName: 'node-0',
});

function client(fake: FakeIstiod, extra: Partial<DeltaXdsClientOptions> = {}): DeltaXdsClient {
  const c = new DeltaXdsClient({ address: fake.address, rootCert, token: 'tok-123', node, ...extra });
  onTestFinished(() => c.close());
  return c;
}

function podAddress(name: string, ip: number[]): discovery.ResourceInit {
  const uid = `Kubernetes//Pod/demo/${name}`;
  return {
    name: uid,
    version: `v-${name}`,
    resource: packAny(TypeUrl.ADDRESS, {
      workload: {
        uid,
        name,
        namespace: 'demo',
        addresses: [Uint8Array.from(ip)],
        tunnelProtocol: workload.TunnelProtocol.HBONE,
      },
    }),
  };
}

const denyPolicy: discovery.ResourceInit = {
  name: 'demo/deny-all',
  version: 'p1',
  resource: packAny(TypeUrl.AUTHORIZATION, {
    name: 'deny-all',
    namespace: 'demo',
    scope: security.Scope.NAMESPACE,
    action: security.Action.DENY,
  }),
};

describe('DeltaXdsClient', () => {
  it('subscribes as a ztunnel: TLS to the overridden server name, bearer token, clusterid, wildcard request per type with the node', async () => {
    const fake = await startFakeIstiod();
    fake.onInitial = (call, req) => {
      call.write({ typeUrl: req.typeUrl, nonce: `n-${req.typeUrl}`, resources: [] });
    };
    const c = client(fake).start();
    await c.waitForSync(10_000);
    expect(fake.metadata[0]?.get('authorization')).toEqual(['Bearer tok-123']);
    expect(fake.metadata[0]?.get('clusterid')).toEqual(['Kubernetes']);
    const initial = fake.requests.filter(r => r.responseNonce === '');
    expect(initial.map(r => r.typeUrl)).toEqual([TypeUrl.ADDRESS, TypeUrl.AUTHORIZATION]);
    for (const r of initial) {
      expect(r.node?.id).toBe('ztunnel~10.244.0.9~ztunnel-x.istio-system~istio-system.svc.cluster.local');
      expect(fromStruct(r.node?.metadata)).toEqual({
        NAME: 'ztunnel-x',
        NAMESPACE: 'istio-system',
        INSTANCE_IPS: '10.244.0.9',
        NODE_NAME: 'node-0',
        CLUSTER_ID: 'Kubernetes',
      });
      expect(r.resourceNamesSubscribe).toEqual([]);
      expect(r.initialResourceVersions).toEqual({});
    }
  });

  it('decodes Address and Authorization resources, ACKs each nonce, and applies removed_resources', async () => {
    const fake = await startFakeIstiod();
    fake.onInitial = (call, req) => {
      if (req.typeUrl === TypeUrl.ADDRESS) {
        call.write({
          typeUrl: req.typeUrl,
          nonce: 'a1',
          resources: [podAddress('a', [10, 244, 0, 5]), podAddress('b', [10, 244, 1, 6])],
        });
        call.write({ typeUrl: req.typeUrl, nonce: 'a2', removedResources: ['Kubernetes//Pod/demo/b'] });
      } else {
        call.write({ typeUrl: req.typeUrl, nonce: 'z1', resources: [denyPolicy] });
      }
    };
    const c = client(fake).start();
    await c.waitFor(
      'b removed and policy present',
      x =>
        x.responses.length === 3 &&
        !x.addresses.has('Kubernetes//Pod/demo/b') &&
        x.authorizations.has('demo/deny-all'),
    );
    expect([...c.addresses.keys()]).toEqual(['Kubernetes//Pod/demo/a']);
    expect(c.addresses.get('Kubernetes//Pod/demo/a')?.workload?.name).toBe('a');
    expect(c.authorizations.get('demo/deny-all')?.action).toBe(security.Action.DENY);
    // Server-side conditions are polled: the client re-evaluates its own waits only on responses.
    await waitFor(
      '3 ACKs at the server',
      () => fake.requests.filter(r => r.responseNonce !== '').length === 3 || undefined,
      { timeoutMs: 10_000, intervalMs: 20 },
    );
    const acks = fake.requests.filter(r => r.responseNonce !== '');
    expect(acks.map(a => a.responseNonce).sort()).toEqual(['a1', 'a2', 'z1']);
    for (const ack of acks) {
      expect(ack.errorDetail).toBeNull();
      expect(ack.node).toBeNull();
    }
    expect(c.responses.find(r => r.nonce === 'a2')?.removedResources).toEqual(['Kubernetes//Pod/demo/b']);
  });

  it('serves addresses, authorizations and entries() as live read-only views, with single-resource lookups', async () => {
    const fake = await startFakeIstiod();
    const pending: Call[] = [];
    fake.onInitial = (call, req) => {
      if (req.typeUrl === TypeUrl.ADDRESS) {
        call.write({ typeUrl: req.typeUrl, nonce: 'a1', resources: [podAddress('a', [10, 244, 0, 5])] });
        pending.push(call);
      } else {
        call.write({ typeUrl: req.typeUrl, nonce: 'z1', resources: [denyPolicy] });
      }
    };
    const c = client(fake);
    const addresses = c.addresses;
    const entries = c.entries(TypeUrl.ADDRESS);
    expect(addresses.size).toBe(0);
    expect(c.count(TypeUrl.ADDRESS)).toBe(0);
    c.start();
    await c.waitFor(
      'a and the policy',
      x => x.address('Kubernetes//Pod/demo/a') && x.authorization('demo/deny-all'),
    );
    // The same view object every time, following the responses without being asked again.
    expect(c.addresses).toBe(addresses);
    expect(addresses.size).toBe(1);
    const snapshot = new Map(c.addresses);
    const a = c.address('Kubernetes//Pod/demo/a');
    expect(a?.workload?.name).toBe('a');
    // No copy: the view, the lookup and the entry hand out the decoded object itself.
    expect(addresses.get('Kubernetes//Pod/demo/a')).toBe(a);
    expect(c.entry(TypeUrl.ADDRESS, 'Kubernetes//Pod/demo/a')?.value).toBe(a);
    expect(entries.get('Kubernetes//Pod/demo/a')?.version).toBe('v-a');
    expect(c.authorization('demo/deny-all')?.action).toBe(security.Action.DENY);
    expect(c.authorizations.has('demo/deny-all')).toBe(true);
    expect(c.address('Kubernetes//Pod/demo/zz')).toBeUndefined();
    expect(c.entry('type.googleapis.com/unknown', 'x')).toBeUndefined();

    pending[0]!.write({
      typeUrl: TypeUrl.ADDRESS,
      nonce: 'a2',
      resources: [podAddress('b', [10, 244, 0, 6])],
      removedResources: ['Kubernetes//Pod/demo/a'],
    });
    await c.waitFor(
      'b replaces a',
      x => x.count(TypeUrl.ADDRESS) === 1 && x.address('Kubernetes//Pod/demo/b'),
    );
    expect([...addresses.keys()]).toEqual(['Kubernetes//Pod/demo/b']);
    expect([...addresses.values()].map(v => v.workload?.name)).toEqual(['b']);
    expect([...addresses].map(([name]) => name)).toEqual(['Kubernetes//Pod/demo/b']);
    expect([...entries.values()].map(e => e.version)).toEqual(['v-b']);
    const seen: string[] = [];
    addresses.forEach((v, name, map) => {
      expect(map).toBe(addresses);
      seen.push(`${name}=${v.workload?.name ?? ''}`);
    });
    expect(seen).toEqual(['Kubernetes//Pod/demo/b=b']);
    expect(addresses.has('Kubernetes//Pod/demo/a')).toBe(false);
    // A copy taken earlier keeps its state.
    expect([...snapshot.keys()]).toEqual(['Kubernetes//Pod/demo/a']);
  });

  it('NACKs a response with an undecodable resource, naming it, and keeps the resources that decoded', async () => {
    const fake = await startFakeIstiod();
    fake.onInitial = (call, req) => {
      if (req.typeUrl !== TypeUrl.ADDRESS) return;
      call.write({
        typeUrl: req.typeUrl,
        nonce: 'bad',
        resources: [
          podAddress('a', [10, 244, 0, 5]),
          {
            name: 'garbage',
            version: '1',
            resource: { type_url: TypeUrl.ADDRESS, value: Uint8Array.from([0x0a, 0xff]) },
          },
        ],
      });
    };
    const c = client(fake).start();
    const nack = await waitFor(
      'the NACK at the server',
      () => fake.requests.find(r => r.responseNonce === 'bad'),
      { timeoutMs: 10_000, intervalMs: 20 },
    );
    expect(nack.errorDetail?.message).toMatch(/^garbage: /);
    expect(c.decodeErrors).toHaveLength(1);
    expect([...c.addresses.keys()]).toEqual(['Kubernetes//Pod/demo/a']);
    expect(c.responses[0]?.nack).toMatch(/garbage/);
  });

  it('resumes from an earlier client: announces initial_resource_versions ("" like ztunnel, or the recorded versions) and starts from its snapshot', async () => {
    const fake = await startFakeIstiod();
    fake.onInitial = (call, req) => {
      if (req.typeUrl === TypeUrl.ADDRESS && Object.keys(req.initialResourceVersions).length === 0) {
        call.write({
          typeUrl: req.typeUrl,
          nonce: 'full',
          resources: [podAddress('a', [10, 244, 0, 5]), podAddress('b', [10, 244, 0, 6])],
        });
      } else if (req.typeUrl === TypeUrl.ADDRESS) {
        call.write({
          typeUrl: req.typeUrl,
          nonce: 'diff',
          resources: [podAddress('c', [10, 244, 0, 7])],
          removedResources: ['Kubernetes//Pod/demo/a'],
        });
      } else {
        call.write({ typeUrl: req.typeUrl, nonce: `p-${fake.calls.length}`, resources: [] });
      }
    };
    const first = client(fake).start();
    await first.waitFor('a and b', x => x.addresses.size === 2);
    await first.close();

    const second = client(fake, { resume: first.resumeState() }).start();
    await second.waitFor('the diff', x => x.responses.some(r => r.nonce === 'diff'));
    const resumeRequest = fake.requests.find(
      r => r.typeUrl === TypeUrl.ADDRESS && Object.keys(r.initialResourceVersions).length > 0,
    );
    expect(resumeRequest?.initialResourceVersions).toEqual({
      'Kubernetes//Pod/demo/a': '',
      'Kubernetes//Pod/demo/b': '',
    });
    expect([...second.addresses.keys()].sort()).toEqual(['Kubernetes//Pod/demo/b', 'Kubernetes//Pod/demo/c']);
    await second.close();

    const third = client(fake, { resume: first.resumeState(), resumeVersions: 'recorded' }).start();
    await third.waitFor('the diff', x => x.responses.some(r => r.nonce === 'diff'));
    const recorded = fake.requests.filter(
      r => r.typeUrl === TypeUrl.ADDRESS && Object.keys(r.initialResourceVersions).length > 0,
    );
    expect(recorded.at(-1)?.initialResourceVersions).toEqual({
      'Kubernetes//Pod/demo/a': 'v-a',
      'Kubernetes//Pod/demo/b': 'v-b',
    });
  });

  it('rejects waitFor with XDS_CLIENT_STREAM_FAILED when istiod refuses the stream', async () => {
    const fake = await startFakeIstiod();
    fake.onInitial = call => {
      call.emit('error', { code: grpc.status.UNAUTHENTICATED, details: 'authentication failure' });
    };
    const c = client(fake).start();
    const err = await c.waitForSync(10_000).catch((e: unknown) => e);
    expect(isMeshError(err, 'XDS_CLIENT_STREAM_FAILED')).toBe(true);
    expect((err as Error).message).toMatch(/16 authentication failure/);
  });

  it('rejects waitFor with XDS_CLIENT_TIMEOUT at the deadline, saying what it waited for', async () => {
    const fake = await startFakeIstiod();
    const c = client(fake).start();
    const err = await c
      .waitFor('something that never comes', () => false, { timeoutMs: 300 })
      .catch((e: unknown) => e);
    expect(isMeshError(err, 'XDS_CLIENT_TIMEOUT')).toBe(true);
    expect((err as Error).message).toMatch(/something that never comes/);
  });

  it('fails the stream when the server certificate does not match the server name', async () => {
    const fake = await startFakeIstiod();
    const c = client(fake, { serverName: 'other.example' }).start();
    const err = await c.waitForSync(10_000).catch((e: unknown) => e);
    expect(isMeshError(err, 'XDS_CLIENT_STREAM_FAILED')).toBe(true);
  });
});
