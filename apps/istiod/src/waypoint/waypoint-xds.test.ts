// Direct tier: istiod's xDS server on loopback (TLS, token auth) serving waypoint proxies their
// Envoy resources from the waypoint index, next to a ztunnel on the same port.
import { afterEach, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { createRegistry, silentLogger } from '@ambient-mesh/runtime';
import { createTestCa } from '@ambient-mesh/spiffe-certs/testing';
import { RawSotwStream } from '@ambient-mesh/xds/testing';
import { codecFor, type discovery } from '@ambient-mesh/xds-types';
import type { TokenReviewer } from '../auth/token-review.ts';
import { servingDnsNames } from '../ca/ca-material.ts';
import { createMetrics } from '../metrics.ts';
import { DeltaTestClient, ztunnelNode } from '../testing/delta-client.ts';
import {
  makeBackendPod,
  makeBoundService,
  makeHttpRoute,
  makeWaypointGateway,
  waypointNode,
} from '../testing/waypoint-fixtures.ts';
import { waypointIndexes } from '../testing/waypoint-indexes.ts';
import { TypeUrls } from '../wds/wds-index.ts';
import { XdsServer } from '../xds/delta-server.ts';
import { startGrpcServer } from '../xds/grpc-server.ts';
import { EnvoyType, EnvoyTypeUrls, decodeEnvoy } from './envoy-protos.ts';
import { WaypointPushQueue } from './serving.ts';
import { WaypointKinds as K } from './waypoint-index.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Tokens are "<namespace>:<serviceaccount>". */
const reviewer: TokenReviewer = token => {
  const [ns, sa] = token.split(':');
  return Promise.resolve(
    ns !== undefined && sa !== undefined
      ? { authenticated: true, username: `system:serviceaccount:${ns}:${sa}` }
      : { authenticated: false, error: 'invalid token' },
  );
};

const RC = EnvoyTypeUrls.routeConfiguration;
const reviews = 'inbound-vip|80|http|reviews.ns1.svc.cluster.local';
const details = 'inbound-vip|80|http|details.ns2.svc.cluster.local';

async function harness() {
  const ca = await createTestCa();
  const signed = await ca.signServingCertificate({
    dnsNames: servingDnsNames('istio-system', 'cluster.local', []),
    ttlSeconds: 3600,
  });
  const indexes = waypointIndexes();
  const { wds, waypoints } = indexes;
  indexes.upsert(K.GATEWAY, makeWaypointGateway('wp1', 'ns1'));
  indexes.upsert(K.GATEWAY, makeWaypointGateway('wp2', 'ns2'));
  indexes.upsert(K.SERVICE, makeBoundService('reviews', 'ns1', 'wp1', '10.96.0.10'));
  indexes.upsert(K.SERVICE, makeBoundService('details', 'ns2', 'wp2', '10.96.0.12'));
  indexes.upsert(K.POD, makeBackendPod('reviews', 'ns1', '10.244.0.5'));
  const server = new XdsServer({
    source: wds,
    waypoints,
    reviewer,
    audiences: ['istio-ca'],
    requireAuth: true,
    enableAmbient: true,
    metrics: createMetrics({ registry: createRegistry() }),
    logger: silentLogger(),
  });
  const pushes: number[] = [];
  const queue = new WaypointPushQueue({
    debounceAfterMs: 5,
    debounceMaxMs: 50,
    flush: batch => {
      pushes.push(server.pushWaypoints(batch));
    },
  });
  const off = waypoints.onChange(c => {
    queue.enqueue(c);
  });
  const grpcServer = await startGrpcServer({
    address: { host: '127.0.0.1', port: 0 },
    credentials: { certPem: signed.certChainPem, keyPem: signed.keyPem },
    register: s => {
      server.register(s);
    },
  });
  cleanups.push(async () => {
    off();
    queue.close();
    server.closeAll();
    await grpcServer.close(200);
  });
  const address = `127.0.0.1:${grpcServer.port}`;
  const client = (token: string): DeltaTestClient => {
    const c = new DeltaTestClient({ address, rootCertPem: signed.rootBundlePem, token });
    cleanups.push(() => {
      c.close();
    });
    return c;
  };
  const sotw = (token: string): RawSotwStream => {
    const metadata = new grpc.Metadata();
    metadata.set('authorization', `Bearer ${token}`);
    const c = new RawSotwStream({
      address,
      credentials: grpc.credentials.createSsl(Buffer.from(signed.rootBundlePem)),
      channelOptions: {
        'grpc.ssl_target_name_override': 'istiod.istio-system.svc',
        'grpc.default_authority': 'istiod.istio-system.svc',
      },
      metadata,
    });
    cleanups.push(() => {
      c.close();
    });
    return c;
  };
  return { waypoints, server, pushes, client, sotw };
}

function routeNames(resp: discovery.DeltaDiscoveryResponse, name: string): string[] {
  const r = resp.resources.find(x => x.name === name);
  if (r?.resource === null || r?.resource === undefined) throw new Error(`no ${name} in the response`);
  const cfg = decodeEnvoy(EnvoyType.routeConfiguration, r.resource.value) as {
    virtualHosts: { routes: { name: string }[] }[];
  };
  return cfg.virtualHosts[0]!.routes.map(x => x.name);
}

async function waitFor(what: string, check: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !check(); i++) await new Promise(r => setTimeout(r, 5));
  if (!check()) throw new Error(`timed out waiting for ${what}`);
}

describe('waypoint xDS over ADS', () => {
  it('serves a waypoint~ proxy its RouteConfiguration and Clusters, and pushes only when its own routes change', async () => {
    const h = await harness();
    const wp1 = h.client('ns1:wp1');
    wp1.send({ node: waypointNode('wp1', 'ns1'), typeUrl: EnvoyTypeUrls.cluster });
    wp1.send({ typeUrl: RC, resourceNamesSubscribe: [reviews] });
    const clusters = await wp1.next();
    expect(clusters.typeUrl).toBe(EnvoyTypeUrls.cluster);
    expect(clusters.resources.map(r => r.name).sort()).toEqual([reviews, 'main_internal']);
    wp1.ack(clusters);
    const first = await wp1.next();
    expect(first.typeUrl).toBe(RC);
    expect(routeNames(first, reviews)).toEqual(['default']);
    wp1.ack(first);

    const wp2 = h.client('ns2:wp2');
    wp2.send({
      node: waypointNode('wp2', 'ns2', '10.9.0.2'),
      typeUrl: RC,
      resourceNamesSubscribe: [details],
    });
    const wp2First = await wp2.next();
    expect(routeNames(wp2First, details)).toEqual(['default']);
    wp2.ack(wp2First);

    // A route on wp2's Service: only wp2 is pushed.
    h.waypoints.upsert(
      K.HTTP_ROUTE,
      makeHttpRoute('d', 'ns2', {
        service: 'details',
        rules: [{ backendRefs: [{ name: 'details', port: 80 }] }],
      }),
    );
    const wp2Update = await wp2.next();
    expect(routeNames(wp2Update, details)).toEqual(['ns2.d.0']);
    wp2.ack(wp2Update);
    await waitFor('the push', () => h.pushes.length === 1);
    expect(h.pushes).toEqual([1]);
    expect(wp1.buffered).toBe(0);

    // A route on wp1's Service: wp1 gets the new RouteConfiguration.
    h.waypoints.upsert(
      K.HTTP_ROUTE,
      makeHttpRoute('r', 'ns1', {
        service: 'reviews',
        rules: [
          {
            matches: [{ path: { type: 'PathPrefix', value: '/v2' } }],
            backendRefs: [{ name: 'reviews', port: 80 }],
            timeouts: { request: '3s' },
          },
        ],
      }),
    );
    const update = await wp1.next();
    expect(update.typeUrl).toBe(RC);
    expect(routeNames(update, reviews)).toEqual(['ns1.r.0']);
    await waitFor('the second push', () => h.pushes.length === 2);
    expect(h.pushes).toEqual([1, 1]);
  });

  it('serves state-of-the-world clients too', async () => {
    const h = await harness();
    const c = h.sotw('ns1:wp1');
    c.send({ node: waypointNode('wp1', 'ns1'), typeUrl: EnvoyTypeUrls.listener });
    const resp = await c.next();
    expect(resp.typeUrl).toBe(EnvoyTypeUrls.listener);
    const names = resp.resources
      .map(r => codecFor('envoy.service.discovery.v3.Resource').decode(r.value).name)
      .sort();
    expect(names).toEqual(['connect_terminate', 'main_internal']);
  });

  it('refuses a waypoint whose token is for another namespace, and gives ztunnel no Envoy resources', async () => {
    const h = await harness();
    const bad = h.client('ns2:wp1');
    bad.send({ node: waypointNode('wp1', 'ns1'), typeUrl: RC });
    expect((await bad.failure()).code).toBe(grpc.status.UNAUTHENTICATED);
    const z = h.client('istio-system:ztunnel');
    z.send({ node: ztunnelNode(), typeUrl: RC, resourceNamesSubscribe: [reviews] });
    z.send({ typeUrl: TypeUrls.ADDRESS });
    const resp = await z.next();
    expect(resp.typeUrl).toBe(RC);
    expect(resp.resources).toEqual([]);
  });
});
