// Cluster tier: egress through a waypoint (issue 20, scenario 14, without the TLS origination and
// policy parts) on a 1-node local cluster (name `egress`, slot 119). A plain HTTP server run by
// this test on the cluster's own address in the root netns (`10.211.119.1`, the `am-egress` link
// the cluster made) stands in for a host outside the mesh. ServiceEntries in the app namespace
// (bound to its waypoint by the namespace label `istio.io/use-waypoint`) name it:
// `resolution: DNS` (a `STRICT_DNS` cluster in the waypoint), `DNS_ROUND_ROBIN` (`LOGICAL_DNS`),
// `STATIC` (`EDS`, endpoints without tunnel metadata) and `NONE` (an `ORIGINAL_DST` cluster). A pod's request goes client ztunnel -> waypoint (HBONE) -> the server
// (plain TCP), and the waypoint's metrics count it for the ServiceEntry host. An
// AuthorizationPolicy targeting a ServiceEntry is enforced by the waypoint on that egress traffic.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../exec.ts';
import { ScenarioContext } from '../mesh/scenario.ts';
import { waypointMetrics, waypointRequests, type WaypointPod } from '../mesh/waypoint.ts';
import { startWaypointMesh } from '../mesh/waypoint-mesh.ts';
import { curlInPod, echoPod, type MeshPod } from '../mesh/workloads.ts';

const NS = 'egress';
const SLOT = 119;
const HOST_IP = `10.211.${SLOT}.1`;
const SE_PATH = `/apis/networking.istio.io/v1/namespaces/${NS}/serviceentries`;
const scenario = new ScenarioContext<MeshPod>('egress');
const { log, kube, pod } = scenario;
let waypoint: WaypointPod;
let server: Server | undefined;
let serverPort = 0;
/** The requests the external server saw: path and Host header. */
const seen: { readonly url: string; readonly host: string }[] = [];

/** Sum of `istio_requests_total{reporter="waypoint"}` with code 200 for `host`. */
async function countedFor(host: string): Promise<number> {
  return waypointRequests(await waypointMetrics(waypoint))
    .filter(s => s.labels.destination_service === host && s.labels.response_code === '200')
    .reduce((sum, s) => sum + s.value, 0);
}

/**
 * Requests `url` from the client pod (Host header `host`) until the external server answered one
 * with 200 and the waypoint counted it for `host` (a request that went past the waypoint, before
 * the ServiceEntry took effect, is not counted there).
 */
async function throughWaypoint(url: string, host: string): Promise<void> {
  await waitFor(
    `${url} (Host ${host}) from the client pod answered by the external server and counted by the waypoint`,
    async () => {
      const before = seen.length;
      const code = await curlInPod(pod('client'), url, { headers: { host }, maxTimeS: 5 });
      const hit = seen.slice(before).some(s => s.host === host);
      return code === '200' && hit && (await countedFor(host)) > 0 ? true : undefined;
    },
    { timeoutMs: 120_000, intervalMs: 1_000 },
  );
}

describe('egress through a waypoint to a host outside the mesh, on a 1-node local cluster', () => {
  beforeAll(async () => {
    waypoint = await startWaypointMesh(scenario, {
      cluster: { name: 'egress', slot: SLOT, nodes: 1 },
      namespace: NS,
      serviceAccounts: ['client', 'echo'],
      pods: [
        ['echo', echoPod('echo', { namespace: NS, node: 'node-0', containerPorts: [8080] })],
        ['client', echoPod('client', { namespace: NS, node: 'node-0', env: { PORT: '9090' } })],
      ],
      services: [['echo', { app: 'echo' }]],
      probe: { from: 'client', service: 'echo' },
    });
    // The cluster's address exists once the cluster started: the external server listens there.
    server = createServer((req, res) => {
      seen.push({ url: req.url ?? '', host: req.headers.host ?? '' });
      res.writeHead(200, { 'content-type': 'text/plain' }).end('external\n');
    });
    await new Promise<void>((resolve, reject) => {
      server!.once('error', reject);
      server!.listen(0, HOST_IP, () => {
        resolve();
      });
    });
    serverPort = (server.address() as AddressInfo).port;
    log(`external server on ${HOST_IP}:${serverPort}`);
    scenario.logSetupTime();
  }, 600_000);

  afterAll(async () => {
    if (server !== undefined)
      await new Promise<void>(resolve => {
        server!.close(() => {
          resolve();
        });
        server!.closeAllConnections();
      });
    await scenario.cluster?.stop();
    scenario.logWallTime();
  }, 180_000);

  it('resolution DNS: a pod reaches the external host through the waypoint (STRICT_DNS, plain TCP), counted by the waypoint', async () => {
    await kube().client.create(SE_PATH, {
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name: 'api', namespace: NS },
      spec: {
        hosts: ['api.egress.test'],
        addresses: ['240.240.119.10'],
        ports: [{ number: 80, name: 'http', protocol: 'HTTP', targetPort: serverPort }],
        resolution: 'DNS',
        endpoints: [{ address: HOST_IP }],
      },
    });
    // The VIP is routed nowhere but through the waypoint.
    await throughWaypoint('http://240.240.119.10/dns', 'api.egress.test');
    expect(seen.some(s => s.url === '/dns')).toBe(true);
  }, 180_000);

  it('an AuthorizationPolicy on the ServiceEntry (DENY POST) is enforced by the waypoint: POST 403, GET 200', async () => {
    await kube().client.create(`/apis/security.istio.io/v1/namespaces/${NS}/authorizationpolicies`, {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'api-no-post', namespace: NS },
      spec: {
        targetRefs: [{ group: 'networking.istio.io', kind: 'ServiceEntry', name: 'api' }],
        action: 'DENY',
        rules: [{ to: [{ operation: { methods: ['POST'] } }] }],
      },
    });
    const post = (): Promise<string> =>
      curlInPod(pod('client'), 'http://240.240.119.10/post', {
        headers: { host: 'api.egress.test' },
        method: 'POST',
      });
    await waitFor(
      'POST to api.egress.test denied (403)',
      async () => ((await post()) === '403' ? true : undefined),
      {
        timeoutMs: 60_000,
        intervalMs: 1_000,
      },
    );
    // Once the policy is in force, a denied POST never reaches the external server.
    const before = seen.length;
    expect(await post()).toBe('403');
    expect(seen.slice(before).some(s => s.url === '/post')).toBe(false);
    expect(
      await curlInPod(pod('client'), 'http://240.240.119.10/get', { headers: { host: 'api.egress.test' } }),
    ).toBe('200');
  }, 120_000);

  it('resolution DNS_ROUND_ROBIN (LOGICAL_DNS) and STATIC (EDS without tunnel metadata) reach the external host too', async () => {
    for (const [name, resolution, vip] of [
      ['logical', 'DNS_ROUND_ROBIN', '240.240.119.11'],
      ['fixed', 'STATIC', '240.240.119.12'],
    ] as const) {
      await kube().client.create(SE_PATH, {
        apiVersion: 'networking.istio.io/v1',
        kind: 'ServiceEntry',
        metadata: { name, namespace: NS },
        spec: {
          hosts: [`${name}.egress.test`],
          addresses: [vip],
          ports: [{ number: 80, name: 'http', protocol: 'HTTP', targetPort: serverPort }],
          resolution,
          endpoints: [{ address: HOST_IP }],
        },
      });
      await throughWaypoint(`http://${vip}/${name}`, `${name}.egress.test`);
      log(`${resolution}: ${await countedFor(`${name}.egress.test`)} request(s) counted by the waypoint`);
    }
  }, 240_000);

  it('resolution NONE: the waypoint sends the request to its original destination (ORIGINAL_DST)', async () => {
    await kube().client.create(SE_PATH, {
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name: 'passthrough', namespace: NS },
      spec: {
        hosts: ['passthrough.egress.test'],
        addresses: [HOST_IP],
        ports: [{ number: serverPort, name: 'http', protocol: 'HTTP' }],
        resolution: 'NONE',
      },
    });
    await throughWaypoint(`http://${HOST_IP}:${serverPort}/none`, 'passthrough.egress.test');
    expect(seen.some(s => s.url === '/none')).toBe(true);
  }, 180_000);
});
