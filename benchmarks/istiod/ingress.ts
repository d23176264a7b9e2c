// The ingress gateway xDS benchmark (in process): one Gateway of class `istio` with an HTTP
// listener on 80 and an HTTPS listener on 443 (`*.example.com`, a TLS Secret), N HTTPRoutes with
// one hostname each (`host-<i>.example.com`) spread over 200 Services with 2 backend pods each.
//
// An ingress gateway is recomputed whole on each change that affects it (unlike waypoints, which
// are split per waypoint), so this measures what one change costs as the route count grows:
// - building the gateway from scratch (`recomputeAll`);
// - one HTTPRoute change (a new request timeout) → the index holds the new resources (p50/p99);
// - one backend pod added → the index holds the new endpoints (p50/p99);
// - the encoded size of the RouteConfigurations.
// Baseline, same run: the same gateway with 10 routes.
import { createTestCa, issueRawCert } from '@ambient-mesh/spiffe-certs/testing';
import { EnvoyTypeUrls, WaypointKinds as K } from '@ambient-mesh/istiod';
import {
  makeGatewayRoute,
  makeIngressGateway,
  makeNamespace,
  makePod,
  makeService,
  makeTlsSecret,
  waypointIndexes,
} from '@ambient-mesh/istiod/testing';
import { pct } from './stats.ts';

export interface IngressMeshResult {
  readonly routes: number;
  readonly buildMs: number;
  readonly routeChangeMs: readonly number[];
  readonly podChangeMs: readonly number[];
  readonly rdsBytes: number;
}

const SERVICES = 200;

async function runGateway(routes: number, changes: number): Promise<IngressMeshResult> {
  const ca = await createTestCa();
  const cert = await issueRawCert(ca, 'spiffe://cluster.local/ns/ingress/sa/gw');
  const h = waypointIndexes();
  h.upsert(K.NAMESPACE, makeNamespace('ingress'));
  h.upsert(K.SECRET, makeTlsSecret('wildcard', 'ingress', cert.leafPem, cert.privateKeyPem));
  const services = Math.min(SERVICES, routes);
  for (let s = 0; s < services; s++) {
    h.upsert(
      K.SERVICE,
      makeService(`svc-${s}`, 'ingress', {
        clusterIP: `10.96.${s >> 8}.${s & 255}`,
        clusterIPs: [`10.96.${s >> 8}.${s & 255}`],
        selector: { app: `svc-${s}` },
        ports: [{ name: 'http', port: 80, targetPort: 8080 }],
      }),
    );
    for (let p = 0; p < 2; p++)
      h.upsert(
        K.POD,
        makePod({
          name: `svc-${s}-${p}`,
          namespace: 'ingress',
          node: 'n1',
          ip: `10.244.${s >> 7}.${((s & 127) << 1) | p}`,
          labels: { app: `svc-${s}` },
          annotations: { 'ambient.istio.io/redirection': 'enabled' },
        }),
      );
  }
  const route = (i: number, timeout: string) =>
    makeGatewayRoute(`route-${i}`, 'ingress', {
      parentRefs: [{ name: 'gw' }],
      hostnames: [`host-${i}.example.com`],
      rules: [
        {
          matches: [{ path: { type: 'PathPrefix', value: '/api' } }],
          backendRefs: [{ name: `svc-${i % services}`, port: 80 }],
          timeouts: { request: timeout },
        },
      ],
    });
  for (let i = 0; i < routes; i++) h.waypoints.upsert(K.HTTP_ROUTE, route(i, '10s'));
  // The Gateway last: every route event before it had no gateway to compute.
  h.waypoints.upsert(
    K.GATEWAY,
    makeIngressGateway('gw', 'ingress', [
      { name: 'http', port: 80, protocol: 'HTTP' },
      {
        name: 'https',
        port: 443,
        protocol: 'HTTPS',
        hostname: '*.example.com',
        tls: { mode: 'Terminate', certificateRefs: [{ name: 'wildcard' }] },
      },
    ]),
  );
  let start = performance.now();
  h.waypoints.recomputeAll();
  const buildMs = performance.now() - start;
  const rdsBytes = [
    ...h.waypoints.resourcesFor('ingress/gw', EnvoyTypeUrls.routeConfiguration).values(),
  ].reduce((n, r) => n + r.value.length, 0);
  const routeChangeMs: number[] = [];
  for (let c = 0; c < changes; c++) {
    start = performance.now();
    const change = h.waypoints.upsert(K.HTTP_ROUTE, route((c * 37) % routes, `${11 + c}s`));
    routeChangeMs.push(performance.now() - start);
    if (!change.waypoints.has('ingress/gw')) throw new Error('a route change did not change the gateway');
  }
  const podChangeMs: number[] = [];
  for (let c = 0; c < changes; c++) {
    const s = (c * 13) % services;
    start = performance.now();
    const change = h.upsert(
      K.POD,
      makePod({
        name: `extra-${c}`,
        namespace: 'ingress',
        node: 'n1',
        ip: `10.245.${c >> 8}.${c & 255}`,
        labels: { app: `svc-${s}` },
        annotations: { 'ambient.istio.io/redirection': 'enabled' },
      }),
    );
    podChangeMs.push(performance.now() - start);
    if (!change.waypoints.has('ingress/gw')) throw new Error('a pod change did not change the gateway');
  }
  return { routes, buildMs, routeChangeMs, podChangeMs, rdsBytes };
}

export interface IngressBenchResult {
  readonly large: IngressMeshResult;
  readonly small: IngressMeshResult;
}

export async function runIngress(
  o: { readonly routes: number; readonly changes: number },
  progress: (s: string) => void,
): Promise<IngressBenchResult> {
  progress('warm-up: 10 routes');
  await runGateway(10, o.changes);
  progress(`ingress gateway: ${o.routes} routes`);
  const large = await runGateway(o.routes, o.changes);
  progress('ingress baseline: 10 routes');
  const small = await runGateway(10, o.changes);
  return { large, small };
}

export function ingressMarkdown(r: IngressBenchResult, ms: (x: number) => string): string {
  const kb = (b: number): string => (b / 1024).toFixed(0);
  return [
    `### Ingress gateway xDS: ${r.large.routes} HTTPRoutes on one Gateway (HTTP + HTTPS), in process\n`,
    `| measure | value | baseline (same run): ${r.small.routes} routes |`,
    '|---|---|---|',
    `| build the gateway from scratch | ${ms(r.large.buildMs)} ms | ${ms(r.small.buildMs)} ms |`,
    `| one HTTPRoute change → new resources in the index, p50 | ${ms(pct(r.large.routeChangeMs, 50))} ms | ${ms(pct(r.small.routeChangeMs, 50))} ms |`,
    `| same, p99 | ${ms(pct(r.large.routeChangeMs, 99))} ms | ${ms(pct(r.small.routeChangeMs, 99))} ms |`,
    `| one backend pod added → new endpoints in the index, p50 | ${ms(pct(r.large.podChangeMs, 50))} ms | ${ms(pct(r.small.podChangeMs, 50))} ms |`,
    `| same, p99 | ${ms(pct(r.large.podChangeMs, 99))} ms | ${ms(pct(r.small.podChangeMs, 99))} ms |`,
    `| RouteConfigurations, encoded | ${kb(r.large.rdsBytes)} KiB | ${kb(r.small.rdsBytes)} KiB |`,
  ].join('\n');
}
