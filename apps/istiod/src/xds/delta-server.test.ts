import { afterEach, describe, expect, it } from 'vitest';
import { connect } from 'node:tls';
import { Metadata, credentials, status } from '@grpc/grpc-js';
import { DebugType } from '@ambient-mesh/mesh-api';
import { RawSotwStream } from '@ambient-mesh/xds/testing';
import {
  AddressCodec,
  AuthorizationCodec,
  ClientConfigCodec,
  codecFor,
  fromStruct,
  status as csds,
  toStruct,
  type discovery,
} from '@ambient-mesh/xds-types';
import { createTestCa } from '@ambient-mesh/spiffe-certs/testing';
import { servingDnsNames } from '../ca/ca-material.ts';
import type { IstiodMetrics } from '../metrics.ts';
import { ztunnelNode } from '../testing/delta-client.ts';
import { goldenFixture, makeAuthorizationPolicy } from '../testing/fixtures.ts';
import { ObjectKinds, TypeUrls } from '../wds/wds-index.ts';
import { buildInfo } from '../build-info.ts';
import type { ConnectionStatus } from './delta-server.ts';
import { startGrpcServer } from './grpc-server.ts';
import { firstResponses, subscribe, xdsHarness } from '../testing/xds-harness.ts';
import type { Harness } from '../testing/xds-harness.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const harness = (): Promise<Harness> => xdsHarness(cleanups);

async function metricValue(m: IstiodMetrics, name: string): Promise<number> {
  const json = await m.registry.getMetricsAsJSON();
  return json.find(x => x.name === name)?.values.reduce((a, v) => a + v.value, 0) ?? 0;
}

describe('delta xDS server', () => {
  it('serves every Address and Authorization to a wildcard subscriber, decodable and named per the spec', async () => {
    const h = await harness();
    const c = h.client();
    subscribe(c);
    const first = await firstResponses(c);
    const addr = first.get(TypeUrls.ADDRESS)!;
    expect(addr.resources.map(r => r.name).sort()).toEqual([...h.index.addresses.keys()].sort());
    const web = addr.resources.find(r => r.name === 'Kubernetes//Pod/golden/web-7d4b9c-abcde')!;
    expect(web.resource?.type_url).toBe(TypeUrls.ADDRESS);
    const decoded = AddressCodec.decode(web.resource!.value);
    expect(decoded.workload?.services['golden/web.golden.svc.cluster.local']?.ports).toEqual([
      { servicePort: 80, targetPort: 8080 },
    ]);
    const auth = first.get(TypeUrls.AUTHORIZATION)!;
    expect(auth.resources.map(r => r.name).sort()).toEqual([
      'golden/allow-web',
      'golden/deny-db-port',
      'golden/ns-allow',
      'istio-system/istio_converted_static_strict',
    ]);
    expect(AuthorizationCodec.decode(auth.resources[0]!.resource!.value).namespace).not.toBe('');
    // The debug view records the ACKs.
    for (let i = 0; i < 50 && h.server.syncz()[0]?.types.some(t => t.lastNonceAcked === '') !== false; i++) {
      await new Promise(r => setImmediate(r));
    }
    const sync = h.server.syncz();
    expect(sync).toHaveLength(1);
    expect(sync[0]!.types.every(t => t.lastNonceAcked === t.lastNonceSent)).toBe(true);
    expect(await metricValue(h.metrics, 'pilot_xds')).toBe(1);
  });

  it('pushes removals, relabels and new policies incrementally', async () => {
    const h = await harness();
    const c = h.client();
    subscribe(c);
    await firstResponses(c);
    const f = goldenFixture();
    h.index.delete(ObjectKinds.POD, f.pods[0]!);
    const removal = await c.next();
    expect(removal.typeUrl).toBe(TypeUrls.ADDRESS);
    expect(removal.removedResources).toEqual(['Kubernetes//Pod/golden/web-7d4b9c-abcde']);
    expect(removal.resources).toEqual([]);
    c.ack(removal);

    const api = f.pods[2]!;
    h.index.upsert(ObjectKinds.POD, {
      ...api,
      metadata: { ...api.metadata, labels: { app: 'api', version: 'v7' } },
    });
    const update = await c.next();
    expect(update.resources.map(r => r.name)).toEqual(['Kubernetes//Pod/golden/api-0']);
    expect(AddressCodec.decode(update.resources[0]!.resource!.value).workload?.canonicalRevision).toBe('v7');
    c.ack(update);

    h.index.upsert(
      ObjectKinds.AUTHORIZATION_POLICY,
      makeAuthorizationPolicy('deny-all-api', 'golden', {
        selector: { matchLabels: { app: 'api' } },
        action: 'DENY',
        rules: [{}],
      }),
    );
    const got = new Map<string, discovery.DeltaDiscoveryResponse>();
    for (let i = 0; i < 2; i++) {
      const r = await c.next();
      got.set(r.typeUrl, r);
    }
    expect(got.get(TypeUrls.AUTHORIZATION)!.resources.map(r => r.name)).toEqual(['golden/deny-all-api']);
    expect(got.get(TypeUrls.ADDRESS)!.resources.map(r => r.name)).toEqual(['Kubernetes//Pod/golden/api-0']);
  });

  it('sends a reconnecting client only the difference from its initial_resource_versions', async () => {
    const h = await harness();
    const c1 = h.client();
    subscribe(c1);
    const first = await firstResponses(c1);
    const versions = Object.fromEntries(first.get(TypeUrls.ADDRESS)!.resources.map(r => [r.name, r.version]));
    c1.close();
    const f = goldenFixture();
    h.index.delete(ObjectKinds.POD, f.pods[3]!); // db-0 goes away
    const api = f.pods[2]!;
    h.index.upsert(ObjectKinds.POD, {
      ...api,
      metadata: { ...api.metadata, labels: { app: 'api', version: 'v8' } },
    });
    const c2 = h.client();
    subscribe(c2, { ...versions, 'Kubernetes//Pod/golden/gone': '' });
    const again = (await firstResponses(c2)).get(TypeUrls.ADDRESS)!;
    expect(again.resources.map(r => r.name)).toEqual(['Kubernetes//Pod/golden/api-0']);
    expect(again.removedResources.sort()).toEqual([
      'Kubernetes//Pod/golden/db-0',
      'Kubernetes//Pod/golden/gone',
    ]);
  });

  it('records a NACK and does not resend in a loop', async () => {
    const h = await harness();
    const c = h.client();
    subscribe(c);
    const first = await c.next();
    c.nack(first, 'decode failed');
    const second = await c.next();
    c.ack(second);
    for (let i = 0; i < 100 && (await metricValue(h.metrics, 'pilot_total_xds_rejects')) === 0; i++) {
      await new Promise(r => setImmediate(r));
    }
    expect(await metricValue(h.metrics, 'pilot_total_xds_rejects')).toBe(1);
    const nacked = h.server.syncz()[0]!.types.find(t => t.typeUrl === first.typeUrl)!;
    expect(nacked.nacks).toBe(1);
    expect(nacked.lastNack).toBe('decode failed');
    // A later change is still pushed, and nothing was resent in between.
    expect(c.buffered).toBe(0);
    h.index.delete(ObjectKinds.POD, goldenFixture().pods[4]!);
    const next = await c.next();
    expect(next.removedResources).toEqual(['Kubernetes//Pod/golden/report-28912345-xyz12']);
  });

  it.each([
    ['no token', undefined, ztunnelNode(), status.UNAUTHENTICATED],
    ['a rejected token', 'garbage', ztunnelNode(), status.UNAUTHENTICATED],
    ['a token from another namespace', 'apps:ztunnel', ztunnelNode(), status.UNAUTHENTICATED],
    ['a malformed node id', 'istio-system:ztunnel', { id: 'not-a-node' }, status.INVALID_ARGUMENT],
    [
      'an unknown proxy type',
      'istio-system:ztunnel',
      { id: 'robot~10.0.0.1~a.b~b.svc.cluster.local' },
      status.INVALID_ARGUMENT,
    ],
  ])('rejects a stream with %s', async (_name, token, node, code) => {
    const h = await harness();
    const c = token === undefined ? h.client('') : h.client(token);
    c.send({ node, typeUrl: TypeUrls.ADDRESS });
    const err = await c.failure();
    expect(err.code).toBe(code);
    expect(h.server.connectionCount).toBe(0);
  });
});

async function waitForSync(h: Harness, check: (s: ConnectionStatus) => boolean): Promise<void> {
  for (let i = 0; i < 200 && !h.server.syncz().some(check); i++) await new Promise(r => setTimeout(r, 10));
  expect(h.server.syncz().some(check)).toBe(true);
}

describe('SotW xDS', () => {
  it('serves the same Address resources over StreamAggregatedResources, with the same authentication', async () => {
    const h = await harness();
    const md = new Metadata();
    md.set('authorization', 'Bearer istio-system:ztunnel');
    const c = new RawSotwStream({
      address: `127.0.0.1:${h.port}`,
      credentials: credentials.createSsl(Buffer.from(h.rootPem)),
      channelOptions: { 'grpc.ssl_target_name_override': 'istiod.istio-system.svc' },
      metadata: md,
    });
    cleanups.push(() => {
      c.close();
    });
    c.send({ node: ztunnelNode(), typeUrl: TypeUrls.ADDRESS });
    const r = await c.next();
    const names = r.resources.map(
      any => codecFor('envoy.service.discovery.v3.Resource').decode(any.value).name,
    );
    expect(names.sort()).toEqual([...h.index.addresses.keys()].sort());
    c.ack(r);
    await waitForSync(h, s => s.protocol === 'sotw' && s.types[0]?.lastNonceAcked === r.nonce);
  });
});

describe('istioctl debug requests over SotW ADS', () => {
  /** A stream as istioctl opens it: a `sidecar` node, metadata naming `namespace`, a token for it. */
  function debugStream(h: Harness, namespace: string): RawSotwStream {
    const md = new Metadata();
    md.set('authorization', `Bearer ${namespace}:default`);
    const c = new RawSotwStream({
      address: `127.0.0.1:${h.port}`,
      credentials: credentials.createSsl(Buffer.from(h.rootPem)),
      channelOptions: { 'grpc.ssl_target_name_override': 'istiod.istio-system.svc' },
      metadata: md,
    });
    cleanups.push(() => {
      c.close();
    });
    c.send({
      node: {
        id: 'sidecar~10.0.0.5~test-1.default~default.svc.cluster.local',
        metadata: toStruct({ GENERATOR: 'event', SERVICE_ACCOUNT: 'default', NAMESPACE: namespace }),
      },
      typeUrl: DebugType.syncz,
      responseNonce: 'istioctl-clock',
    });
    return c;
  }

  it('istio.io/debug/syncz lists each connected ztunnel as a ClientConfig, with the control plane id', async () => {
    const h = await harness();
    const z = h.client();
    subscribe(z);
    await firstResponses(z);
    await waitForSync(h, s => s.types.length === 2 && s.types.every(t => t.state === 'synced'));

    const c = debugStream(h, 'istio-system');
    const r = await c.next();
    expect(r.typeUrl).toBe(DebugType.syncz);
    expect(JSON.parse(r.controlPlane?.identifier ?? '{}')).toMatchObject({
      Component: 'istiod',
      ID: 'istiod-0',
      Info: { version: buildInfo.version, status: 'Clean' },
    });
    expect(r.resources.map(a => a.type_url)).toEqual([
      'type.googleapis.com/envoy.service.status.v3.ClientConfig',
    ]);
    const cc = ClientConfigCodec.decode(r.resources[0]!.value);
    expect(cc.node?.id).toBe('ztunnel-abcde.istio-system');
    expect(fromStruct(cc.node?.metadata)).toMatchObject({ NAMESPACE: 'istio-system' });
    expect(cc.genericXdsConfigs.map(g => [g.typeUrl, g.configStatus])).toEqual([
      [TypeUrls.AUTHORIZATION, csds.ConfigStatus.SYNCED],
      [TypeUrls.ADDRESS, csds.ConfigStatus.SYNCED],
    ]);
    expect(cc.genericXdsConfigs.every(g => (g.lastUpdated?.seconds ?? 0) > 0)).toBe(true);
    // istioctl's own stream is not a proxy: it never lists itself, and its ACK gets no answer.
    c.ack(r);
    expect(h.server.syncz()).toHaveLength(2);
    expect(c.buffered).toBe(0);
  });

  it('a caller from another namespace sees only proxies of its namespace', async () => {
    const h = await harness();
    const z = h.client();
    subscribe(z);
    await firstResponses(z);
    const r = await debugStream(h, 'demo').next();
    expect(r.resources).toEqual([]);
    expect(r.controlPlane?.identifier).toContain('"Component":"istiod"');
  });
});

describe('xDS TLS listener', () => {
  it('negotiates TLS 1.3 with ALPN h2 and a certificate for istiod.istio-system.svc', async () => {
    const ca = await createTestCa();
    const signed = await ca.signServingCertificate({
      dnsNames: servingDnsNames('istio-system', 'cluster.local', ['istiod.example.com']),
      ttlSeconds: 3600,
    });
    const serving = { certPem: signed.certChainPem, keyPem: signed.keyPem };
    const srv = await startGrpcServer({
      address: { host: '127.0.0.1', port: 0 },
      credentials: serving,
      register: () => undefined,
    });
    cleanups.push(() => srv.close(100));
    const probe = (servername: string, maxVersion: 'TLSv1.2' | 'TLSv1.3') =>
      new Promise<{ protocol: string | null; alpn: string | false | null }>((resolve, reject) => {
        const s = connect({
          host: '127.0.0.1',
          port: srv.port,
          servername,
          ca: signed.rootBundlePem,
          ALPNProtocols: ['h2'],
          maxVersion,
        });
        s.once('secureConnect', () => {
          resolve({ protocol: s.getProtocol(), alpn: s.alpnProtocol });
          s.destroy();
        });
        s.once('error', (err: Error) => {
          reject(err);
        });
      });
    expect(await probe('istiod.istio-system.svc', 'TLSv1.3')).toEqual({ protocol: 'TLSv1.3', alpn: 'h2' });
    expect((await probe('istiod.example.com', 'TLSv1.3')).protocol).toBe('TLSv1.3');
    await expect(probe('istiod.istio-system.svc', 'TLSv1.2')).rejects.toThrow();
  });
});
