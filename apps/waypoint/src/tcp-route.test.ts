/**
 * TCPRoute on the waypoint, on loopback: a TCP chain whose `tcp_proxy` has `weighted_clusters`
 * (what istiod writes for a TCPRoute with several backendRefs). Clients open real HBONE tunnels
 * to the waypoint; each connection picks one cluster by weight and is relayed over HBONE to a
 * plain TCP echo server behind an HBONE backend (as ztunnel's inbound is in front of a pod).
 */
import { createServer as createTcpServer } from 'node:net';
import type { AddressInfo, Server as TcpServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TypeUrl } from '@ambient-mesh/mesh-api';
import { captureLogs } from '@ambient-mesh/runtime/testing';
import { build } from './app.ts';
import type { Bound } from './app.ts';
import { convertListener } from './config/convert-listener.ts';
import type { TcpChain } from './config/types.ts';
import { pickTcpCluster } from './proxy/route.ts';
import { any, assignment, edsCluster } from './testing/fixtures.ts';
import { testConfig } from './testing/harness.ts';
import { HboneTcpBackend, MeshClient, TestXdsServer, createTestPki, waitFor } from './testing/loopback.ts';
import type { TestPki } from './testing/loopback.ts';
import { EnvoyType } from './xds/envoy-protos.ts';
import type { ProtoObject } from './xds/envoy-protos.ts';

const VIP = '10.96.7.7';
const CHAIN = 'inbound-vip|9000|tcp|echo.default.svc.cluster.local';
const REFUSED = 'inbound-vip|9001|tcp|echo.default.svc.cluster.local';
const V1 = 'inbound-vip|9000|tcp|echo-v1.default.svc.cluster.local';
const V2 = 'inbound-vip|9000|tcp|echo-v2.default.svc.cluster.local';
const BALANCED = 'inbound-vip|9002|tcp|echo.default.svc.cluster.local';
const BOTH = 'inbound-vip|9002|tcp|echo-all.default.svc.cluster.local';
const CONNECTIONS = 200;

function tcpChain(name: string, port: number, proxy: ProtoObject): ProtoObject {
  return {
    name,
    filter_chain_match: {
      destination_port: { value: port },
      prefix_ranges: [{ address_prefix: VIP, prefix_len: { value: 32 } }],
    },
    filters: [
      {
        name: 'envoy.filters.network.tcp_proxy',
        typed_config: any(EnvoyType.tcpProxy, { stat_prefix: name, ...proxy }),
      },
    ],
  };
}

const weighted = (clusters: readonly [string, number][]): ProtoObject => ({
  weighted_clusters: { clusters: clusters.map(([name, weight]) => ({ name, weight })) },
});

/** A plain TCP server that answers `<version>:<first chunk>` and closes. */
async function echoServer(version: string): Promise<TcpServer> {
  const server = createTcpServer(conn => {
    conn.once('data', (chunk: Buffer) => {
      conn.end(`${version}:${chunk.toString('latin1')}`);
    });
    conn.on('error', () => undefined);
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  return server;
}

describe('tcp_proxy weighted_clusters (conversion, pure)', () => {
  const listener = (proxy: ProtoObject) =>
    convertListener('main_internal', '1', {
      name: 'main_internal',
      filter_chains: [tcpChain(CHAIN, 9000, proxy)],
    });

  it('converts weighted_clusters into a TCP chain with each cluster’s weight', () => {
    const c = listener(
      weighted([
        [V1, 80],
        [V2, 20],
      ]),
    );
    expect(c.ok).toBe(true);
    if (!c.ok) return;
    const action = c.value.chains[0]!.action as TcpChain;
    expect(action.kind).toBe('tcp');
    expect(action.weightedClusters).toEqual([
      { name: V1, weight: 80 },
      { name: V2, weight: 20 },
    ]);
  });

  it('rejects (NACKs) a weight below 1, an empty list, and cluster together with weighted_clusters', () => {
    for (const proxy of [weighted([[V1, 0]]), weighted([]), { cluster: V1, ...weighted([[V2, 1]]) }]) {
      const c = listener(proxy);
      expect(c.ok).toBe(false);
    }
  });

  it('picks a cluster by weight from a uniform number, or the single cluster', () => {
    const action: TcpChain = {
      kind: 'tcp',
      statPrefix: CHAIN,
      cluster: V1,
      weightedClusters: [
        { name: V1, weight: 3 },
        { name: V2, weight: 1 },
      ],
    };
    expect(pickTcpCluster(action, 0)).toBe(V1);
    expect(pickTcpCluster(action, 0.74)).toBe(V1);
    expect(pickTcpCluster(action, 0.75)).toBe(V2);
    expect(pickTcpCluster(action, 0.999)).toBe(V2);
    expect(pickTcpCluster({ kind: 'tcp', statPrefix: CHAIN, cluster: V2 }, 0.1)).toBe(V2);
  });
});

describe('waypoint TCPRoute: weighted split of opaque TCP over HBONE', () => {
  let pki: TestPki;
  let xds: TestXdsServer;
  let servers: TcpServer[];
  let backends: HboneTcpBackend[];
  let waypoint: Bound;
  let client: MeshClient;
  let refusedClient: MeshClient;
  let balancedClient: MeshClient;
  const captured = captureLogs();

  beforeAll(async () => {
    pki = await createTestPki();
    xds = new TestXdsServer();
    await xds.start();
    servers = [await echoServer('v1'), await echoServer('v2')];
    backends = [];
    for (const [i, version] of ['v1', 'v2'].entries()) {
      const b = new HboneTcpBackend(
        await pki.identity('default', `echo-${version}`),
        (servers[i]!.address() as AddressInfo).port,
      );
      await b.start();
      backends.push(b);
    }
    for (const [i, cluster] of [V1, V2].entries()) {
      xds.set(TypeUrl.cluster, cluster, edsCluster(cluster));
      xds.set(
        TypeUrl.clusterLoadAssignment,
        cluster,
        assignment(cluster, [
          {
            address: `10.244.7.${i + 1}`,
            port: 9000,
            hbone: `127.0.0.1:${backends[i]!.port}`,
            identity: backends[i]!.identity.id,
            workload: `echo-v${i + 1};default;echo;v${i + 1};Kubernetes`,
          },
        ]),
      );
    }
    // One cluster with both backends as endpoints (a Service with two pods, no TCPRoute).
    xds.set(TypeUrl.cluster, BOTH, edsCluster(BOTH));
    xds.set(
      TypeUrl.clusterLoadAssignment,
      BOTH,
      assignment(
        BOTH,
        backends.map((b, i) => ({
          address: `10.244.8.${i + 1}`,
          port: 9000,
          hbone: `127.0.0.1:${b.port}`,
          identity: b.identity.id,
          workload: `echo-v${i + 1};default;echo;v${i + 1};Kubernetes`,
        })),
      ),
    );
    xds.set(TypeUrl.listener, 'main_internal', {
      name: 'main_internal',
      filter_chains: [
        tcpChain(
          CHAIN,
          9000,
          weighted([
            [V1, 80],
            [V2, 20],
          ]),
        ),
        // A TCPRoute whose only backendRef did not resolve: istiod names a cluster that never exists.
        tcpChain(REFUSED, 9001, { cluster: 'BackendNotFound' }),
        tcpChain(BALANCED, 9002, { cluster: BOTH }),
      ],
    });
    const waypointIdentity = await pki.identity('default', 'waypoint');
    waypoint = await build(testConfig(), {
      xdsConnect: xds.connect(),
      identity: waypointIdentity,
      processMetrics: false,
      logs: captured.logs,
    });
    await waitFor('xDS sync', () => waypoint.readiness.ready);
    const options = {
      identity: await pki.identity('default', 'client'),
      waypoint: `127.0.0.1:${waypoint.hboneAddress.port}`,
      waypointIdentity: waypointIdentity.id,
      target: `${VIP}:9000`,
    };
    client = new MeshClient(options);
    refusedClient = new MeshClient({ ...options, target: `${VIP}:9001` });
    balancedClient = new MeshClient({ ...options, target: `${VIP}:9002` });
  }, 60_000);

  afterAll(async () => {
    await client.close();
    await refusedClient.close();
    await balancedClient.close();
    await waypoint.shutdown();
    for (const b of backends) await b.close();
    for (const s of servers)
      await new Promise<void>(resolve =>
        s.close(() => {
          resolve();
        }),
      );
    xds.close();
  });

  it('accepts the weighted TCP chain (ACK) and shows its clusters in /config_dump', async () => {
    expect(xds.syncState(TypeUrl.listener)).not.toBe('nacked');
    const dump = (await (
      await fetch(`http://127.0.0.1:${waypoint.adminAddress.port}/config_dump`)
    ).json()) as {
      listeners: { name: string; filterChains: { name: string; weightedClusters?: unknown }[] }[];
    };
    const main = dump.listeners.find(l => l.name === 'main_internal');
    expect(main?.filterChains.find(c => c.name === CHAIN)?.weightedClusters).toEqual([
      { name: V1, weight: 80 },
      { name: V2, weight: 20 },
    ]);
  });

  it(`splits ${CONNECTIONS} connections about 80/20 between the two backends, each relayed over HBONE`, async () => {
    const counts = new Map<string, number>();
    const before = backends.map(b => b.tunnels);
    for (let batch = 0; batch < CONNECTIONS / 20; batch++) {
      const replies = await Promise.all(
        Array.from({ length: 20 }, (_, i) => client.raw(`hello-${batch}-${i}`)),
      );
      for (const [i, reply] of replies.entries()) {
        const [version, payload] = reply.split(':');
        expect(payload).toBe(`hello-${batch}-${i}`);
        counts.set(version!, (counts.get(version!) ?? 0) + 1);
      }
    }
    const v1 = counts.get('v1') ?? 0;
    const v2 = counts.get('v2') ?? 0;
    expect(v1 + v2).toBe(CONNECTIONS);
    // Expected 160/40 (binomial sd ≈ 5.7): generous bounds, never flaky.
    expect(v1).toBeGreaterThanOrEqual(120);
    expect(v1).toBeLessThanOrEqual(190);
    expect(v2).toBeGreaterThanOrEqual(10);
    // Every connection reached its backend through its HBONE server.
    expect(backends.map((b, i) => b.tunnels - before[i]!)).toEqual([v1, v2]);
  }, 120_000);

  it('spreads the connections of a single-cluster TCP chain over its endpoints (round robin)', async () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 20; i++) {
      const [version] = (await balancedClient.raw(`rr-${i}`)).split(':');
      counts.set(version!, (counts.get(version!) ?? 0) + 1);
    }
    expect(counts.get('v1')).toBe(10);
    expect(counts.get('v2')).toBe(10);
  }, 60_000);

  it('refuses a connection whose cluster does not exist (a TCPRoute backend that did not resolve)', async () => {
    await expect(refusedClient.raw('x')).rejects.toThrow();
  });
});
