/**
 * The waypoint's TCP metrics (`istio_tcp_*`, `reporter="waypoint"`) on loopback: real HBONE
 * tunnels from a client (with the `baggage` ztunnel sends) through a TCP filter chain to a TCP
 * server behind an HBONE backend. Counts and bytes are exact for a known payload; the labels
 * come from the peer (identity, baggage) and the chosen endpoint; a failed upstream connect
 * counts opened and closed with `UF`; the chain's `istio.stats` network filter (Telemetry
 * overrides) changes the TCP metrics' tags or drops them.
 */
import { createServer as createTcpServer } from 'node:net';
import type { AddressInfo, Server as TcpServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHboneClient } from '@ambient-mesh/hbone';
import type { HboneClient } from '@ambient-mesh/hbone';
import { TRAFFIC_LABELS, TypeUrl } from '@ambient-mesh/mesh-api';
import { captureLogs } from '@ambient-mesh/runtime/testing';
import { build } from './app.ts';
import type { Bound } from './app.ts';
import { convertListener } from './config/convert-listener.ts';
import type { TcpChain } from './config/types.ts';
import { any, assignment, edsCluster, statsFilter } from './testing/fixtures.ts';
import { testConfig } from './testing/harness.ts';
import { HboneTcpBackend, TestXdsServer, createTestPki, scrapeStats, waitFor } from './testing/loopback.ts';
import type { TestPki } from './testing/loopback.ts';
import { EnvoyType } from './xds/envoy-protos.ts';
import type { ProtoObject } from './xds/envoy-protos.ts';

const VIP = '10.96.9.9';
const HOST = 'echo.default.svc.cluster.local';
const CLUSTER = `inbound-vip|9000|tcp|${HOST}`;
const DEAD = `inbound-vip|9001|tcp|dead.default.svc.cluster.local`;
const OVERRIDDEN = `inbound-vip|9002|tcp|tagged.default.svc.cluster.local`;
const BAGGAGE =
  'k8s.cluster.name=Kubernetes,k8s.namespace.name=default,k8s.deployment.name=sleep,service.name=sleep,service.version=v1';
const PAYLOAD = Buffer.alloc(100_000, 'x');
const CONNECTIONS = 3;

function tcpChain(name: string, port: number, stats?: ProtoObject): ProtoObject {
  return {
    name,
    filter_chain_match: {
      destination_port: { value: port },
      prefix_ranges: [{ address_prefix: VIP, prefix_len: { value: 32 } }],
    },
    filters: [
      ...(stats === undefined ? [] : [stats]),
      {
        name: 'envoy.filters.network.tcp_proxy',
        typed_config: any(EnvoyType.tcpProxy, { stat_prefix: name, cluster: name }),
      },
    ],
  };
}

/** A TCP server that writes every chunk it reads back twice, and ends when the client does. */
async function doublingServer(): Promise<TcpServer> {
  const server = createTcpServer({ allowHalfOpen: true }, conn => {
    conn.on('data', (chunk: Buffer) => {
      conn.write(chunk);
      conn.write(chunk);
    });
    conn.on('end', () => conn.end());
    conn.on('error', () => undefined);
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  return server;
}

/** The value of the one series of `metric` whose line contains every fragment (undefined: none). */
function value(text: string, metric: string, ...fragments: readonly string[]): number | undefined {
  const line = text.split('\n').find(l => l.startsWith(`${metric}{`) && fragments.every(f => l.includes(f)));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** The label names of a series line, in order. */
function labelNames(line: string): string[] {
  return [...line.slice(line.indexOf('{') + 1, line.lastIndexOf('}')).matchAll(/([a-z_]+)="/g)].map(
    m => m[1]!,
  );
}

describe('istio.stats network filter before tcp_proxy (conversion, pure)', () => {
  it('keeps the overrides on the TCP chain, and rejects (NACKs) another filter before tcp_proxy', () => {
    const ok = convertListener('main_internal', '1', {
      name: 'main_internal',
      filter_chains: [tcpChain(CLUSTER, 9000, statsFilter([{ name: 'tcp_sent_bytes_total', drop: true }]))],
    });
    expect(ok.ok).toBe(true);
    if (!ok.ok) return;
    const action = ok.value.chains[0]!.action as TcpChain;
    expect(action.stats?.metrics.get('tcp_sent_bytes_total')?.drop).toBe(true);
    const bad = convertListener('main_internal', '1', {
      name: 'main_internal',
      filter_chains: [
        tcpChain(CLUSTER, 9000, {
          name: 'envoy.filters.network.rbac',
          typed_config: any(EnvoyType.httpRbac, {}),
        }),
      ],
    });
    expect(bad.ok).toBe(false);
  });
});

describe('waypoint TCP metrics over HBONE', () => {
  let pki: TestPki;
  let xds: TestXdsServer;
  let server: TcpServer;
  let backend: HboneTcpBackend;
  let waypoint: Bound;
  let hbone: HboneClient;
  let connect: (port: number, payload: Buffer) => Promise<Buffer>;
  let clientId: string;
  let open: (port: number) => ReturnType<HboneClient['connect']>;
  const captured = captureLogs();

  beforeAll(async () => {
    pki = await createTestPki();
    xds = new TestXdsServer();
    await xds.start();
    server = await doublingServer();
    backend = new HboneTcpBackend(
      await pki.identity('default', 'echo'),
      (server.address() as AddressInfo).port,
    );
    await backend.start();
    // A port nothing listens on: the endpoint of DEAD refuses the upstream connection.
    const closed = createTcpServer();
    await new Promise<void>(resolve => closed.listen(0, '127.0.0.1', resolve));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise<void>(resolve =>
      closed.close(() => {
        resolve();
      }),
    );
    for (const [cluster, hbonePort] of [
      [CLUSTER, backend.port],
      [OVERRIDDEN, backend.port],
      [DEAD, deadPort],
    ] as const) {
      xds.set(TypeUrl.cluster, cluster, edsCluster(cluster));
      xds.set(
        TypeUrl.clusterLoadAssignment,
        cluster,
        assignment(cluster, [
          {
            address: '10.244.9.1',
            port: 9000,
            hbone: `127.0.0.1:${hbonePort}`,
            identity: backend.identity.id,
            workload: 'echo-v1;default;echo;v1;Kubernetes',
          },
        ]),
      );
    }
    xds.set(TypeUrl.listener, 'main_internal', {
      name: 'main_internal',
      filter_chains: [
        tcpChain(CLUSTER, 9000),
        tcpChain(DEAD, 9001),
        tcpChain(
          OVERRIDDEN,
          9002,
          statsFilter([
            {
              name: 'tcp_connections_opened_total',
              dimensions: { dest_port: 'destination.port' },
              tags_to_remove: ['source_principal'],
            },
            { name: 'tcp_sent_bytes_total', drop: true },
          ]),
        ),
      ],
    });
    const waypointIdentity = await pki.identity('default', 'waypoint');
    waypoint = await build(testConfig(), {
      xdsConnect: xds.connect(),
      identity: waypointIdentity,
      processMetrics: false,
      logs: captured.logs,
    });
    await waitFor('xDS sync', () => waypoint.readiness.ready, 30_000);
    const client = await pki.identity('default', 'sleep');
    clientId = client.id;
    hbone = createHboneClient();
    open = port =>
      hbone.connect({
        target: `${VIP}:${port}`,
        nextHop: `127.0.0.1:${waypoint.hboneAddress.port}`,
        identity: client,
        expectedIdentities: [waypointIdentity.id],
        headers: { baggage: BAGGAGE },
      });
    connect = async (port, payload) => {
      const tunnel = await open(port);
      const chunks: Buffer[] = [];
      tunnel.on('data', (c: Buffer) => chunks.push(c));
      tunnel.end(payload);
      await new Promise<void>((resolve, reject) => {
        tunnel.once('end', resolve);
        tunnel.once('error', reject);
      });
      tunnel.destroy();
      return Buffer.concat(chunks);
    };
  }, 60_000);

  afterAll(async () => {
    hbone.destroy();
    await waypoint.shutdown();
    await backend.close();
    await new Promise<void>(resolve =>
      server.close(() => {
        resolve();
      }),
    );
    xds.close();
  });

  it(`counts ${CONNECTIONS} connections and their bytes exactly, with the peer's and the endpoint's labels`, async () => {
    expect(xds.syncState(TypeUrl.listener)).not.toBe('nacked');
    for (let i = 0; i < CONNECTIONS; i++) {
      const reply = await connect(9000, PAYLOAD);
      expect(reply.length).toBe(2 * PAYLOAD.length);
    }
    const mine = `destination_service="${HOST}"`;
    let text = '';
    await waitFor(
      'the connections counted closed',
      async () => {
        text = await scrapeStats(waypoint);
        return value(text, 'istio_tcp_connections_closed_total', mine) === CONNECTIONS;
      },
      30_000,
    );
    expect(value(text, 'istio_tcp_connections_opened_total', mine)).toBe(CONNECTIONS);
    // received: from the client; sent: to the client (the downstream side, as Envoy counts them).
    expect(value(text, 'istio_tcp_received_bytes_total', mine)).toBe(CONNECTIONS * PAYLOAD.length);
    expect(value(text, 'istio_tcp_sent_bytes_total', mine)).toBe(CONNECTIONS * 2 * PAYLOAD.length);
    const line = text
      .split('\n')
      .find(l => l.startsWith('istio_tcp_connections_opened_total{') && l.includes(mine))!;
    expect(labelNames(line)).toEqual([...TRAFFIC_LABELS]);
    for (const label of [
      'reporter="waypoint"',
      'source_workload="sleep"',
      'source_canonical_service="sleep"',
      'source_canonical_revision="v1"',
      'source_workload_namespace="default"',
      `source_principal="${clientId}"`,
      'source_cluster="Kubernetes"',
      'destination_service_namespace="default"',
      'destination_service_name="echo"',
      'destination_workload="echo-v1"',
      'destination_workload_namespace="default"',
      `destination_principal="${backend.identity.id}"`,
      'destination_canonical_service="echo"',
      'destination_cluster="Kubernetes"',
      'request_protocol="tcp"',
      'response_flags="-"',
      'connection_security_policy="mutual_tls"',
    ])
      expect(line).toContain(label);
  }, 60_000);

  it('counts bytes as they flow, before the connection closes', async () => {
    const tunnel = await open(9000);
    const mine = `destination_service="${HOST}"`;
    const before = value(await scrapeStats(waypoint), 'istio_tcp_received_bytes_total', mine) ?? 0;
    let got = 0;
    tunnel.on('data', (c: Buffer) => (got += c.length));
    tunnel.write(Buffer.alloc(1000, 'y'));
    await waitFor('the reply', () => got === 2000, 30_000);
    const text = await scrapeStats(waypoint);
    expect(value(text, 'istio_tcp_received_bytes_total', mine)).toBe(before + 1000);
    tunnel.end();
    await new Promise<void>(resolve => tunnel.once('end', resolve));
    tunnel.destroy();
  }, 60_000);

  it('counts a failed upstream connect opened and closed with UF', async () => {
    await expect(connect(9001, Buffer.from('x'))).rejects.toThrow();
    const dead = 'destination_service="dead.default.svc.cluster.local"';
    let text = '';
    await waitFor(
      'the failed connection counted',
      async () => {
        text = await scrapeStats(waypoint);
        return value(text, 'istio_tcp_connections_closed_total', dead, 'response_flags="UF"') === 1;
      },
      30_000,
    );
    expect(value(text, 'istio_tcp_connections_opened_total', dead, 'response_flags="UF"')).toBe(1);
    expect(value(text, 'istio_tcp_connections_opened_total', dead, 'response_flags="-"')).toBeUndefined();
  }, 60_000);

  // Last: an override changes the label set of a metric for every chain (its series restart).
  it("applies the chain's istio.stats overrides to the TCP metrics (tags, drop)", async () => {
    const reply = await connect(9002, Buffer.from('hello'));
    expect(reply.toString()).toBe('hellohello');
    const tagged = 'destination_service="tagged.default.svc.cluster.local"';
    let text = '';
    await waitFor(
      'the overridden connection counted',
      async () => {
        text = await scrapeStats(waypoint);
        return value(text, 'istio_tcp_connections_closed_total', tagged) === 1;
      },
      30_000,
    );
    const opened = text
      .split('\n')
      .find(l => l.startsWith('istio_tcp_connections_opened_total{') && l.includes(tagged));
    expect(opened).toContain('dest_port="9002"');
    expect(opened).not.toContain('source_principal=');
    expect(value(text, 'istio_tcp_received_bytes_total', tagged)).toBe(5);
    expect(text).not.toMatch(/^istio_tcp_sent_bytes_total\{/m);
  }, 60_000);
});
