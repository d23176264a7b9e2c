// Cluster tier: Telemetry access logging and metrics overrides, and an AUDIT AuthorizationPolicy,
// through a waypoint (issues 18 and 19) on a 2-node local cluster (name `l7telem`, slot 167).
// meshConfig names an `envoyFileAccessLog` provider writing a text format to /dev/stdout; a
// namespace Telemetry selects it and overrides `istio_requests_total` (an upserted `user` tag from
// a request header, `request_protocol` removed) and disables `istio_request_bytes`; an AUDIT policy
// targeting the waypoint's Gateway marks the requests to `/audited*`.
//
// What users see: the waypoint pod's log has one line per request in their format, the audited
// ones with `access_log_hint` set; the waypoint's Prometheus endpoint shows the tag changes and no
// request size histogram; the audited request is still answered.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand, waitFor } from '../exec.ts';
import { ScenarioContext } from '../mesh/scenario.ts';
import { waypointMetrics, type WaypointPod } from '../mesh/waypoint.ts';
import { startWaypointMesh } from '../mesh/waypoint-mesh.ts';
import { echoPod, type MeshPod } from '../mesh/workloads.ts';
import { podLog } from './cni-observe.ts';

const NS = 'telem';
const scenario = new ScenarioContext<MeshPod>('l7telem');
const { kube, pod } = scenario;
let waypoint: WaypointPod;

const MESH = `rootNamespace: istio-system
trustDomain: cluster.local
defaultConfig:
  discoveryAddress: istiod.istio-system.svc:15012
extensionProviders:
- name: audit-log
  envoyFileAccessLog:
    path: /dev/stdout
    logFormat:
      text: "TELEMETRY-LINE %REQ(:METHOD)% %REQ(:PATH)% %RESPONSE_CODE% hint=%DYNAMIC_METADATA(envoy.common:access_log_hint)%"
`;

/** A GET from the client through the waypoint; the HTTP status (0: no answer). */
async function get(path: string, user: string): Promise<number> {
  const r = await runCommand(
    [
      'ip',
      'netns',
      'exec',
      pod('client').netns,
      'curl',
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '--max-time',
      '10',
      '-H',
      `x-user: ${user}`,
      `http://echo.${NS}.svc.cluster.local${path}`,
    ],
    { allowFailure: true },
  );
  return Number(r.stdout.trim()) || 0;
}

describe('Telemetry access logging, metric overrides and AUDIT through a waypoint on a 2-node local cluster', () => {
  beforeAll(async () => {
    waypoint = await startWaypointMesh(scenario, {
      cluster: { name: 'l7telem', slot: 167 },
      namespace: NS,
      serviceAccounts: ['client', 'echo'],
      pods: [
        [
          'echo',
          echoPod('echo', { namespace: NS, node: 'node-1', serviceAccount: 'echo', containerPorts: [8080] }),
        ],
        ['client', echoPod('client', { namespace: NS, node: 'node-0', env: { PORT: '9090' } })],
      ],
      services: [['echo', { app: 'echo' }]],
      probe: { from: 'client', service: 'echo' },
    });
    const c = kube();
    await c.client.mergePatch('/api/v1/namespaces/istio-system/configmaps/istio', { data: { mesh: MESH } });
    await c.client.create(`/apis/telemetry.istio.io/v1/namespaces/${NS}/telemetries`, {
      apiVersion: 'telemetry.istio.io/v1',
      kind: 'Telemetry',
      metadata: { name: 'logs-and-metrics', namespace: NS },
      spec: {
        accessLogging: [{ providers: [{ name: 'audit-log' }] }],
        metrics: [
          {
            overrides: [
              {
                match: { metric: 'REQUEST_COUNT' },
                tagOverrides: {
                  user: { operation: 'UPSERT', value: "request.headers['x-user']" },
                  request_protocol: { operation: 'REMOVE' },
                },
              },
              { match: { metric: 'REQUEST_SIZE' }, disabled: true },
            ],
          },
        ],
      },
    });
    await c.client.create(`/apis/security.istio.io/v1/namespaces/${NS}/authorizationpolicies`, {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'audit-paths', namespace: NS },
      spec: {
        targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'waypoint' }],
        action: 'AUDIT',
        rules: [{ to: [{ operation: { paths: ['/audited*'] } }] }],
      },
    });
    scenario.logSetupTime();
  }, 600_000);

  afterAll(async () => {
    await scenario.cluster?.stop();
    scenario.logWallTime();
  }, 180_000);

  it("writes the provider's format to the waypoint's stdout, marking the audited request", async () => {
    const c = kube();
    // The config may reach the waypoint after the first requests: send until both lines show.
    const lines = await waitFor(
      'the audited and the plain request in the waypoint log',
      async () => {
        await get('/audited/1', 'e2e');
        await get('/plain', 'e2e');
        const log = (await podLog(c.client, NS, waypoint.name))
          .split('\n')
          .filter(l => l.startsWith('TELEMETRY-LINE '));
        const audited = log.find(l => l.startsWith('TELEMETRY-LINE GET /audited/1 '));
        const plain = log.find(l => l.startsWith('TELEMETRY-LINE GET /plain '));
        return audited !== undefined && plain !== undefined ? { audited, plain } : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 2_000 },
    );
    // Audited, never denied for it: the line says 200, and so does a new request.
    expect(lines.audited).toBe('TELEMETRY-LINE GET /audited/1 200 hint=true');
    expect(await get('/audited/2', 'e2e')).toBe(200);
    expect(lines.plain).toBe('TELEMETRY-LINE GET /plain 200 hint=-');
  }, 300_000);

  it('exports istio_requests_total with the upserted tag and without the removed one, and no request sizes', async () => {
    const samples = await waitFor(
      'istio_requests_total with user="e2e"',
      async () => {
        await get('/plain', 'e2e');
        const s = await waypointMetrics(waypoint);
        return s.some(x => x.name === 'istio_requests_total' && x.labels.user === 'e2e') ? s : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 2_000 },
    );
    const requests = samples.filter(s => s.name === 'istio_requests_total' && s.labels.user === 'e2e');
    expect(requests.every(s => s.labels.request_protocol === undefined)).toBe(true);
    expect(requests.some(s => s.labels.destination_service_name === 'echo')).toBe(true);
    expect(samples.filter(s => s.name.startsWith('istio_request_bytes'))).toEqual([]);
    // Metrics without overrides keep their standard labels.
    expect(
      samples.some(s => s.name.startsWith('istio_response_bytes') && s.labels.request_protocol === 'http'),
    ).toBe(true);
  }, 300_000);
});
