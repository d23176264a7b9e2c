// Cluster tier: gRPC through a waypoint (issue 20, scenario 11) on a 2-node local cluster (name
// `grpcstrm`, slot 111). The namespace's Services use the waypoint istiod deploys for the Gateway
// `waypoint`: client ztunnel -> waypoint -> server ztunnel, each hop HBONE mTLS, with HTTP/2
// (h2c) inside the tunnels, since the Service port says `appProtocol: grpc`.
//
// The gRPC client (grpc-js, e2e/src/workloads/grpc-client.ts) runs inside the client pod's netns,
// so its calls are the pod's own, captured traffic; the backends are grpc-js servers (image
// ambient-mesh/grpc-echo). The statistical bound is generous; no timing is asserted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand, waitFor } from '../exec.ts';
import { repoRoot } from '../kubelet/images.ts';
import { startMeshCluster } from '../mesh/mesh-cluster.ts';
import type { MetricSample } from '../mesh/observe.ts';
import { ScenarioContext } from '../mesh/scenario.ts';
import {
  GATEWAY_PATH,
  readyWaypoint,
  waypointConfigChange,
  waypointGateway,
  waypointMetrics,
  type WaypointPod,
} from '../mesh/waypoint.ts';
import {
  createAppNamespace,
  echoPod,
  inEveryZtunnelConfig,
  readyPod,
  serviceClusterIp,
  type MeshPod,
} from '../mesh/workloads.ts';
import { GRPC_ECHO_PORT } from '../workloads/grpc-echo-service.ts';

const NS = 'l7g';
const GRPC_IMAGE = 'ambient-mesh/grpc-echo:0.1.0';
const GRPCROUTE_PATH = `/apis/gateway.networking.k8s.io/v1/namespaces/${NS}/grpcroutes`;
const scenario = new ScenarioContext<MeshPod>('l7g');
const { log, kube, pod } = scenario;
let waypoint: WaypointPod;
let waypointName = '';
let vip = '';

const host = (name: string): string => `${name}.${NS}.svc.cluster.local`;

interface UnaryResult {
  readonly codes: Record<string, number>;
  readonly versions: Record<string, number>;
  readonly errors: string[];
}

interface BidiResult {
  readonly code: number;
  readonly details: string;
  readonly replies: { text: string; version?: string; seq?: number }[];
  readonly trailers: Record<string, unknown>;
}

/** Runs the gRPC client inside the client pod's netns against Service `grpc-echo`. */
async function grpcClient(mode: 'unary' | 'bidi', count: number, headers: string[] = []): Promise<string> {
  const r = await runCommand(
    [
      'ip',
      'netns',
      'exec',
      pod('client').netns,
      process.execPath,
      '--conditions=@ambient-mesh/source',
      `${repoRoot()}/e2e/src/workloads/grpc-client.ts`,
      `${vip}:${GRPC_ECHO_PORT}`,
      `${host('grpc-echo')}:${GRPC_ECHO_PORT}`,
      mode,
      String(count),
      ...headers,
    ],
    { allowFailure: true, timeoutMs: 120_000 },
  );
  if (r.code !== 0) throw new Error(`grpc-client ${mode} exited ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}

const unary = async (count: number, headers: string[] = []): Promise<UnaryResult> =>
  JSON.parse(await grpcClient('unary', count, headers)) as UnaryResult;
const bidi = async (rounds: number): Promise<BidiResult> =>
  JSON.parse(await grpcClient('bidi', rounds)) as BidiResult;

/** Waypoint samples of `name` for Service grpc-echo with `grpc_response_status` `status`. */
function grpcSamples(samples: readonly MetricSample[], name: string, status = '0'): MetricSample[] {
  return samples.filter(
    s =>
      s.name === name &&
      s.labels.reporter === 'waypoint' &&
      s.labels.destination_service_name === 'grpc-echo' &&
      s.labels.grpc_response_status === status,
  );
}

const sum = (samples: readonly MetricSample[]): number => samples.reduce((n, s) => n + s.value, 0);

function service(name: string, selector: Record<string, string>): object {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: NS },
    spec: {
      selector,
      ports: [{ name: 'grpc', port: GRPC_ECHO_PORT, targetPort: GRPC_ECHO_PORT, appProtocol: 'grpc' }],
    },
  };
}

describe('gRPC through a waypoint on a 2-node local cluster', () => {
  beforeAll(async () => {
    ({ cluster: scenario.cluster } = await startMeshCluster({ name: 'grpcstrm', slot: 111, nodes: 2 }));
    const c = kube();
    await createAppNamespace(c, NS, ['client', 'grpc-echo']);
    await c.client.mergePatch(`/api/v1/namespaces/${NS}`, {
      metadata: { labels: { 'istio.io/use-waypoint': 'waypoint' } },
    });
    await c.client.create(GATEWAY_PATH(NS), waypointGateway(NS));
    const grpcPod = (name: string, version: string, node: string) =>
      echoPod(name, {
        namespace: NS,
        node,
        image: GRPC_IMAGE,
        serviceAccount: 'grpc-echo',
        labels: { app: 'grpc-echo', version },
        env: { VERSION: version },
        containerPorts: [GRPC_ECHO_PORT],
      });
    const pods: [string, object][] = [
      ['grpc-v1', grpcPod('grpc-v1', 'v1', 'node-1')],
      ['grpc-v2', grpcPod('grpc-v2', 'v2', 'node-1')],
      ['client', echoPod('client', { namespace: NS, node: 'node-0', env: { PORT: '9090' } })],
    ];
    for (const [, p] of pods) await c.client.create(`/api/v1/namespaces/${NS}/pods`, p);
    await c.client.create(`/api/v1/namespaces/${NS}/services`, service('grpc-echo', { app: 'grpc-echo' }));
    for (const v of ['v1', 'v2'])
      await c.client.create(
        `/api/v1/namespaces/${NS}/services`,
        service(`grpc-echo-${v}`, { app: 'grpc-echo', version: v }),
      );
    for (const [name] of pods) scenario.pods.set(name, await readyPod(c, NS, name));
    for (const p of scenario.pods.values()) await inEveryZtunnelConfig(c, p.ip);
    vip = await serviceClusterIp(c, NS, 'grpc-echo');
    waypoint = await readyWaypoint(c.client, c.layout, NS);
    waypointName = waypoint.name;
    log(`waypoint pod ${waypoint.name} on ${waypoint.node} at ${waypoint.ip}; grpc-echo at ${vip}`);
    // The client's ztunnel sends to the waypoint once WDS names it on the Service.
    await waitFor(
      'a gRPC call to grpc-echo counted by the waypoint',
      async () => {
        await unary(1).catch(() => undefined);
        return grpcSamples(await waypointMetrics(waypoint), 'istio_requests_total').length > 0
          ? true
          : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 1_000 },
    );
    scenario.logSetupTime();
  }, 600_000);

  afterAll(async () => {
    // The waypoint's own log (access lines included), for a failed case.
    if (waypointName !== '') {
      const text = await kube()
        .client.get<unknown>(`/api/v1/namespaces/${NS}/pods/${waypointName}/log?tailLines=40`)
        .catch(() => '');
      log(`waypoint log (last 40 lines):\n${typeof text === 'string' ? text : JSON.stringify(text)}`);
    }
    await scenario.cluster?.stop();
    scenario.logWallTime();
  }, 180_000);

  it('unary and bidirectional-streaming calls succeed through the waypoint; its metrics count them with grpc_response_status and messages', async () => {
    const before = await waypointMetrics(waypoint);
    const u = await unary(20);
    log(`20 unary calls: ${JSON.stringify(u)}`);
    expect(u.codes).toEqual({ '0': 20 });
    const b = await bidi(5);
    log(`bidi call: code ${b.code}, ${b.replies.length} replies, trailers ${JSON.stringify(b.trailers)}`);
    expect(b.code).toBe(0);
    // Each reply came back before the next message was sent: streamed both ways through the waypoint.
    expect(b.replies.map(r => [r.text, r.seq])).toEqual([1, 2, 3, 4, 5].map(i => [`round ${i}`, i]));
    // All replies of one call come from one backend; its trailer is relayed.
    expect(new Set(b.replies.map(r => r.version)).size).toBe(1);
    expect(b.trailers['x-rounds']).toBe('5');

    const delta = (after: readonly MetricSample[], name: string): number =>
      sum(grpcSamples(after, name)) - sum(grpcSamples(before, name));
    let after: MetricSample[] = [];
    await waitFor(
      'the 21 calls in the waypoint metrics',
      async () => {
        after = await waypointMetrics(waypoint);
        return delta(after, 'istio_requests_total') >= 21 ? true : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    const requests = grpcSamples(after, 'istio_requests_total');
    log(`waypoint gRPC series: ${JSON.stringify(requests.map(s => s.labels))}`);
    expect(delta(after, 'istio_requests_total')).toBe(21);
    for (const s of requests) {
      expect(s.labels.request_protocol).toBe('grpc');
      expect(s.labels.response_code).toBe('200');
      expect(s.labels.source_workload).toBe('client');
      expect(s.labels.connection_security_policy).toBe('mutual_tls');
    }
    // 20 unary calls (one message each way) and one call of five messages each way.
    expect(delta(after, 'istio_request_messages_total')).toBe(25);
    expect(delta(after, 'istio_response_messages_total')).toBe(25);
  }, 240_000);

  it('a GRPCRoute on the Service applies through the waypoint: a header match picks v2, the rest splits 80/20 by weight', async () => {
    const backend = (name: string, weight?: number) => ({
      name,
      port: GRPC_ECHO_PORT,
      ...(weight === undefined ? {} : { weight }),
    });
    await waypointConfigChange(waypoint, () =>
      kube().client.create(GRPCROUTE_PATH, {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'GRPCRoute',
        metadata: { name: 'grpc-echo', namespace: NS },
        spec: {
          parentRefs: [{ group: '', kind: 'Service', name: 'grpc-echo', port: GRPC_ECHO_PORT }],
          rules: [
            {
              matches: [{ headers: [{ name: 'x-version', value: 'v2' }] }],
              backendRefs: [backend('grpc-echo-v2')],
            },
            { backendRefs: [backend('grpc-echo-v1', 80), backend('grpc-echo-v2', 20)] },
          ],
        },
      }),
    );
    const matched = await unary(20, ['x-version=v2']);
    log(`x-version: v2: ${JSON.stringify(matched)}`);
    expect(matched.codes).toEqual({ '0': 20 });
    expect(matched.versions).toEqual({ v2: 20 });
    const N = 200;
    const split = await unary(N);
    log(`80/20 split over ${N} calls: ${JSON.stringify(split)}`);
    expect(split.codes).toEqual({ '0': N });
    const v1 = (split.versions.v1 ?? 0) / N;
    expect((split.versions.v1 ?? 0) + (split.versions.v2 ?? 0)).toBe(N);
    // ±10 points: over 3.5 standard deviations for 200 calls.
    expect(Math.abs(v1 - 0.8)).toBeLessThanOrEqual(0.1);
  }, 240_000);
});
