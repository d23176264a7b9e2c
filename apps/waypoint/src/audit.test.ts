/**
 * AUDIT AuthorizationPolicies end to end on loopback: istiod's RBAC filter with `action: LOG`
 * ahead of its DENY and ALLOW filters. Real HBONE requests through the waypoint: a request an
 * AUDIT rule matches is never denied for it, its access log line carries `access_log_hint`
 * (Envoy's `envoy.common` dynamic metadata) and the policy, and `envoy_http_rbac_logged` counts it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TypeUrl } from '@ambient-mesh/mesh-api';
import { captureLogs } from '@ambient-mesh/runtime/testing';
import type { Bound } from './app.ts';
import { startLoopbackWaypoint } from './testing/loopback-waypoint.ts';
import {
  any,
  assignment,
  catchAllRoute,
  edsCluster,
  reviewsEndpoint,
  hcmListener,
} from './testing/fixtures.ts';
import {
  HboneBackend,
  MeshClient,
  TestXdsServer,
  createTestPki,
  scrapeStats,
  waitFor,
} from './testing/loopback.ts';
import { EnvoyType } from './xds/envoy-protos.ts';
import type { ProtoObject } from './xds/envoy-protos.ts';

const VIP = '10.96.0.21';
const ROUTE = 'inbound-vip|80|http|reviews.default.svc.cluster.local';
const A = 'outbound|80||reviews-a.default.svc.cluster.local';
const AUDIT_POLICY = 'ns[default]-policy[audit-writes]-rule[0]';

const rbac = (rules: ProtoObject): ProtoObject => ({
  name: 'envoy.filters.http.rbac',
  typed_config: any(EnvoyType.httpRbac, { rules }),
});
const method = (m: string): ProtoObject => ({ header: { name: ':method', string_match: { exact: m } } });

function listener(): ProtoObject {
  return hcmListener({
    chainName: ROUTE,
    vip: VIP,
    port: 80,
    routeName: ROUTE,
    // As istiod orders them: AUDIT (LOG), DENY, ALLOW.
    httpFilters: [
      rbac({
        action: 'LOG',
        policies: {
          [AUDIT_POLICY]: {
            permissions: [{ or_rules: { rules: [method('POST'), method('DELETE')] } }],
            principals: [{ any: true }],
          },
        },
      }),
      rbac({
        action: 'DENY',
        policies: {
          'ns[default]-policy[deny-delete]-rule[0]': {
            permissions: [method('DELETE')],
            principals: [{ any: true }],
          },
        },
      }),
      rbac({
        action: 'ALLOW',
        policies: {
          'ns[default]-policy[allow-all]-rule[0]': {
            permissions: [{ any: true }],
            principals: [{ any: true }],
          },
        },
      }),
    ],
  });
}

describe('waypoint AUDIT policies (RBAC LOG) on loopback', () => {
  let xds: TestXdsServer;
  let backend: HboneBackend;
  let waypoint: Bound;
  let client: MeshClient;
  const captured = captureLogs();

  beforeAll(async () => {
    const pki = await createTestPki();
    xds = new TestXdsServer();
    await xds.start();
    backend = new HboneBackend('a', await pki.identity('default', 'reviews-a'), (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
    await backend.start();
    xds.set(TypeUrl.cluster, A, edsCluster(A));
    xds.set(TypeUrl.clusterLoadAssignment, A, assignment(A, [reviewsEndpoint(backend)]));
    xds.set(TypeUrl.listener, 'main_internal', listener());
    xds.set(TypeUrl.routeConfiguration, ROUTE, catchAllRoute(ROUTE, A));
    const started = await startLoopbackWaypoint({ xds, pki, logs: captured.logs });
    waypoint = started.waypoint;
    client = new MeshClient(await started.clientOptions('productpage', `${VIP}:80`));
  }, 60_000);

  afterAll(async () => {
    await client.close();
    await waypoint.shutdown();
    await backend.close();
    xds.close();
  });

  const accessLine = async (path: string): Promise<Record<string, unknown>> => {
    let line: Record<string, unknown> | undefined;
    await waitFor(`the access log line of ${path}`, () => {
      line = captured.records.find(r => r.msg === 'request' && r.path === path);
      return line !== undefined;
    });
    return line!;
  };

  it('passes a request an AUDIT rule matches, marking its access log line', async () => {
    const r = await client.post('/audited', 'body');
    expect(r.status).toBe(200);
    const line = await accessLine('/audited');
    expect(line).toMatchObject({
      response_code: 200,
      access_log_hint: true,
      rbac_audit_policies: [`envoy.filters.http.rbac/${AUDIT_POLICY}`],
    });
  });

  it('leaves a request no AUDIT rule matches unmarked', async () => {
    expect((await client.get('/plain')).status).toBe(200);
    const line = await accessLine('/plain');
    expect(line.access_log_hint).toBeUndefined();
    expect(line.rbac_audit_policies).toBeUndefined();
  });

  it('still lets a DENY policy deny an audited request, and the line says both', async () => {
    const r = await client.request('/audited-delete', 'DELETE');
    expect(r.status).toBe(403);
    const line = await accessLine('/audited-delete');
    expect(line).toMatchObject({
      response_code: 403,
      response_code_details: 'rbac_access_denied_matched_policy[ns[default]-policy[deny-delete]-rule[0]]',
      access_log_hint: true,
    });
  });

  it('counts audited requests in envoy_http_rbac_logged', async () => {
    const stats = await scrapeStats(waypoint);
    const line = stats.split('\n').find(l => l.startsWith('envoy_http_rbac_logged{'));
    expect(line).toBe(`envoy_http_rbac_logged{envoy_http_conn_manager_prefix="${ROUTE}"} 2`);
  });
});
