/**
 * The waypoint's WDS subscription (`istio.workload.Address`) and the source labels it gives, on
 * loopback: the test xDS server serves the client workloads as istiod does, the clients send
 * CONNECTs without `baggage`, and `istio_requests_total` and `istio_tcp_*` carry the WDS
 * workload's labels: found by the CONNECT's `forwarded: for=` address, or by the tunnel's source
 * address; a `for=` naming a workload of another identity is not believed. A malformed Address
 * is NACKed with its reason and the last good version of that workload stays in force.
 */
import { createServer as createTcpServer } from 'node:net';
import type { AddressInfo, Server as TcpServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHboneClient } from '@ambient-mesh/hbone';
import type { HboneClient, HboneIdentity } from '@ambient-mesh/hbone';
import { TypeUrl } from '@ambient-mesh/mesh-api';
import { captureLogs } from '@ambient-mesh/runtime/testing';
import type { workload } from '@ambient-mesh/xds-types';
import { build } from './app.ts';
import type { Bound } from './app.ts';
import { any, assignment, edsCluster, httpListener, ms } from './testing/fixtures.ts';
import { testConfig } from './testing/harness.ts';
import {
  HboneBackend,
  HboneTcpBackend,
  MeshClient,
  TestXdsServer,
  createTestPki,
  scrapeStats,
  waitFor,
} from './testing/loopback.ts';
import type { TestPki } from './testing/loopback.ts';
import { EnvoyType } from './xds/envoy-protos.ts';
import type { ProtoObject } from './xds/envoy-protos.ts';

const HTTP_VIP = '10.96.7.1';
const TCP_VIP = '10.96.7.2';
const HTTP_HOST = 'web.default.svc.cluster.local';
const TCP_HOST = 'db.default.svc.cluster.local';
const ROUTE = `inbound-vip|80|http|${HTTP_HOST}`;
const WEB = `outbound|80||${HTTP_HOST}`;
const DB = `inbound-vip|5432|tcp|${TCP_HOST}`;
const SLEEP_IP = '10.244.7.5';
const SLEEP_UID = 'Kubernetes//Pod/default/sleep-7d9f-abcde';
const CURL_UID = 'Kubernetes//Pod/default/curl-5c6b-fghij';

function ipBytes(ip: string): Uint8Array {
  return Uint8Array.from(ip.split('.').map(Number));
}

/** A pod's WDS workload, as istiod sends it. */
function podAddress(
  uid: string,
  pod: string,
  sa: string,
  ip: Uint8Array,
  owner: string,
  revision: string,
): workload.AddressInit {
  return {
    workload: {
      uid,
      name: pod,
      namespace: 'default',
      addresses: [ip],
      network: '',
      tunnelProtocol: 1,
      trustDomain: 'cluster.local',
      serviceAccount: sa,
      canonicalName: owner,
      canonicalRevision: revision,
      workloadType: 2,
      workloadName: owner,
      clusterId: 'Kubernetes',
      status: 0,
    },
  };
}

/** The one series line of `metric` whose text contains every fragment. */
function series(text: string, metric: string, ...fragments: readonly string[]): string | undefined {
  return text.split('\n').find(l => l.startsWith(`${metric}{`) && fragments.every(f => l.includes(f)));
}

const sleepLabels = [
  'source_workload="sleep"',
  'source_canonical_service="sleep"',
  'source_canonical_revision="v1"',
  'source_workload_namespace="default"',
  'source_principal="spiffe://cluster.local/ns/default/sa/sleep"',
  'source_app="sleep"',
  'source_version="v1"',
  'source_cluster="Kubernetes"',
];

describe('waypoint source labels from WDS', () => {
  let pki: TestPki;
  let xds: TestXdsServer;
  let web: HboneBackend;
  let tcpServer: TcpServer;
  let db: HboneTcpBackend;
  let waypoint: Bound;
  let waypointIdentity: HboneIdentity & { readonly id: string };
  let sleep: HboneIdentity & { readonly id: string };
  let curl: HboneIdentity & { readonly id: string };
  let hbone: HboneClient;
  const clients: MeshClient[] = [];
  const captured = captureLogs();

  const httpClient = (identity: HboneIdentity, headers: Record<string, string>): MeshClient => {
    const c = new MeshClient({
      identity,
      waypoint: `127.0.0.1:${waypoint.hboneAddress.port}`,
      waypointIdentity: waypointIdentity.id,
      target: `${HTTP_VIP}:80`,
      headers,
    });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    pki = await createTestPki();
    xds = new TestXdsServer();
    await xds.start();
    web = new HboneBackend('web', await pki.identity('default', 'web'));
    await web.start();
    tcpServer = createTcpServer({ allowHalfOpen: true }, conn => {
      conn.pipe(conn);
      conn.on('error', () => undefined);
    });
    await new Promise<void>(resolve => tcpServer.listen(0, '127.0.0.1', resolve));
    db = new HboneTcpBackend(await pki.identity('default', 'db'), (tcpServer.address() as AddressInfo).port);
    await db.start();
    xds.set(TypeUrl.cluster, WEB, edsCluster(WEB));
    xds.set(
      TypeUrl.clusterLoadAssignment,
      WEB,
      assignment(WEB, [
        {
          address: '10.244.7.20',
          port: 80,
          hbone: `127.0.0.1:${web.port}`,
          identity: web.identity.id,
          workload: 'web-v1;default;web;v1;Kubernetes',
        },
      ]),
    );
    xds.set(TypeUrl.cluster, DB, edsCluster(DB));
    xds.set(
      TypeUrl.clusterLoadAssignment,
      DB,
      assignment(DB, [
        {
          address: '10.244.7.30',
          port: 5432,
          hbone: `127.0.0.1:${db.port}`,
          identity: db.identity.id,
          workload: 'db-v1;default;db;v1;Kubernetes',
        },
      ]),
    );
    const http = httpListener('main_internal', HTTP_VIP, 80, ROUTE);
    const tcpChain: ProtoObject = {
      name: DB,
      filter_chain_match: {
        destination_port: { value: 5432 },
        prefix_ranges: [{ address_prefix: TCP_VIP, prefix_len: { value: 32 } }],
      },
      filters: [
        {
          name: 'envoy.filters.network.tcp_proxy',
          typed_config: any(EnvoyType.tcpProxy, { stat_prefix: DB, cluster: DB }),
        },
      ],
    };
    xds.set(TypeUrl.listener, 'main_internal', {
      ...http,
      filter_chains: [...(http.filter_chains as ProtoObject[]), tcpChain],
    });
    xds.set(TypeUrl.routeConfiguration, ROUTE, {
      name: ROUTE,
      virtual_hosts: [
        {
          name: 'web',
          domains: ['*'],
          routes: [{ name: 'default', match: { prefix: '/' }, route: { cluster: WEB, timeout: ms(0) } }],
        },
      ],
    });
    // The client workloads: sleep at a pod IP (reached through `forwarded: for=`), curl at the
    // tunnel's own source address (loopback).
    const set = (name: string, value: workload.AddressInit): void => {
      xds.set(TypeUrl.address, name, value as ProtoObject);
    };
    set(SLEEP_UID, podAddress(SLEEP_UID, 'sleep-7d9f-abcde', 'sleep', ipBytes(SLEEP_IP), 'sleep', 'v1'));
    set(CURL_UID, podAddress(CURL_UID, 'curl-5c6b-fghij', 'curl', ipBytes('127.0.0.1'), 'curl', 'v2'));
    waypointIdentity = await pki.identity('default', 'waypoint');
    waypoint = await build(testConfig(), {
      xdsConnect: xds.connect(),
      identity: waypointIdentity,
      processMetrics: false,
      logs: captured.logs,
    });
    await waitFor('xDS sync', () => waypoint.readiness.ready, 30_000);
    await waitFor(
      'the WDS workloads',
      () => waypoint.peers.workloadByUid(SLEEP_UID) !== undefined && waypoint.peers.size.workloads === 2,
      30_000,
    );
    sleep = await pki.identity('default', 'sleep');
    curl = await pki.identity('default', 'curl');
    hbone = createHboneClient();
  }, 60_000);

  afterAll(async () => {
    for (const c of clients) await c.close();
    hbone.destroy();
    await waypoint.shutdown();
    await web.close();
    await db.close();
    await new Promise<void>(resolve =>
      tcpServer.close(() => {
        resolve();
      }),
    );
    xds.close();
  });

  it('labels a request without baggage with the workload of its forwarded for= address', async () => {
    const res = await httpClient(sleep, { forwarded: `for="${SLEEP_IP}:41000";host=${HTTP_HOST}` }).get(
      '/from-sleep',
    );
    expect(res.status).toBe(200);
    let line: string | undefined;
    await waitFor(
      'the request counted',
      async () => {
        line = series(await scrapeStats(waypoint), 'istio_requests_total', 'source_workload="sleep"');
        return line !== undefined;
      },
      30_000,
    );
    for (const label of sleepLabels) expect(line).toContain(label);
    expect(line).toContain('reporter="waypoint"');
    expect(line).toContain('destination_workload="web-v1"');
  });

  it('falls back to the tunnel source address, and does not believe a for= of another identity', async () => {
    // curl claims sleep's address: its certificate is not sleep's, so the tunnel's source wins.
    const res = await httpClient(curl, { forwarded: `for="${SLEEP_IP}:41001"` }).get('/from-curl');
    expect(res.status).toBe(200);
    let line: string | undefined;
    await waitFor(
      'the request counted',
      async () => {
        line = series(await scrapeStats(waypoint), 'istio_requests_total', 'source_workload="curl"');
        return line !== undefined;
      },
      30_000,
    );
    expect(line).toContain('source_canonical_revision="v2"');
    expect(line).toContain('source_principal="spiffe://cluster.local/ns/default/sa/curl"');
    expect(series(await scrapeStats(waypoint), 'istio_requests_total', 'source_workload="unknown"')).toBe(
      undefined,
    );
  });

  it('labels a TCP connection without baggage with the WDS workload', async () => {
    const tunnel = await hbone.connect({
      target: `${TCP_VIP}:5432`,
      nextHop: `127.0.0.1:${waypoint.hboneAddress.port}`,
      identity: sleep,
      expectedIdentities: [waypointIdentity.id],
      headers: { forwarded: `for="${SLEEP_IP}:42000"` },
    });
    const chunks: Buffer[] = [];
    tunnel.on('data', (c: Buffer) => chunks.push(c));
    tunnel.end('ping');
    await new Promise<void>((resolve, reject) => {
      tunnel.once('end', resolve);
      tunnel.once('error', reject);
    });
    tunnel.destroy();
    expect(Buffer.concat(chunks).toString()).toBe('ping');
    let text = '';
    await waitFor(
      'the connection counted closed',
      async () => {
        text = await scrapeStats(waypoint);
        return (
          series(text, 'istio_tcp_connections_closed_total', `destination_service="${TCP_HOST}"`) !==
          undefined
        );
      },
      30_000,
    );
    for (const metric of [
      'istio_tcp_connections_opened_total',
      'istio_tcp_connections_closed_total',
      'istio_tcp_received_bytes_total',
      'istio_tcp_sent_bytes_total',
    ]) {
      const line = series(text, metric, `destination_service="${TCP_HOST}"`);
      expect(line, metric).toBeDefined();
      for (const label of sleepLabels) expect(line, metric).toContain(label);
    }
  });

  it('NACKs a malformed Address with its reason and keeps the last good workload', async () => {
    // sleep's new version carries a 3-byte address.
    xds.set(
      TypeUrl.address,
      SLEEP_UID,
      podAddress(
        SLEEP_UID,
        'sleep-7d9f-abcde',
        'sleep',
        Uint8Array.of(10, 0, 1),
        'sleep',
        'v9',
      ) as ProtoObject,
    );
    await waitFor(
      'the NACK',
      () => xds.lastNack(TypeUrl.address) !== undefined && waypoint.nacks.has(TypeUrl.address),
      30_000,
    );
    expect(xds.lastNack(TypeUrl.address)).toContain('an IP must be 4 or 16 bytes, got 3');
    expect(waypoint.nacks.get(TypeUrl.address)?.nack).toContain(SLEEP_UID);
    const kept = waypoint.peers.workloadByUid(SLEEP_UID);
    expect(kept?.canonicalRevision).toBe('v1');
    expect(waypoint.peers.workloadByAddress('', SLEEP_IP)?.uid).toBe(SLEEP_UID);
  });
});
