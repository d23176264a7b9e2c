// The waypoint xDS benchmark: 1,000 HTTPRoutes over 200 waypoints (5 Services with one route
// each per waypoint, 2 backend pods per Service), istiod's xDS server on loopback TLS with one
// delta client per waypoint subscribed to its RouteConfigurations. Debounce 0.
//
// Measures, for one HTTPRoute change (a new request timeout): the time until the affected
// waypoint's client holds the new RouteConfiguration, and how many waypoints were pushed (only
// the affected one should be). Baseline, same run: the same change against a 1-waypoint mesh.
// Also: the time to build every waypoint from scratch (what a change would cost without the
// per-waypoint recompute).
import { createRegistry } from '@ambient-mesh/runtime';
import {
  EnvoyType,
  EnvoyTypeUrls,
  WaypointKinds,
  WaypointPushQueue,
  XdsServer,
  createMetrics,
  decodeEnvoy,
  silentLogger,
  startGrpcServer,
  type TokenReviewer,
} from '@ambient-mesh/istiod';
import {
  DeltaTestClient,
  makeBackendPod,
  makeBoundService,
  makeHttpRoute,
  makeWaypointGateway,
  waypointIndexes,
  waypointNode,
} from '@ambient-mesh/istiod/testing';
import { CertificateAuthority } from '@ambient-mesh/spiffe-certs';
import { pct } from './stats.ts';

export interface WaypointBenchOptions {
  readonly waypoints: number;
  readonly servicesPerWaypoint: number;
  readonly changes: number;
}

export interface WaypointMeshResult {
  readonly waypoints: number;
  readonly routes: number;
  readonly buildAllMs: number;
  readonly latencies: readonly number[];
  /** Waypoints pushed per change. */
  readonly pushedPerChange: readonly number[];
}

const RC = EnvoyTypeUrls.routeConfiguration;
const reviewer: TokenReviewer = token => {
  const [ns, sa] = token.split(':');
  return Promise.resolve({ authenticated: true, username: `system:serviceaccount:${ns}:${sa}` });
};

const svcName = (w: number, s: number): string => `svc-${w}-${s}`;
const routeConfigName = (w: number, s: number): string =>
  `inbound-vip|80|http|${svcName(w, s)}.ns-${w}.svc.cluster.local`;
const route = (w: number, s: number, timeout: string) =>
  makeHttpRoute(`route-${w}-${s}`, `ns-${w}`, {
    service: svcName(w, s),
    rules: [
      {
        matches: [{ path: { type: 'PathPrefix', value: '/api' } }],
        backendRefs: [{ name: svcName(w, s), port: 80 }],
        timeouts: { request: timeout },
        retry: { attempts: 2, codes: [503] },
      },
    ],
  });

function timeoutOf(
  resp: { resources: readonly { name: string; resource?: { value: Uint8Array } | null }[] },
  name: string,
): number | undefined {
  const r = resp.resources.find(x => x.name === name);
  if (r?.resource === undefined || r.resource === null) return undefined;
  const cfg = decodeEnvoy(EnvoyType.routeConfiguration, r.resource.value) as {
    virtualHosts: { routes: { route?: { timeout?: { seconds?: number } } }[] }[];
  };
  return cfg.virtualHosts[0]?.routes[0]?.route?.timeout?.seconds;
}

async function runMesh(o: WaypointBenchOptions, progress: (s: string) => void): Promise<WaypointMeshResult> {
  const ca = await CertificateAuthority.createSelfSigned({ keyAlgorithm: 'ecdsa-p256' });
  const signed = await ca.signServingCertificate({ dnsNames: ['istiod.istio-system.svc'], ttlSeconds: 3600 });
  // The waypoint index beside WDS, whose bindings say which Services each waypoint serves.
  const indexes = waypointIndexes();
  const { waypoints } = indexes;
  for (let w = 0; w < o.waypoints; w++) {
    const ns = `ns-${w}`;
    indexes.upsert(WaypointKinds.GATEWAY, makeWaypointGateway(`wp-${w}`, ns));
    for (let s = 0; s < o.servicesPerWaypoint; s++) {
      const ip = `10.${96 + Math.floor(w / 250)}.${w % 250}.${s + 1}`;
      indexes.upsert(WaypointKinds.SERVICE, makeBoundService(svcName(w, s), ns, `wp-${w}`, ip));
      for (let p = 0; p < 2; p++)
        indexes.upsert(
          WaypointKinds.POD,
          makeBackendPod(svcName(w, s), ns, `10.${200 + Math.floor(w / 250)}.${w % 250}.${s * 2 + p + 1}`),
        );
      waypoints.upsert(WaypointKinds.HTTP_ROUTE, route(w, s, '10s'));
    }
  }
  const t0 = performance.now();
  waypoints.recomputeAll();
  const buildAllMs = performance.now() - t0;
  const server = new XdsServer({
    source: indexes.wds,
    waypoints,
    reviewer,
    audiences: ['istio-ca'],
    requireAuth: true,
    enableAmbient: true,
    metrics: createMetrics({ registry: createRegistry() }),
    logger: silentLogger(),
  });
  let pushed = 0;
  const queue = new WaypointPushQueue({
    debounceAfterMs: 0,
    debounceMaxMs: 0,
    flush: b => {
      pushed += server.pushWaypoints(b);
    },
  });
  const off = waypoints.onChange(c => {
    queue.enqueue(c);
  });
  const grpc = await startGrpcServer({
    address: { host: '127.0.0.1', port: 0 },
    credentials: { certPem: signed.certChainPem, keyPem: signed.keyPem },
    register: s => {
      server.register(s);
    },
  });
  const clients: DeltaTestClient[] = [];
  try {
    for (let w = 0; w < o.waypoints; w++) {
      const c = new DeltaTestClient({
        address: `127.0.0.1:${grpc.port}`,
        rootCertPem: signed.rootBundlePem,
        token: `ns-${w}:wp-${w}`,
      });
      clients.push(c);
      c.send({
        node: waypointNode(`wp-${w}`, `ns-${w}`, `10.250.${Math.floor(w / 250)}.${w % 250}`),
        typeUrl: RC,
      });
      c.ack(await c.next(60_000));
    }
    progress(`${o.waypoints} waypoint clients synced`);
    const latencies: number[] = [];
    const pushedPerChange: number[] = [];
    for (let i = 0; i < o.changes; i++) {
      const w = (i * 37) % o.waypoints;
      const s = i % o.servicesPerWaypoint;
      const seconds = 11 + i;
      pushed = 0;
      const start = performance.now();
      waypoints.upsert(WaypointKinds.HTTP_ROUTE, route(w, s, `${seconds}s`));
      const c = clients[w]!;
      for (let k = 0; k < 10; k++) {
        const resp = await c.next(30_000);
        c.ack(resp);
        if (timeoutOf(resp, routeConfigName(w, s)) === seconds) break;
      }
      latencies.push(performance.now() - start);
      pushedPerChange.push(pushed);
    }
    // Nothing else may be waiting for any other client.
    const stray = clients.reduce((n, c) => n + c.buffered, 0);
    if (stray > 0) throw new Error(`${stray} unexpected responses were sent to unaffected waypoints`);
    return {
      waypoints: o.waypoints,
      routes: o.waypoints * o.servicesPerWaypoint,
      buildAllMs,
      latencies,
      pushedPerChange,
    };
  } finally {
    for (const c of clients) c.close();
    off();
    queue.close();
    server.closeAll();
    await grpc.close(200);
  }
}

export interface WaypointBenchResult {
  readonly large: WaypointMeshResult;
  readonly small: WaypointMeshResult;
}

export async function runWaypoint(
  o: WaypointBenchOptions,
  progress: (s: string) => void,
): Promise<WaypointBenchResult> {
  // A first 1-waypoint run warms the JIT and TLS so neither measured run pays for it.
  progress('warm-up: 1 waypoint');
  await runMesh({ ...o, waypoints: 1 }, progress);
  progress(`waypoint mesh: ${o.waypoints} waypoints`);
  const large = await runMesh(o, progress);
  progress('waypoint baseline: 1 waypoint');
  const small = await runMesh({ ...o, waypoints: 1 }, progress);
  return { large, small };
}

export function waypointMarkdown(r: WaypointBenchResult, ms: (x: number) => string): string {
  const rows = [
    `### Waypoint xDS: ${r.large.routes} HTTPRoutes over ${r.large.waypoints} waypoints, one delta client per waypoint\n`,
    '| measure | value | baseline (same run): 1 waypoint, ' + `${r.small.routes} routes |`,
    '|---|---|---|',
    `| one HTTPRoute change → the affected waypoint holds the new RouteConfiguration, p50 | ${ms(pct(r.large.latencies, 50))} ms | ${ms(pct(r.small.latencies, 50))} ms |`,
    `| same, p99 | ${ms(pct(r.large.latencies, 99))} ms | ${ms(pct(r.small.latencies, 99))} ms |`,
    `| waypoints pushed per change (max over ${r.large.latencies.length} changes) | ${Math.max(...r.large.pushedPerChange)} | ${Math.max(...r.small.pushedPerChange)} |`,
    `| build every waypoint from scratch (the cost without per-waypoint recompute) | ${ms(r.large.buildAllMs)} ms | ${ms(r.small.buildAllMs)} ms |`,
  ];
  return rows.join('\n');
}
