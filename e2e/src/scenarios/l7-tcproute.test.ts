// Cluster tier: TCPRoute through a waypoint, and an HTTPRoute whose parent is a ServiceEntry
// (issues 18/19) on a 2-node local cluster (name `tcproute`, slot 168). Every Service of the
// namespace uses the waypoint istiod deploys for the Gateway `waypoint` (namespace label
// `istio.io/use-waypoint`).
//
// TCP: the Services `tcp-echo`, `tcp-echo-v1` and `tcp-echo-v2` have one port named `tcp`
// (9000 -> the echo server's 8080), so the waypoint handles them as opaque TCP (`tcp_proxy`):
// curl's HTTP/1.1 bytes are relayed, not parsed. A TCPRoute (gateway.networking.k8s.io/v1alpha2)
// on `tcp-echo` splits connections 80/20 between the two versions; each request is its own
// connection (`Connection: close`), so each is one weighted pick. The bounds are generous. The
// waypoint counts those connections in `istio_tcp_*{reporter="waypoint"}` on its 15020.
//
// Sniffing: the Service `auto-echo` has one port named `web` (no protocol: upstream's "auto"), so
// istiod programs an HTTP chain matched on `application_protocols` and a TCP chain for it. curl's
// HTTP/1.1 goes through the HTTP chain (`istio_requests_total`); bytes that are not HTTP go through
// the TCP chain to the same echo server (`istio_tcp_*`), which answers them 400 itself.
//
// ServiceEntry parent: a ServiceEntry (bound by the namespace label) names a plain HTTP server run
// by this test on the cluster's own address (`10.211.168.1`); an HTTPRoute with
// `parentRefs: [{group: networking.istio.io, kind: ServiceEntry}]` adds a request header and
// sends to the entry's host (`Hostname` backendRef): the server sees the header.
import { createServer } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../exec.ts';
import { getInNetns } from '../mesh/observe.ts';
import { ScenarioContext } from '../mesh/scenario.ts';
import { listenOn, type ListeningServer } from '../mesh/external-server.ts';
import {
  GATEWAY_PATH,
  HTTPROUTE_PATH,
  requestBatch,
  waypointMetrics,
  type WaypointPod,
} from '../mesh/waypoint.ts';
import { startWaypointMesh } from '../mesh/waypoint-mesh.ts';
import { curlInPod, echoPod, httpCode, serviceClusterIp, type MeshPod } from '../mesh/workloads.ts';
import { firstBytesOf } from './netns-python.ts';

const NS = 'tcpr';
const SLOT = 168;
const HOST_IP = `10.211.${SLOT}.1`;
const SE_VIP = `240.240.${SLOT}.10`;
const SE_HOST = 'ext.tcpr.test';
const TCP_PORT = 9000;
const TCPROUTE_PATH = `/apis/gateway.networking.k8s.io/v1alpha2/namespaces/${NS}/tcproutes`;
const SE_PATH = `/apis/networking.istio.io/v1/namespaces/${NS}/serviceentries`;
const CONNECTIONS = 200;
const AUTO_PORT = 9100;
const scenario = new ScenarioContext<MeshPod>('tcpr');
const { log, kube, pod } = scenario;
let waypoint: WaypointPod;
let server: ListeningServer | undefined;
let serverPort = 0;
/** What the external server saw: path and the `x-se-route` header. */
const seen: { readonly url: string; readonly header: string }[] = [];

interface Condition {
  readonly type: string;
  readonly status: string;
  readonly reason: string;
  readonly observedGeneration?: number;
}

interface RouteStatus {
  readonly metadata?: { readonly generation?: number };
  readonly status?: {
    readonly parents?: {
      readonly parentRef: { readonly group?: string; readonly kind?: string; readonly name: string };
      readonly controllerName: string;
      readonly conditions?: readonly Condition[];
    }[];
  };
}

const tcpUrl = (svc: string): string => `http://${svc}.${NS}.svc.cluster.local:${TCP_PORT}/`;

function tcpService(name: string, selector: Record<string, string>): object {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: NS },
    spec: { selector, ports: [{ name: 'tcp', port: TCP_PORT, targetPort: 8080 }] },
  };
}

function tcpRoute(name: string, parentRef: object, backends: readonly [string, number][]): object {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1alpha2',
    kind: 'TCPRoute',
    metadata: { name, namespace: NS },
    spec: {
      parentRefs: [parentRef],
      rules: [{ backendRefs: backends.map(([svc, weight]) => ({ name: svc, port: TCP_PORT, weight })) }],
    },
  };
}

/** Waits until our controller's parent entry of the route has `Accepted` and `ResolvedRefs` as wanted. */
async function routeConditions(
  path: string,
  want: { readonly accepted: string; readonly resolved: string; readonly reason: string },
): Promise<NonNullable<NonNullable<RouteStatus['status']>['parents']>[number]> {
  return waitFor(
    `${path}: Accepted=${want.accepted}, ResolvedRefs=${want.resolved} (${want.reason})`,
    async () => {
      const r = await kube().client.find<RouteStatus>(path);
      const p = r?.status?.parents?.find(x => x.controllerName === 'istio.io/gateway-controller');
      const accepted = p?.conditions?.find(c => c.type === 'Accepted');
      const resolved = p?.conditions?.find(c => c.type === 'ResolvedRefs');
      return accepted?.status === want.accepted &&
        resolved?.status === want.resolved &&
        resolved.reason === want.reason &&
        resolved.observedGeneration === r?.metadata?.generation
        ? p
        : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 500 },
  );
}

interface DumpChain {
  readonly name: string;
  readonly applicationProtocols?: readonly string[];
  readonly cluster?: string;
  readonly weightedClusters?: readonly { name: string; weight: number }[];
}

/** The waypoint's filter chain `name` from its admin `/config_dump`. */
async function waypointChain(name: string): Promise<DumpChain | undefined> {
  const text = await getInNetns(waypoint.netns, 15000, '/config_dump');
  const dump = JSON.parse(text ?? '{}') as { listeners?: { filterChains?: DumpChain[] }[] };
  for (const l of dump.listeners ?? []) for (const c of l.filterChains ?? []) if (c.name === name) return c;
  return undefined;
}

const chainName = (svc: string): string => `inbound-vip|${TCP_PORT}|tcp|${svc}.${NS}.svc.cluster.local`;

describe('TCPRoute and ServiceEntry-parent HTTPRoute through a waypoint on a 2-node local cluster', () => {
  beforeAll(async () => {
    const echo = (name: string, version: string) =>
      echoPod(name, {
        namespace: NS,
        node: 'node-1',
        serviceAccount: 'echo',
        labels: { app: 'echo', version },
        env: { VERSION: version },
        containerPorts: [8080],
      });
    waypoint = await startWaypointMesh(scenario, {
      cluster: { name: 'tcproute', slot: SLOT },
      namespace: NS,
      serviceAccounts: ['client', 'echo'],
      pods: [
        ['echo-v1', echo('echo-v1', 'v1')],
        ['echo-v2', echo('echo-v2', 'v2')],
        ['client', echoPod('client', { namespace: NS, node: 'node-0', env: { PORT: '9090' } })],
      ],
      services: [['echo', { app: 'echo' }]],
      probe: { from: 'client', service: 'echo' },
    });
    const c = kube();
    await c.client.create(`/api/v1/namespaces/${NS}/services`, tcpService('tcp-echo', { app: 'echo' }));
    for (const v of ['v1', 'v2'])
      await c.client.create(
        `/api/v1/namespaces/${NS}/services`,
        tcpService(`tcp-echo-${v}`, { app: 'echo', version: v }),
      );
    // The waypoint serves the TCP Services once WDS binds them: their chains appear.
    await waitFor(
      'the waypoint to hold the TCP Services’ chains',
      async () => ((await waypointChain(chainName('tcp-echo-v2'))) !== undefined ? true : undefined),
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    const external = createServer((req, res) => {
      const h = req.headers['x-se-route'];
      seen.push({ url: req.url ?? '', header: Array.isArray(h) ? h.join(',') : (h ?? '') });
      res.writeHead(200, { 'content-type': 'text/plain' }).end('external\n');
    });
    server = await listenOn(external, HOST_IP);
    serverPort = server.port;
    log(`external server on ${HOST_IP}:${serverPort}`);
    scenario.logSetupTime();
  }, 600_000);

  afterAll(async () => {
    await server?.close();
    await scenario.cluster?.stop();
    scenario.logWallTime();
  }, 180_000);

  it(`splits ${CONNECTIONS} opaque TCP connections about 80/20 by TCPRoute weight; the route is Accepted with ResolvedRefs`, async () => {
    await kube().client.create(
      TCPROUTE_PATH,
      tcpRoute('echo-split', { group: '', kind: 'Service', name: 'tcp-echo', port: TCP_PORT }, [
        ['tcp-echo-v1', 80],
        ['tcp-echo-v2', 20],
      ]),
    );
    const parent = await routeConditions(`${TCPROUTE_PATH}/echo-split`, {
      accepted: 'True',
      resolved: 'True',
      reason: 'ResolvedRefs',
    });
    expect(parent.parentRef).toMatchObject({ kind: 'Service', name: 'tcp-echo' });
    const chain = await waitFor(
      'the waypoint’s tcp-echo chain with weighted clusters',
      async () => {
        const c = await waypointChain(chainName('tcp-echo'));
        return c?.weightedClusters?.length === 2 ? c : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    expect(chain.weightedClusters).toEqual([
      { name: chainName('tcp-echo-v1'), weight: 80 },
      { name: chainName('tcp-echo-v2'), weight: 20 },
    ]);
    const batch = await requestBatch(pod('client'), tcpUrl('tcp-echo'), CONNECTIONS, {
      close: true,
      timeoutMs: 180_000,
    });
    log(`80/20: ${JSON.stringify(Object.fromEntries(batch.versions))} of ${batch.total}`);
    expect(batch.codes.get(200)).toBe(CONNECTIONS);
    const v2 = (batch.versions.get('v2') ?? 0) / CONNECTIONS;
    // Expected 0.2 (binomial sd ≈ 0.028 for 200): a generous bound.
    expect(v2).toBeGreaterThanOrEqual(0.08);
    expect(v2).toBeLessThanOrEqual(0.35);
    expect((batch.versions.get('v1') ?? 0) + (batch.versions.get('v2') ?? 0)).toBe(CONNECTIONS);
    // The waypoint's TCP metrics on 15020: each connection opened, closed and its bytes, per backend.
    const backend = (v: string): string => `tcp-echo-${v}.${NS}.svc.cluster.local`;
    const tcpSeries = async (name: string) =>
      (await waypointMetrics(waypoint)).filter(
        s =>
          s.name === name &&
          s.labels.reporter === 'waypoint' &&
          (s.labels.destination_service === backend('v1') || s.labels.destination_service === backend('v2')),
      );
    const sum = (xs: readonly { value: number }[]): number => xs.reduce((a, x) => a + x.value, 0);
    await waitFor(
      `istio_tcp_connections_closed_total{reporter="waypoint"} to count the ${CONNECTIONS} connections`,
      async () =>
        sum(await tcpSeries('istio_tcp_connections_closed_total')) >= CONNECTIONS ? true : undefined,
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    const opened = await tcpSeries('istio_tcp_connections_opened_total');
    expect(sum(opened)).toBe(CONNECTIONS);
    const v1 = opened.find(s => s.labels.destination_service === backend('v1'));
    expect(v1?.labels).toMatchObject({
      reporter: 'waypoint',
      source_workload: 'client',
      source_workload_namespace: NS,
      source_principal: `spiffe://cluster.local/ns/${NS}/sa/client`,
      destination_service: backend('v1'),
      destination_service_name: 'tcp-echo-v1',
      destination_service_namespace: NS,
      destination_workload: 'echo-v1',
      destination_workload_namespace: NS,
      destination_principal: `spiffe://cluster.local/ns/${NS}/sa/echo`,
      request_protocol: 'tcp',
      response_flags: '-',
      connection_security_policy: 'mutual_tls',
    });
    expect(v1?.value ?? 0).toBe(batch.versions.get('v1') ?? 0);
    // Every connection carried a request (received) and its answer (sent).
    expect(sum(await tcpSeries('istio_tcp_received_bytes_total'))).toBeGreaterThan(CONNECTIONS * 50);
    expect(sum(await tcpSeries('istio_tcp_sent_bytes_total'))).toBeGreaterThan(CONNECTIONS * 50);
  }, 300_000);

  it('reports a missing backend as ResolvedRefs=False BackendNotFound; that Service’s connections are refused', async () => {
    expect(await httpCode(pod('client'), tcpUrl('tcp-echo-v2'))).toBe(200);
    await kube().client.create(
      TCPROUTE_PATH,
      tcpRoute('to-nowhere', { group: '', kind: 'Service', name: 'tcp-echo-v2', port: TCP_PORT }, [
        ['nope', 1],
      ]),
    );
    await routeConditions(`${TCPROUTE_PATH}/to-nowhere`, {
      accepted: 'True',
      resolved: 'False',
      reason: 'BackendNotFound',
    });
    await waitFor(
      'connections to tcp-echo-v2 refused by the waypoint',
      async () => ((await httpCode(pod('client'), tcpUrl('tcp-echo-v2'))) === 0 ? true : undefined),
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    await kube().client.delete(`${TCPROUTE_PATH}/to-nowhere`);
    await waitFor(
      'connections to tcp-echo-v2 served again',
      async () => ((await httpCode(pod('client'), tcpUrl('tcp-echo-v2'))) === 200 ? true : undefined),
      { timeoutMs: 30_000, intervalMs: 500 },
    );
  }, 180_000);

  it('counts a TCPRoute attached to the waypoint Gateway in its listener’s attachedRoutes', async () => {
    await kube().client.create(
      TCPROUTE_PATH,
      tcpRoute('on-gateway', { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'waypoint' }, [
        ['tcp-echo-v1', 1],
      ]),
    );
    await routeConditions(`${TCPROUTE_PATH}/on-gateway`, {
      accepted: 'True',
      resolved: 'True',
      reason: 'ResolvedRefs',
    });
    await waitFor(
      'the waypoint Gateway’s listener mesh with attachedRoutes ≥ 1',
      async () => {
        const gw = await kube().client.find<{
          status?: { listeners?: { name: string; attachedRoutes?: number }[] };
        }>(`${GATEWAY_PATH(NS)}/waypoint`);
        const mesh = gw?.status?.listeners?.find(l => l.name === 'mesh');
        return (mesh?.attachedRoutes ?? 0) >= 1 ? true : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
  }, 120_000);

  it('applies an HTTPRoute whose parent is a ServiceEntry: header added, sent to the entry’s host, status for the entry parent', async () => {
    await kube().client.create(SE_PATH, {
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name: 'ext', namespace: NS },
      spec: {
        hosts: [SE_HOST],
        addresses: [SE_VIP],
        ports: [{ number: 80, name: 'http', protocol: 'HTTP', targetPort: serverPort }],
        resolution: 'DNS',
        endpoints: [{ address: HOST_IP }],
      },
    });
    await kube().client.create(HTTPROUTE_PATH(NS), {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: 'ext-route', namespace: NS },
      spec: {
        parentRefs: [{ group: 'networking.istio.io', kind: 'ServiceEntry', name: 'ext', port: 80 }],
        rules: [
          {
            filters: [
              {
                type: 'RequestHeaderModifier',
                requestHeaderModifier: { set: [{ name: 'x-se-route', value: 'applied' }] },
              },
            ],
            backendRefs: [{ group: 'networking.istio.io', kind: 'Hostname', name: SE_HOST, port: 80 }],
          },
        ],
      },
    });
    const parent = await routeConditions(`${HTTPROUTE_PATH(NS)}/ext-route`, {
      accepted: 'True',
      resolved: 'True',
      reason: 'ResolvedRefs',
    });
    expect(parent.parentRef).toMatchObject({
      group: 'networking.istio.io',
      kind: 'ServiceEntry',
      name: 'ext',
    });
    await waitFor(
      `a request to ${SE_HOST} reaching the external server with the route's header`,
      async () => {
        const before = seen.length;
        const code = await curlInPod(pod('client'), `http://${SE_VIP}/via-route`, {
          headers: { host: SE_HOST },
        });
        return code === '200' && seen.slice(before).some(s => s.header === 'applied') ? true : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 1_000 },
    );
  }, 240_000);

  it('sniffs an undeclared port: HTTP/1.1 through the HTTP chain, other bytes through the TCP chain', async () => {
    const host = `auto-echo.${NS}.svc.cluster.local`;
    await kube().client.create(`/api/v1/namespaces/${NS}/services`, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'auto-echo', namespace: NS },
      spec: {
        selector: { app: 'echo', version: 'v1' },
        ports: [{ name: 'web', port: AUTO_PORT, targetPort: 8080 }],
      },
    });
    const httpChain = await waitFor(
      'the waypoint’s auto-echo HTTP chain matched on application_protocols',
      async () => {
        const c = await waypointChain(`inbound-vip|${AUTO_PORT}|http|${host}`);
        return c?.applicationProtocols !== undefined ? c : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    expect([...(httpChain.applicationProtocols ?? [])].sort()).toEqual(['h2c', 'http/1.0', 'http/1.1']);
    const tcpChain = await waypointChain(`inbound-vip|${AUTO_PORT}|tcp|${host}`);
    expect(tcpChain?.applicationProtocols).toBeUndefined();

    // The waypoint's count of `name` for the auto-echo Service (and `extra` labels).
    const count = async (name: string, extra: Record<string, string> = {}): Promise<number> =>
      (await waypointMetrics(waypoint))
        .filter(
          s =>
            s.name === name &&
            s.labels.reporter === 'waypoint' &&
            s.labels.destination_service === host &&
            Object.entries(extra).every(([k, v]) => s.labels[k] === v),
        )
        .reduce((n, s) => n + s.value, 0);
    const requests = (): Promise<number> => count('istio_requests_total', { response_code: '200' });
    const tcpOpened = (): Promise<number> => count('istio_tcp_connections_opened_total');

    // HTTP/1.1: parsed by the waypoint, counted as a request.
    const httpBefore = await requests();
    const tcpBefore = await tcpOpened();
    expect(await httpCode(pod('client'), `http://${host}:${AUTO_PORT}/`)).toBe(200);
    await waitFor(
      'istio_requests_total{reporter="waypoint"} to count the sniffed HTTP request',
      async () => ((await requests()) > httpBefore ? true : undefined),
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    expect(await tcpOpened()).toBe(tcpBefore);

    // Not HTTP: relayed as opaque TCP, first bytes intact; the echo server itself answers 400.
    const vip = await serviceClusterIp(kube(), NS, 'auto-echo');
    const answer = await firstBytesOf(
      pod('client').netns,
      vip,
      AUTO_PORT,
      Buffer.concat([Buffer.from([0x16, 3, 1, 0, 5]), Buffer.from('hello\r\n\r\n')]),
      12,
    );
    expect(answer.toString('latin1')).toBe('HTTP/1.1 400');
    await waitFor(
      'istio_tcp_connections_opened_total{reporter="waypoint"} to count the sniffed TCP connection',
      async () => ((await tcpOpened()) > tcpBefore ? true : undefined),
      { timeoutMs: 30_000, intervalMs: 500 },
    );
  }, 180_000);

  // Last: the Telemetry applies to the whole namespace.
  it('applies a Telemetry override to the waypoint’s TCP metrics (istio.stats before the tcp_proxy)', async () => {
    await kube().client.create(`/apis/telemetry.istio.io/v1/namespaces/${NS}/telemetries`, {
      apiVersion: 'telemetry.istio.io/v1',
      kind: 'Telemetry',
      metadata: { name: 'tcp-tags', namespace: NS },
      spec: {
        metrics: [
          {
            overrides: [
              {
                match: { metric: 'TCP_OPENED_CONNECTIONS' },
                tagOverrides: {
                  dest_port: { operation: 'UPSERT', value: 'destination.port' },
                  source_principal: { operation: 'REMOVE' },
                },
              },
            ],
          },
        ],
      },
    });
    // The config reaches the waypoint after a push: connect until a series shows the new tag.
    const tagged = await waitFor(
      'istio_tcp_connections_opened_total{reporter="waypoint"} with the dest_port tag',
      async () => {
        await httpCode(pod('client'), tcpUrl('tcp-echo-v1'));
        return (await waypointMetrics(waypoint)).find(
          s =>
            s.name === 'istio_tcp_connections_opened_total' &&
            s.labels.reporter === 'waypoint' &&
            s.labels.dest_port === String(TCP_PORT),
        );
      },
      { timeoutMs: 60_000, intervalMs: 1_000 },
    );
    expect(tagged.labels.source_principal).toBeUndefined();
    expect(tagged.labels.destination_service).toBe(`tcp-echo-v1.${NS}.svc.cluster.local`);
    expect(tagged.value).toBeGreaterThanOrEqual(1);
  }, 120_000);
});
