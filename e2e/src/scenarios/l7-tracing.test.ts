// Cluster tier: tracing through a waypoint (issue 20, scenario 10) on a 2-node local cluster (name
// `tracing`, slot 152). A real Jaeger v2 (image jaegertracing/jaeger, the binary built from the Go
// module proxy by tools/install-deps.d/jaeger.sh) runs as a pod outside the mesh behind the Service
// `jaeger-collector.observe`; meshConfig names it as the `otel` extension provider (OTLP/gRPC,
// 4317) and a root-namespace Telemetry turns tracing on at 100 %. A client sends requests with a
// W3C `traceparent` through the namespace's waypoint to the echo server.
//
// What users see: Jaeger's query API (what the console's TRACING_URL reads) lists the trace under
// the waypoint's service `waypoint.<namespace>`, its span a child of the client's span, tagged
// with the echo pod as `upstream_address` and the client pod as `peer.address`; the echo server
// received the waypoint's span as its parent.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand, waitFor } from '../exec.ts';
import { getInNetns } from '../mesh/observe.ts';
import { ScenarioContext } from '../mesh/scenario.ts';
import { startWaypointMesh } from '../mesh/waypoint-mesh.ts';
import { createAppNamespace, echoPod, readyPod, type MeshPod } from '../mesh/workloads.ts';

const NS = 'traced';
const BACKEND_NS = 'observe';
const QUERY_PORT = 16686;
const scenario = new ScenarioContext<MeshPod>('tracing');
const { kube, pod } = scenario;
const url = `http://echo.${NS}.svc.cluster.local/`;

const MESH = `rootNamespace: istio-system
trustDomain: cluster.local
defaultConfig:
  discoveryAddress: istiod.istio-system.svc:15012
extensionProviders:
- name: otel
  opentelemetry:
    service: jaeger-collector.${BACKEND_NS}.svc.cluster.local
    port: 4317
`;

interface JaegerSpan {
  readonly spanID: string;
  readonly references?: readonly { readonly refType: string; readonly spanID: string }[];
  readonly tags: readonly { readonly key: string; readonly value: unknown }[];
  readonly processID: string;
}
interface JaegerTrace {
  readonly traceID: string;
  readonly spans: readonly JaegerSpan[];
  readonly processes: Readonly<Record<string, { readonly serviceName: string }>>;
}

const hex = (n: number): string =>
  Array.from({ length: n }, () => Math.floor(Math.random() * 16).toString(16)).join('');

async function jaegerTraces(service: string): Promise<readonly JaegerTrace[]> {
  const body = await getInNetns(
    pod('jaeger').netns,
    QUERY_PORT,
    `/api/traces?service=${encodeURIComponent(service)}&lookback=1h&limit=100`,
  );
  if (body === undefined) return [];
  return (JSON.parse(body) as { data?: JaegerTrace[] | null }).data ?? [];
}

/** A GET from the client with `traceparent`; the echo server's answer (it reports the traceparent it got). */
async function tracedGet(traceparent: string): Promise<{ traceparent?: string }> {
  const r = await runCommand(
    [
      'ip',
      'netns',
      'exec',
      pod('client').netns,
      'curl',
      '-sf',
      '--max-time',
      '10',
      '-H',
      `traceparent: ${traceparent}`,
      url,
    ],
    { allowFailure: true },
  );
  return r.code === 0 ? (JSON.parse(r.stdout) as { traceparent?: string }) : {};
}

describe('tracing through a waypoint to a real Jaeger on a 2-node local cluster', () => {
  beforeAll(async () => {
    await startWaypointMesh(scenario, {
      cluster: { name: 'tracing', slot: 152 },
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
    // Jaeger outside the mesh: its OTLP receiver and query API listen on the pod's address.
    await createAppNamespace(c, BACKEND_NS, ['jaeger'], false);
    await c.client.create(`/api/v1/namespaces/${BACKEND_NS}/pods`, {
      ...(echoPod('jaeger', {
        namespace: BACKEND_NS,
        node: 'node-1',
        image: 'jaegertracing/jaeger:1.75.0',
        env: { JAEGER_LISTEN_HOST: '0.0.0.0' },
        containerPorts: [4317, QUERY_PORT],
      }) as Record<string, unknown>),
    });
    await c.client.create(`/api/v1/namespaces/${BACKEND_NS}/services`, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'jaeger-collector', namespace: BACKEND_NS },
      spec: {
        selector: { app: 'jaeger' },
        ports: [{ name: 'grpc-otlp', port: 4317, targetPort: 4317, appProtocol: 'grpc' }],
      },
    });
    scenario.pods.set('jaeger', await readyPod(c, BACKEND_NS, 'jaeger', { enrolled: false }));
    await waitFor(
      "Jaeger's query API answering",
      async () =>
        (await getInNetns(pod('jaeger').netns, QUERY_PORT, '/api/services')) === undefined ? undefined : true,
      { timeoutMs: 120_000, intervalMs: 1_000 },
    );
    await c.client.mergePatch('/api/v1/namespaces/istio-system/configmaps/istio', { data: { mesh: MESH } });
    await c.client.create('/apis/telemetry.istio.io/v1/namespaces/istio-system/telemetries', {
      apiVersion: 'telemetry.istio.io/v1',
      kind: 'Telemetry',
      metadata: { name: 'mesh-default', namespace: 'istio-system' },
      spec: { tracing: [{ providers: [{ name: 'otel' }], randomSamplingPercentage: 100 }] },
    });
    scenario.logSetupTime();
  }, 600_000);

  afterAll(async () => {
    await scenario.cluster?.stop();
    scenario.logWallTime();
  }, 180_000);

  it("exports the waypoint's span to Jaeger as the client span's child, and the echo server sees it as parent", async () => {
    const traceId = hex(32);
    const clientSpan = hex(16);
    // The first requests may precede the tracing config reaching the waypoint: send until the
    // echo server gets a traceparent that is not the client's own (the waypoint's span).
    const seen = await waitFor(
      'a traceparent from the waypoint at the echo server',
      async () => {
        const answer = await tracedGet(`00-${traceId}-${clientSpan}-01`);
        const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(answer.traceparent ?? '');
        return m !== null && m[2] !== clientSpan ? { trace: m[1], span: m[2] ?? '' } : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 1_000 },
    );
    expect(seen.trace).toBe(traceId);
    const found = await waitFor(
      `the waypoint's span ${seen.span} in Jaeger under waypoint.${NS}`,
      async () => {
        for (const t of await jaegerTraces(`waypoint.${NS}`)) {
          const span = t.spans.find(s => s.spanID === seen.span);
          if (span !== undefined) return { trace: t, span };
        }
        return undefined;
      },
      { timeoutMs: 90_000, intervalMs: 2_000 },
    );
    const { trace, span } = found;
    expect(trace.traceID).toBe(traceId);
    expect(span.references).toContainEqual(
      expect.objectContaining({ refType: 'CHILD_OF', spanID: clientSpan }),
    );
    expect(trace.processes[span.processID]?.serviceName).toBe(`waypoint.${NS}`);
    const tag = (key: string): unknown => span.tags.find(t => t.key === key)?.value;
    expect(tag('http.status_code')).toBe(200);
    expect(tag('peer.address')).toBe(pod('client').ip);
    expect(String(tag('upstream_address'))).toBe(`${pod('echo').ip}:8080`);
    expect(tag('upstream_cluster')).toBe(`inbound-vip|80|http|echo.${NS}.svc.cluster.local`);
  }, 300_000);
});
