// Cluster tier: L7 resilience through a waypoint (issue 20, scenarios 4, 5, 6, 7 and 12, and
// request mirroring) on a 2-node local cluster (name `l7m`, slot 106), one cluster shared by the
// file. Every Service of the namespace uses the waypoint istiod deploys for the Gateway `waypoint`
// (namespace label `istio.io/use-waypoint`): client ztunnel -> waypoint -> server ztunnel, each
// hop HBONE mTLS.
// Each case has its own Service, so the DestinationRules and VirtualServices do not meet. The
// HTTP/2 circuit-breaking case drives gRPC (grpc-js client in the client's netns, a grpc-echo
// server holding each call) through the waypoint over h2c.
//
// Traffic is sent by curl inside the client pod's netns (its own, captured traffic). The
// statistical bounds are the issue's; time bounds are generous (a loaded 2-core machine).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand, waitFor } from '../exec.ts';
import { kubectl } from '../mesh/kubectl.ts';
import { ScenarioContext } from '../mesh/scenario.ts';
import {
  DESTINATIONRULE_PATH,
  HTTPROUTE_PATH,
  VIRTUALSERVICE_PATH,
  median,
  readyWaypoint,
  requestBatch,
  waypointConfigChange,
  waypointMetrics,
  waypointRequests,
  type WaypointPod,
} from '../mesh/waypoint.ts';
import { startWaypointMesh } from '../mesh/waypoint-mesh.ts';
import { echoPod, serviceClusterIp, type MeshPod } from '../mesh/workloads.ts';
import { repoRoot } from '../kubelet/images.ts';
import { GRPC_ECHO_PORT } from '../workloads/grpc-echo-service.ts';

const NS = 'l7r';
const scenario = new ScenarioContext<MeshPod>('l7r');
const { log, kube, pod } = scenario;
let waypoint: WaypointPod;

const host = (name: string): string => `${name}.${NS}.svc.cluster.local`;
const svc = (name: string): string => `http://${host(name)}`;
const clusterOf = (name: string): string => `inbound-vip|80|http|${host(name)}`;
const share = (n: number | undefined, total: number): number => (n ?? 0) / total;

async function create(path: string, body: object): Promise<void> {
  await kube().client.create(path, body);
}

function destinationRule(name: string, trafficPolicy: object): object {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name, namespace: NS },
    spec: { host: host(name), trafficPolicy },
  };
}

function faultService(name: string, fault: object): object {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name, namespace: NS },
    spec: { hosts: [host(name)], http: [{ fault, route: [{ destination: { host: host(name) } }] }] },
  };
}

/** The sum of a waypoint counter's samples whose `cluster_name` is `cluster`. */
async function clusterCounter(name: string, cluster: string): Promise<number> {
  return (await waypointMetrics(waypoint))
    .filter(s => s.name === name && s.labels.cluster_name === cluster)
    .reduce((n, s) => n + s.value, 0);
}

/** The body of one GET from the client (through the waypoint); '' when it failed. */
async function bodyOf(url: string): Promise<string> {
  const r = await runCommand(
    ['ip', 'netns', 'exec', pod('client').netns, 'curl', '-s', '--max-time', '10', url],
    {
      allowFailure: true,
    },
  );
  return r.stdout;
}

/** The echo's `maxInFlight`: the most requests it held at once so far, as its body says. */
async function maxInFlightOf(name: string): Promise<number> {
  return waitFor(
    `the body of ${name}`,
    async () => {
      const m = /"maxInFlight":(\d+)/.exec(await bodyOf(`${svc(name)}/`));
      return m === null ? undefined : Number(m[1]);
    },
    { timeoutMs: 20_000, intervalMs: 500 },
  );
}

describe('L7 resilience through a waypoint on a 2-node local cluster', () => {
  beforeAll(async () => {
    const echo = (
      name: string,
      node: string,
      labels: Record<string, string>,
      env: Record<string, string> = {},
    ) =>
      echoPod(name, {
        namespace: NS,
        node,
        serviceAccount: 'echo',
        labels,
        env: { VERSION: name, ...env },
        containerPorts: [8080],
      });
    const pods: [string, object][] = [
      // Holds each request 300 ms, so 20 clients pile up behind the circuit breaker.
      ['cb', echo('cb', 'node-1', { app: 'cb' }, { DELAY_MS: '300' })],
      ['fault', echo('fault', 'node-1', { app: 'fault' })],
      ['od-1', echo('od-1', 'node-1', { app: 'od' })],
      ['od-2', echo('od-2', 'node-0', { app: 'od' })],
      // Answers every request 500: the outlier.
      ['od-3', echo('od-3', 'node-1', { app: 'od' }, { FAIL_EVERY: '1', FAIL_STATUS: '500' })],
      ['echo', echo('echo', 'node-1', { app: 'echo' })],
      // The mirror target: answers every request 500 after 3 s (its body counts the requests).
      [
        'shadow',
        echo(
          'shadow',
          'node-1',
          { app: 'shadow' },
          { FAIL_EVERY: '1', FAIL_STATUS: '500', DELAY_MS: '3000' },
        ),
      ],
      // A gRPC server holding each unary call 2 s (HTTP/2 circuit breaking).
      [
        'gcb',
        echoPod('gcb', {
          namespace: NS,
          node: 'node-1',
          image: 'ambient-mesh/grpc-echo:0.1.0',
          serviceAccount: 'echo',
          labels: { app: 'gcb' },
          env: { VERSION: 'gcb', DELAY_MS: '2000' },
          containerPorts: [GRPC_ECHO_PORT],
        }),
      ],
      ['client', echoPod('client', { namespace: NS, node: 'node-0', env: { PORT: '9090' } })],
    ];
    waypoint = await startWaypointMesh(scenario, {
      cluster: { name: 'l7m', slot: 106 },
      namespace: NS,
      serviceAccounts: ['client', 'echo'],
      pods,
      services: ['cb', 'fault', 'od', 'echo', 'shadow'].map(name => [name, { app: name }] as const),
      probe: { from: 'client', service: 'echo' },
    });
    scenario.logSetupTime();
  }, 600_000);

  afterAll(async () => {
    await scenario.cluster?.stop();
    scenario.logWallTime();
  }, 180_000);

  it('circuit breaking: maxConnections 1 and http1MaxPendingRequests 1 under 20 concurrent clients give 503 UO, and the server never holds more than one request', async () => {
    await waypointConfigChange(
      waypoint,
      () =>
        create(
          DESTINATIONRULE_PATH(NS),
          destinationRule('cb', {
            connectionPool: { tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 1 } },
          }),
        ),
      [key => key === `clusters/${clusterOf('cb')}`],
    );
    const r = await requestBatch(pod('client'), `${svc('cb')}/`, 100, { parallel: 20, maxTimeS: 30 });
    log(`20 concurrent clients: ${JSON.stringify(Object.fromEntries(r.codes))} of ${r.total}`);
    expect(r.total).toBe(100);
    expect(r.codes.get(503) ?? 0).toBeGreaterThan(0);
    expect(r.codes.get(200) ?? 0).toBeGreaterThan(0);
    expect((r.codes.get(200) ?? 0) + (r.codes.get(503) ?? 0)).toBe(100);
    const overflowed = waypointRequests(await waypointMetrics(waypoint))
      .filter(s => s.labels.destination_service_name === 'cb' && s.labels.response_flags === 'UO')
      .reduce((n, s) => n + s.value, 0);
    log(`waypoint: ${overflowed} requests answered 503 UO`);
    expect(overflowed).toBe(r.codes.get(503));
    // Envoy's counter of the pending-requests breaker, on the waypoint's stats port.
    expect(await clusterCounter('envoy_cluster_upstream_rq_pending_overflow', clusterOf('cb'))).toBe(
      r.codes.get(503),
    );
    // The server's own count of requests held at once, read after the load.
    const seen = await maxInFlightOf('cb');
    log(`server cb held at most ${seen} request(s) at once`);
    expect(seen).toBe(1);
  }, 180_000);
  it('HTTP/2 circuit breaking: gRPC calls over http2MaxRequests 2 end UNAVAILABLE (503 UO); the server never holds more than 2', async () => {
    const c = kube();
    const cluster = `inbound-vip|${GRPC_ECHO_PORT}|http|${host('gcb')}`;
    await waypointConfigChange(waypoint, async () => {
      await c.client.create(`/api/v1/namespaces/${NS}/services`, {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'gcb', namespace: NS },
        spec: {
          selector: { app: 'gcb' },
          ports: [{ name: 'grpc', port: GRPC_ECHO_PORT, targetPort: GRPC_ECHO_PORT, appProtocol: 'grpc' }],
        },
      });
      await create(
        DESTINATIONRULE_PATH(NS),
        destinationRule('gcb', { connectionPool: { http: { http2MaxRequests: 2 } } }),
      );
    }, [key => key === `clusters/${cluster}`]);
    const vip = await serviceClusterIp(c, NS, 'gcb');
    const grpcClient = async (mode: 'unary' | 'burst', count: number): Promise<Record<string, unknown>> => {
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
          `${host('gcb')}:${GRPC_ECHO_PORT}`,
          mode,
          String(count),
        ],
        { allowFailure: true, timeoutMs: 120_000 },
      );
      if (r.code !== 0) throw new Error(`grpc-client ${mode} exited ${r.code}: ${r.stderr}`);
      return JSON.parse(r.stdout.trim()) as Record<string, unknown>;
    };
    // The client's ztunnel sends to the waypoint once WDS names it on the new Service.
    await waitFor(
      'a gRPC call to gcb counted by the waypoint',
      async () => {
        await grpcClient('unary', 1).catch(() => undefined);
        return waypointRequests(await waypointMetrics(waypoint)).some(
          s => s.labels.destination_service_name === 'gcb',
        )
          ? true
          : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 1_000 },
    );
    const before = await clusterCounter('envoy_cluster_upstream_rq_pending_overflow', cluster);
    const r = (await grpcClient('burst', 10)) as {
      codes: Record<string, number>;
      maxInFlight: number;
      errors: string[];
    };
    log(`10 concurrent gRPC calls over http2MaxRequests 2: ${JSON.stringify(r)}`);
    const ok = r.codes['0'] ?? 0;
    const unavailable = r.codes['14'] ?? 0;
    expect(ok + unavailable).toBe(10);
    expect(ok).toBeGreaterThanOrEqual(2);
    expect(unavailable).toBeGreaterThan(0);
    expect(r.errors[0]).toBe(
      '14 upstream connect error or disconnect/reset before headers. reset reason: overflow',
    );
    // The server held at most max_requests calls at once.
    expect(r.maxInFlight).toBeLessThanOrEqual(2);
    expect((await clusterCounter('envoy_cluster_upstream_rq_pending_overflow', cluster)) - before).toBe(
      unavailable,
    );
  }, 240_000);

  it('fault injection: a 10 % abort answers 503 to 10 ± 3 % of 1,000 requests; a fixed delay shifts p50 by the delay', async () => {
    const client = pod('client');
    const baseline = await requestBatch(client, `${svc('fault')}/`, 50);
    expect(baseline.codes.get(200)).toBe(50);
    await waypointConfigChange(
      waypoint,
      () =>
        create(
          VIRTUALSERVICE_PATH(NS),
          faultService('fault', { abort: { httpStatus: 503, percentage: { value: 10 } } }),
        ),
      // The route's fault, and the fault filter on the Service's chain (in the listener).
      [key => key === `routes/${clusterOf('fault')}`, key => key === 'listeners/main_internal'],
    );
    const aborted = await requestBatch(client, `${svc('fault')}/`, 1000, { timeoutMs: 180_000 });
    const abortShare = share(aborted.codes.get(503), 1000);
    log(`10 % abort: ${JSON.stringify(Object.fromEntries(aborted.codes))} of ${aborted.total}`);
    expect(aborted.total).toBe(1000);
    expect((aborted.codes.get(200) ?? 0) + (aborted.codes.get(503) ?? 0)).toBe(1000);
    expect(Math.abs(abortShare - 0.1)).toBeLessThanOrEqual(0.03);
    const injected = waypointRequests(await waypointMetrics(waypoint))
      .filter(s => s.labels.destination_service_name === 'fault' && s.labels.response_flags === 'FI')
      .reduce((n, s) => n + s.value, 0);
    expect(injected).toBe(aborted.codes.get(503));

    const DELAY_S = 0.5;
    await waypointConfigChange(
      waypoint,
      () =>
        kube().client.mergePatch(`${VIRTUALSERVICE_PATH(NS)}/fault`, {
          spec: {
            http: [
              {
                fault: { delay: { fixedDelay: '500ms', percentage: { value: 100 } } },
                route: [{ destination: { host: host('fault') } }],
              },
            ],
          },
        }),
      [key => key === `routes/${clusterOf('fault')}`],
    );
    const delayed = await requestBatch(client, `${svc('fault')}/`, 50, { timeoutMs: 120_000 });
    expect(delayed.codes.get(200)).toBe(50);
    const shift = median(delayed.okTimes) - median(baseline.okTimes);
    log(
      `p50 ${median(baseline.okTimes).toFixed(3)} s -> ${median(delayed.okTimes).toFixed(3)} s with a ${DELAY_S} s delay (shift ${shift.toFixed(3)} s)`,
    );
    // Every delayed request waits about the delay at least (timers may fire a ms early); the
    // median moves by about the delay.
    expect(Math.min(...delayed.okTimes)).toBeGreaterThanOrEqual(DELAY_S * 0.95);
    expect(shift).toBeGreaterThanOrEqual(DELAY_S * 0.8);
    expect(shift).toBeLessThanOrEqual(DELAY_S + 1);
  }, 300_000);

  it('outlier detection: of three endpoints, the one answering 500 is ejected after 3 in a row, within the interval; later success ≥ 99 %', async () => {
    const client = pod('client');
    const INTERVAL_S = 5;
    await waypointConfigChange(
      waypoint,
      () =>
        create(
          DESTINATIONRULE_PATH(NS),
          destinationRule('od', {
            outlierDetection: {
              consecutive5xxErrors: 3,
              interval: `${INTERVAL_S}s`,
              baseEjectionTime: '3m',
              maxEjectionPercent: 50,
            },
          }),
        ),
      [key => key === `clusters/${clusterOf('od')}`],
    );
    const EJECTIONS = 'envoy_cluster_outlier_detection_ejections_enforced_total';
    expect(await clusterCounter(EJECTIONS, clusterOf('od'))).toBe(0);
    const started = Date.now();
    const first = await requestBatch(client, `${svc('od')}/`, 30);
    const firstMs = Date.now() - started;
    const ejections = await clusterCounter(EJECTIONS, clusterOf('od'));
    log(
      `first 30 requests in ${firstMs} ms: ${JSON.stringify(Object.fromEntries(first.codes))}; ${ejections} ejection(s)`,
    );
    // LEAST_REQUEST (Istio's default) over three, one request at a time: the bad endpoint answers
    // about every third request, and is ejected after its third 500 in a row.
    expect(first.codes.get(500) ?? 0).toBeGreaterThanOrEqual(3);
    expect(first.codes.get(500) ?? 0).toBeLessThanOrEqual(4);
    expect(ejections).toBe(1);
    // Ejected while the batch ran, so within the interval of its first 500.
    expect(firstMs).toBeLessThan(INTERVAL_S * 1000);
    const later = await requestBatch(client, `${svc('od')}/`, 500, { timeoutMs: 120_000 });
    log(`later: ${JSON.stringify(Object.fromEntries(later.codes))} of ${later.total}`);
    expect(later.total).toBe(500);
    expect(share(later.codes.get(200), 500)).toBeGreaterThanOrEqual(0.99);
    // Both good endpoints served; the bad one (ejected for 3 minutes) did not.
    expect(new Set(later.versions.keys())).toEqual(new Set(['od-1', 'od-2']));
  }, 240_000);

  it('rate limit via the documented EnvoyFilter pattern: 429 beyond the bucket; the headers are right', async () => {
    const client = pod('client');
    const path = `/apis/networking.istio.io/v1alpha3/namespaces/${NS}/envoyfilters`;
    // Istio's local rate limiting task, pointed at the waypoint: a bucket of 4 per minute per
    // filter chain (each Service of the waypoint has its own), enabled and enforced for all.
    const envoyFilter = {
      apiVersion: 'networking.istio.io/v1alpha3',
      kind: 'EnvoyFilter',
      metadata: { name: 'filter-local-ratelimit', namespace: NS },
      spec: {
        targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'waypoint' }],
        configPatches: [
          {
            applyTo: 'HTTP_FILTER',
            match: {
              context: 'SIDECAR_INBOUND',
              listener: {
                filterChain: { filter: { name: 'envoy.filters.network.http_connection_manager' } },
              },
            },
            patch: {
              operation: 'INSERT_BEFORE',
              value: {
                name: 'envoy.filters.http.local_ratelimit',
                typed_config: {
                  '@type': 'type.googleapis.com/udpa.type.v1.TypedStruct',
                  type_url:
                    'type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit',
                  value: {
                    stat_prefix: 'http_local_rate_limiter',
                    token_bucket: { max_tokens: 4, tokens_per_fill: 4, fill_interval: '60s' },
                    filter_enabled: {
                      runtime_key: 'local_rate_limit_enabled',
                      default_value: { numerator: 100, denominator: 'HUNDRED' },
                    },
                    filter_enforced: {
                      runtime_key: 'local_rate_limit_enforced',
                      default_value: { numerator: 100, denominator: 'HUNDRED' },
                    },
                    response_headers_to_add: [
                      {
                        append_action: 'OVERWRITE_IF_EXISTS_OR_ADD',
                        header: { key: 'x-local-rate-limit', value: 'true' },
                      },
                    ],
                  },
                },
              },
            },
          },
        ],
      },
    };
    await waypointConfigChange(waypoint, () => create(path, envoyFilter), [
      key => key === 'listeners/main_internal',
    ]);
    try {
      const r = await requestBatch(client, `${svc('echo')}/`, 10);
      log(`10 requests over a bucket of 4: ${JSON.stringify(Object.fromEntries(r.codes))}`);
      expect(r.total).toBe(10);
      expect(r.codes.get(200)).toBe(4);
      expect(r.codes.get(429)).toBe(6);
      const limited = await runCommand(
        ['ip', 'netns', 'exec', client.netns, 'curl', '-s', '-i', '--max-time', '10', `${svc('echo')}/`],
        { allowFailure: true },
      );
      const [head = '', body = ''] = limited.stdout.split(/\r?\n\r?\n/);
      log(`a limited answer: ${head.split(/\r?\n/)[0]} / ${body}`);
      expect(head).toMatch(/^HTTP\/1\.1 429/);
      expect(head.toLowerCase()).toMatch(/^x-local-rate-limit: true\r?$/m);
      expect(body).toBe('local_rate_limited');
      const flagged = waypointRequests(await waypointMetrics(waypoint))
        .filter(
          s =>
            s.labels.destination_service_name === 'echo' &&
            s.labels.response_flags === 'RL' &&
            s.labels.response_code === '429',
        )
        .reduce((n, s) => n + s.value, 0);
      expect(flagged).toBe(7);
      // Envoy's `<stat_prefix>.http_local_rate_limit.rate_limited`, in its Prometheus form.
      const limitedCount = (await waypointMetrics(waypoint))
        .filter(s => s.name === 'envoy_http_local_rate_limiter_http_local_rate_limit_rate_limited')
        .reduce((n, s) => n + s.value, 0);
      expect(limitedCount).toBe(7);
    } finally {
      await waypointConfigChange(waypoint, async () => {
        await kube().client.delete(`${path}/filter-local-ratelimit`);
      }, [key => key === 'listeners/main_internal']);
    }
  }, 180_000);

  it('request mirroring: an HTTPRoute RequestMirror copies every request to the shadow Service; the client gets the main answers, not delayed by the slow failing shadow', async () => {
    const client = pod('client');
    /** How many requests the shadow has received (its failure body counts them). */
    const shadowServed = async (): Promise<number> => {
      const r = await runCommand(
        ['ip', 'netns', 'exec', client.netns, 'curl', '-s', '--max-time', '30', `${svc('shadow')}/`],
        { allowFailure: true, timeoutMs: 40_000 },
      );
      const m = /failing request (\d+)/.exec(r.stdout);
      if (m === null) throw new Error(`unexpected answer from the shadow: ${r.stdout}`);
      return Number(m[1]);
    };
    const before = await shadowServed();
    const route = {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: 'echo-mirror', namespace: NS },
      spec: {
        parentRefs: [{ group: '', kind: 'Service', name: 'echo', port: 80 }],
        rules: [
          {
            filters: [{ type: 'RequestMirror', requestMirror: { backendRef: { name: 'shadow', port: 80 } } }],
            backendRefs: [{ name: 'echo', port: 80 }],
          },
        ],
      },
    };
    await waypointConfigChange(waypoint, () => create(HTTPROUTE_PATH(NS), route), [
      key => key === `routes/${clusterOf('echo')}`,
    ]);
    try {
      const r = await requestBatch(client, `${svc('echo')}/`, 20);
      log(
        `20 mirrored requests: ${JSON.stringify(Object.fromEntries(r.codes))}, slowest ${Math.max(...r.okTimes).toFixed(3)} s`,
      );
      expect(r.codes.get(200)).toBe(20);
      expect([...r.versions.keys()]).toEqual(['echo']);
      // The shadow holds each copy 3 s: a main answer waiting for its copy would take that long.
      expect(Math.max(...r.okTimes)).toBeLessThan(3);
      // Each count request is one more request at the shadow.
      let polls = 0;
      const seen = await waitFor(
        'the 20 copies at the shadow',
        async () => {
          polls += 1;
          const n = await shadowServed();
          return n >= before + 20 + polls ? n : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 500 },
      );
      log(`shadow received ${seen - before - polls} copies`);
      expect(seen).toBe(before + 20 + polls);
    } finally {
      await waypointConfigChange(waypoint, async () => {
        await kube().client.delete(`${HTTPROUTE_PATH(NS)}/echo-mirror`);
      }, [key => key === `routes/${clusterOf('echo')}`]);
    }
  }, 180_000);

  it('a waypoint restart under load (kubectl rollout restart) keeps ≥ 99 % of requests succeeding', async () => {
    const client = pod('client');
    const requestsToEcho = async (): Promise<number> =>
      waypointRequests(await waypointMetrics(waypoint))
        .filter(s => s.labels.destination_service_name === 'echo')
        .reduce((n, s) => n + s.value, 0);
    const before = await requestsToEcho();
    // 20 requests a second, each on a new connection (a new tunnel), for up to 75 s.
    let loadDone = 0;
    const load = requestBatch(client, `${svc('echo')}/`, 1500, {
      close: true,
      rate: '20/s',
      maxTimeS: 5,
      timeoutMs: 180_000,
    }).finally(() => {
      loadDone = Date.now();
    });
    await waitFor(
      'the load reaching the waypoint',
      async () => ((await requestsToEcho()) >= before + 20 ? true : undefined),
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    const old = waypoint.name;
    const restart = await kubectl(kube(), ['-n', NS, 'rollout', 'restart', 'deployment/waypoint']);
    expect(restart.code, restart.stderr).toBe(0);
    const status = await kubectl(
      kube(),
      ['-n', NS, 'rollout', 'status', 'deployment/waypoint', '--timeout=150s'],
      { timeoutMs: 160_000 },
    );
    expect(status.code, status.stderr || status.stdout).toBe(0);
    await waitFor(
      `the old waypoint pod ${old} gone`,
      async () => {
        const pods = await kube().client.get<{ items: { metadata?: { name?: string } }[] }>(
          `/api/v1/namespaces/${NS}/pods?labelSelector=${encodeURIComponent('gateway.networking.k8s.io/gateway-name=waypoint')}`,
        );
        return pods.items.some(p => p.metadata?.name === old) ? undefined : true;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    const rolledOut = Date.now();
    waypoint = await readyWaypoint(kube().client, kube().layout, NS);
    log(`waypoint restarted: ${old} -> ${waypoint.name}`);
    const r = await load;
    log(
      `under the restart: ${JSON.stringify(Object.fromEntries(r.codes))} of ${r.total}; load ended ${((loadDone - rolledOut) / 1000).toFixed(1)} s after the old pod was gone`,
    );
    // The restart happened while the load ran.
    expect(loadDone).toBeGreaterThan(rolledOut);
    expect(r.total).toBe(1500);
    expect(share(r.codes.get(200), r.total)).toBeGreaterThanOrEqual(0.99);
    // The new waypoint serves.
    expect(
      waypointRequests(await waypointMetrics(waypoint)).some(
        s => s.labels.destination_service_name === 'echo',
      ),
    ).toBe(true);
  }, 300_000);
});
