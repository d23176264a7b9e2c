// The README's bring-up command: `npm run up` (and `npm run down`).
//
// up:   starts the local cluster (real kube-apiserver and etcd, nodes and pods as network
//       namespaces), installs the mesh through the operator (docs/operator.md: the operator, then
//       Sail's `Istio` and `IstioCNI` (profile ambient) and `ZTunnel` `default`, waited for
//       Ready=True; with `--direct`, from the rendered deploy/ instead), deploys a
//       sample (an echo server and a client in the ambient namespace `sample`), then Prometheus
//       and the console (deploy/prometheus, deploy/console) with a LoadBalancer address the host
//       reaches, and reports what works, with the console's URL and where to look next. With `--waypoint`, also a waypoint for `sample`, a second
//       echo version, an HTTPRoute splitting 90/10 over the two and an L7 AuthorizationPolicy; it
//       prints the split as measured and the waypoint's request counts.
// down: removes the sample and the mesh (the Sail CRs and the operator first, when it installed
//       it), then the cluster and everything it made.
//
// Run through npm, which starts it as `node --conditions=@ambient-mesh/source tools/mesh.ts`.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  clusterLayout,
  ensureGatewayApiCrds,
  gatewayApiCrdObjects,
  inNetnsCommand,
  installMeshWithOperator,
  podNetnsName,
  readyWaypoint,
  requestBatch,
  sailCondition,
  sailReadiness,
  uninstallMeshWithOperator,
  waitFor,
  waypointGateway,
  waypointMetrics,
  waypointRequests,
  weightedRoute,
  ztunnelMetrics,
  ztunnelPods,
  type SailCr,
  type ZtunnelPod,
} from '@ambient-mesh/e2e';
import {
  MESH_NAMESPACE,
  ZTUNNEL_ADMIN_PORT,
  ZTUNNEL_STATS_PORT,
  installAddons,
  installMesh,
  meshStatus,
  mtlsConnections,
  uninstallMesh,
  type MeshStatus,
  type MetricSample,
} from '@ambient-mesh/install';
import { KubeClient } from '@ambient-mesh/kube';

const root = new URL('..', import.meta.url).pathname;
const cli = join(root, 'e2e', 'src', 'cli.ts');
// `npm run up -- --name NAME --slot S` runs a second mesh beside the default one.
const flagValue = (f: string): string | undefined => {
  const i = process.argv.indexOf(f);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const CLUSTER = flagValue('--name') ?? 'local';
const SLOT = flagValue('--slot');
const SAMPLE_NS = 'sample';
const WITH_WAYPOINT = process.argv.includes('--waypoint');
/** The operator installs the mesh unless `--direct` asks for deploy/ (`--operator` is accepted). */
const VIA_OPERATOR = !process.argv.includes('--direct');
const say = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

function clusterCli(args: string[]): number {
  const r = spawnSync(process.execPath, ['--conditions=@ambient-mesh/source', cli, ...args], {
    stdio: 'inherit',
  });
  return r.status ?? 1;
}

function kubeconfigPath(): string {
  return join(clusterLayout(CLUSTER, 0).stateDir, 'kubeconfig');
}

const sample = [
  {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: SAMPLE_NS, labels: { 'istio.io/dataplane-mode': 'ambient' } },
  },
  { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'echo', namespace: SAMPLE_NS } },
  { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'client', namespace: SAMPLE_NS } },
  {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'echo', namespace: SAMPLE_NS },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: 'echo' } },
      template: {
        metadata: { labels: { app: 'echo', version: 'v1' } },
        spec: {
          serviceAccountName: 'echo',
          containers: [
            {
              name: 'echo',
              image: 'ambient-mesh/echo:dev',
              env: [{ name: 'VERSION', value: 'v1' }],
              ports: [{ containerPort: 8080 }],
            },
          ],
        },
      },
    },
  },
  {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'echo', namespace: SAMPLE_NS },
    spec: { selector: { app: 'echo' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
  },
  {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'client', namespace: SAMPLE_NS },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: 'client' } },
      template: {
        metadata: { labels: { app: 'client' } },
        spec: {
          serviceAccountName: 'client',
          containers: [
            {
              name: 'client',
              image: 'ambient-mesh/load-client:dev',
              // 6 s apart, longer than the echo server's 5 s keep-alive: every request opens a new
              // connection, so one opened while the pod was still `pending` (not yet captured,
              // as upstream) is not reused for ever.
              args: [`http://echo.${SAMPLE_NS}.svc.cluster.local/`, '--forever', '--interval-ms', '6000'],
            },
          ],
        },
      },
    },
  },
] as const;

/** `--waypoint`: echo v2, a Service per version, the waypoint, the 90/10 route, an L7 policy. */
const waypointSample: Record<string, unknown>[] = [
  {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'echo-v2', namespace: SAMPLE_NS },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: 'echo', version: 'v2' } },
      template: {
        metadata: { labels: { app: 'echo', version: 'v2' } },
        spec: {
          serviceAccountName: 'echo',
          containers: [
            {
              name: 'echo',
              image: 'ambient-mesh/echo:dev',
              env: [{ name: 'VERSION', value: 'v2' }],
              ports: [{ containerPort: 8080 }],
            },
          ],
        },
      },
    },
  },
  ...['v1', 'v2'].map(v => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: `echo-${v}`, namespace: SAMPLE_NS },
    spec: { selector: { app: 'echo', version: v }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
  })),
  waypointGateway(SAMPLE_NS),
  weightedRoute(SAMPLE_NS, 'echo-split', 'echo', [
    { service: 'echo-v1', weight: 90 },
    { service: 'echo-v2', weight: 10 },
  ]),
  {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name: 'echo-no-admin-post', namespace: SAMPLE_NS },
    spec: {
      targetRefs: [{ kind: 'Service', group: '', name: 'echo' }],
      action: 'DENY',
      rules: [{ to: [{ operation: { methods: ['POST'], paths: ['/admin'] } }] }],
    },
  },
];

/** Adds the waypoint sample, then measures the split and reads the waypoint's metrics. */
async function upWaypoint(client: KubeClient): Promise<number> {
  say(`\nAdding a waypoint for '${SAMPLE_NS}': echo v2, an HTTPRoute 90/10 (v1/v2), DENY POST /admin`);
  await client.mergePatch(`/api/v1/namespaces/${SAMPLE_NS}`, {
    metadata: { labels: { 'istio.io/use-waypoint': 'waypoint' } },
  });
  for (const o of waypointSample) await client.apply(o, { fieldManager: 'ambient-mesh-up', force: true });
  const layout = clusterLayout(CLUSTER, 0);
  const waypoint = await readyWaypoint(client, layout, SAMPLE_NS).catch(() => undefined);
  if (waypoint === undefined) {
    say(`  the waypoint did not become Ready within 120 s: see \`kubectl -n ${SAMPLE_NS} get gateway,pods\``);
    return 1;
  }
  say(`  waypoint pod ${waypoint.name} on ${waypoint.node} (${waypoint.ip}) is Ready`);
  const clientPod = await waitFor(
    'the client pod and echo-v2 enrolled',
    async () => {
      const pods = await client.get<{
        items: { metadata: { name: string; uid: string; annotations?: Record<string, string> } }[];
      }>(`/api/v1/namespaces/${SAMPLE_NS}/pods`);
      const enrolled = pods.items.filter(
        p => p.metadata.annotations?.['ambient.istio.io/redirection'] === 'enabled',
      );
      const c = enrolled.find(p => p.metadata.name.startsWith('client-'));
      return c !== undefined && enrolled.some(p => p.metadata.name.startsWith('echo-v2-')) ? c : undefined;
    },
    { timeoutMs: 120_000, intervalMs: 1_000 },
  ).catch(() => undefined);
  if (clientPod === undefined) {
    say('  the client and echo-v2 pods were not enrolled within 120 s');
    return 1;
  }
  const from = { netns: podNetnsName(layout, clientPod.metadata.uid) };
  const url = `http://echo.${SAMPLE_NS}.svc.cluster.local/`;
  // The route is in force once both versions answer in the proportion it asks for.
  const split = await waitFor(
    'the 90/10 split in force',
    async () => {
      const r = await requestBatch(from, url, 1000);
      const v2 = (r.versions.get('v2') ?? 0) / 1000;
      return r.codes.get(200) === 1000 && v2 > 0.05 && v2 < 0.15 ? r : undefined;
    },
    { timeoutMs: 90_000, intervalMs: 2_000 },
  ).catch(() => undefined);
  const denied = await requestBatch(from, `${url}admin`, 5, { method: 'POST' });
  const samples = waypointRequests(await waypointMetrics(waypoint));
  if (split === undefined) say('  the 90/10 split was not measured within 90 s: see the waypoint logs');
  else {
    const v1 = split.versions.get('v1') ?? 0;
    const v2 = split.versions.get('v2') ?? 0;
    say(
      `  split over 1000 requests from the client pod: v1 ${v1} (${(v1 / 10).toFixed(1)} %), v2 ${v2} (${(v2 / 10).toFixed(1)} %)`,
    );
  }
  say(`  POST /admin: ${[...denied.codes].map(([c, n]) => `${n} x ${c}`).join(', ')} (the L7 DENY)`);
  say('  istio_requests_total{reporter="waypoint"}:');
  for (const s of samples)
    say(
      `    ${s.labels.source_workload ?? '?'} -> ${s.labels.destination_service_name ?? '?'} (${s.labels.destination_workload ?? '?'}) ${s.labels.response_code ?? '?'}: ${s.value}`,
    );
  say(
    [
      '  Where to look:',
      `    kubectl -n ${SAMPLE_NS} get gateway waypoint -o yaml        # Programmed, addresses`,
      `    kubectl -n ${SAMPLE_NS} get httproute echo-split -o yaml   # the weights`,
      `    kubectl -n ${SAMPLE_NS} logs deploy/waypoint               # the waypoint's access log`,
      `    sudo ip netns exec ${waypoint.netns} curl -s http://127.0.0.1:15020/stats/prometheus`,
    ].join('\n'),
  );
  return split === undefined || denied.codes.get(403) !== 5 ? 1 : 0;
}

const CONSOLE_PORT = 20001;
const PROMETHEUS_PORT = 9090;
const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * A LoadBalancer Service beside an addon's own (ClusterIP) one: the local cluster gives it an
 * address on the node fabric, which this machine reaches (docs/local-cluster.md).
 */
function hostService(app: string, port: number): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: `${app}-host`, namespace: MESH_NAMESPACE, labels: { app } },
    spec: { type: 'LoadBalancer', selector: { app }, ports: [{ name: 'http', port, targetPort: port }] },
  };
}

async function hostAddress(client: KubeClient, app: string, port: number): Promise<string> {
  await client.apply(hostService(app, port), { fieldManager: 'ambient-mesh-up', force: true });
  const ip = await waitFor(
    `an address for ${app}-host`,
    async () =>
      (
        await client.get<{ status?: { loadBalancer?: { ingress?: { ip?: string }[] } } }>(
          `/api/v1/namespaces/${MESH_NAMESPACE}/services/${app}-host`,
        )
      ).status?.loadBalancer?.ingress?.[0]?.ip,
    { timeoutMs: 60_000, intervalMs: 500 },
  );
  return `http://${ip}:${port}`;
}

interface ConsoleUrls {
  readonly console: string;
  readonly prometheus: string;
}

/**
 * Builds the console's web files (apps/console/dist/web, which its image serves), installs
 * Prometheus and the console, gives each an address this machine reaches, and waits until the
 * console answers its API from there. Undefined (with the reason said) when a step fails.
 */
async function upConsole(client: KubeClient, nodes: { name: string }[]): Promise<ConsoleUrls | undefined> {
  say("\nBuilding the console's web UI (apps/console, vite build)");
  const build = spawnSync(process.execPath, [join(root, 'node_modules', 'vite', 'bin', 'vite.js'), 'build'], {
    cwd: join(root, 'apps', 'console'),
    stdio: 'inherit',
    timeout: 300_000,
  });
  if (build.status !== 0) {
    say(
      `  the build failed (${build.error?.message ?? `exit ${String(build.status)}`}): see the lines above`,
    );
    return undefined;
  }
  say('\nInstalling Prometheus and the console (deploy/prometheus, deploy/console)');
  try {
    await installAddons(
      { client, nodes },
      {
        progress: line => {
          say(`  ${line}`);
        },
      },
    );
    const urls = {
      console: await hostAddress(client, 'console', CONSOLE_PORT),
      prometheus: await hostAddress(client, 'prometheus', PROMETHEUS_PORT),
    };
    await waitFor(
      `the console answering at ${urls.console}/api/overview`,
      async () => {
        const r = await fetch(`${urls.console}/api/overview`, { signal: AbortSignal.timeout(5_000) });
        return r.ok ? true : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 1_000 },
    );
    say(`  the console answers at ${urls.console}, Prometheus at ${urls.prometheus}`);
    return urls;
  } catch (err) {
    say(`  ${errorText(err)}`);
    say(
      `  see \`kubectl -n ${MESH_NAMESPACE} get pods,svc\` and \`kubectl -n ${MESH_NAMESPACE} logs deploy/console\``,
    );
    return undefined;
  }
}

function printStatus(status: MeshStatus): void {
  for (const c of status.components) say(`  ${c.ready ? 'ready    ' : 'NOT READY'} ${c.name}: ${c.detail}`);
}

/**
 * `npm run up` (the default; `--direct` skips it): the operator and Sail's three CRs, each waited for Ready=True.
 * Whether all three are Ready; undefined (with the reason and where to look said) when the
 * install failed or timed out.
 */
async function installThroughOperator(client: KubeClient): Promise<boolean | undefined> {
  say(
    "\nInstalling the mesh through the operator (deploy/operator): the operator, then Sail's Istio and IstioCNI (profile ambient) and ZTunnel default",
  );
  let crs: SailCr[];
  try {
    crs = await installMeshWithOperator(
      { client },
      {
        progress: line => {
          say(`  ${line}`);
        },
      },
    );
  } catch (err) {
    say(`  ${errorText(err)}`);
    say(
      [
        '  see:',
        `    export KUBECONFIG=${kubeconfigPath()}`,
        '    kubectl get istio,istiocni,ztunnel -o yaml       # conditions: Reconciled, Ready and why',
        '    kubectl -n ambient-mesh-operator logs deploy/ambient-mesh-operator',
        '    kubectl get pods -A -o wide',
      ].join('\n'),
    );
    return undefined;
  }
  for (const cr of crs) {
    const ready = sailCondition(cr, 'Ready')?.status === 'True';
    say(
      `  ${ready ? 'ready    ' : 'NOT READY'} ${cr.kind ?? '?'} ${cr.metadata.name}: ${sailReadiness(cr)}, version ${String(cr.spec.version)}, namespace ${String(cr.spec.namespace)}`,
    );
  }
  return crs.every(cr => sailCondition(cr, 'Ready')?.status === 'True');
}

async function up(): Promise<number> {
  const status = clusterCli(['up', '--name', CLUSTER, ...(SLOT === undefined ? [] : ['--slot', SLOT])]);
  if (status !== 0) return status;
  const client = KubeClient.fromFile(kubeconfigPath());
  const nodes = (await client.get<{ items: { metadata: { name: string } }[] }>('/api/v1/nodes')).items.map(
    n => ({
      name: n.metadata.name,
    }),
  );
  let ztunnelReady: boolean;
  if (VIA_OPERATOR) {
    // The operator's install applies the real Gateway API CRDs (v1.4.1) too.
    const ready = await installThroughOperator(client);
    if (ready === undefined) return 1;
    ztunnelReady = ready;
  } else {
    say('\nInstalling the mesh (deploy/): CRDs, istiod, cni-agent, ztunnel');
    // HTTPRoute needs the real Gateway API CRDs (v1.4.1, cached by tools/install-deps.d/gateway-api.sh),
    // not deploy/'s Gateway-only subset.
    const gatewayApiCrds = WITH_WAYPOINT
      ? gatewayApiCrdObjects(
          await ensureGatewayApiCrds(line => {
            say(`  ${line}`);
          }),
        )
      : undefined;
    const mesh = await installMesh(
      { client, nodes },
      {
        ...(gatewayApiCrds === undefined ? {} : { gatewayApiCrds }),
        progress: line => {
          say(`  ${line}`);
        },
      },
    );
    printStatus(mesh);
    ztunnelReady = mesh.components.find(c => c.name === 'ztunnel')?.ready ?? false;
  }

  say(`\nDeploying the sample in the ambient namespace '${SAMPLE_NS}': echo server and client`);
  for (const o of sample) {
    await client.apply(o, { fieldManager: 'ambient-mesh-up', force: true });
  }
  const enrolled = await waitFor(
    'the sample pods to be enrolled',
    async () => {
      const pods = await client.get<{
        items: {
          metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
        }[];
      }>(`/api/v1/namespaces/${SAMPLE_NS}/pods`);
      // A waypoint (from an earlier `--waypoint`) is in the namespace but not captured, as upstream.
      const workloads = pods.items.filter(
        p => p.metadata.labels?.['gateway.networking.k8s.io/gateway-name'] === undefined,
      );
      const states = workloads.map(p => [
        p.metadata.name,
        p.metadata.annotations?.['ambient.istio.io/redirection'],
      ]);
      return states.length >= 2 && states.every(([, s]) => s === 'enabled') ? states : undefined;
    },
    { timeoutMs: 120_000, intervalMs: 1_000 },
  ).catch(() => undefined);
  if (enrolled === undefined)
    say('  the sample pods were not enrolled within 120 s: see `kubectl -n sample get pods`');
  else for (const [name, state] of enrolled) say(`  ${name}: ambient.istio.io/redirection=${state}`);

  say(
    ztunnelReady
      ? '\nztunnel is running on every node; waiting for a request of the client to the echo server over mTLS'
      : '\nztunnel is not ready on every node, so traffic of enrolled pods may not be carried (see above).',
  );
  const layout = clusterLayout(CLUSTER, 0);
  const seen = await waitFor(
    'an mTLS connection from client to echo in ztunnel metrics',
    async () => {
      for (const pod of await ztunnelPods(client, layout)) {
        const hit = mtlsConnections(await ztunnelMetrics(pod)).find(
          s =>
            s.labels.reporter === 'destination' &&
            s.labels.source_principal?.endsWith(`/ns/${SAMPLE_NS}/sa/client`) === true &&
            s.labels.destination_principal?.endsWith(`/ns/${SAMPLE_NS}/sa/echo`) === true,
        );
        if (hit !== undefined) return { pod, hit };
      }
      return undefined;
    },
    { timeoutMs: 90_000, intervalMs: 1_000 },
  ).catch(() => undefined);
  const pods = await ztunnelPods(client, layout).catch((): ZtunnelPod[] => []);
  if (seen === undefined) {
    say('  no mTLS connection from client to echo was counted within 90 s: see the logs below');
  } else printConnection(seen.pod, seen.hit);

  const urls = await upConsole(client, nodes);
  const example = seen?.pod ?? pods[0];
  say(
    [
      ...(urls === undefined
        ? []
        : [
            '',
            'The console (read-only; its graph and charts come from Prometheus):',
            `  open ${urls.console}/ in a browser on this machine`,
            `  curl ${urls.console}/api/overview          # its API`,
            `  Prometheus: ${urls.prometheus}/targets     # what it scrapes (prometheus.io/* annotations)`,
            '  on another cluster: kubectl -n istio-system port-forward svc/console 20001, then http://localhost:20001/',
          ]),
      '',
      'Where to look next:',
      `  export KUBECONFIG=${kubeconfigPath()}`,
      '  kubectl get pods -A -o wide',
      ...(VIA_OPERATOR
        ? [
            '  kubectl get istio,istiocni,ztunnel                # the Sail CRs: Ready, status, version',
            '  kubectl -n ambient-mesh-operator logs deploy/ambient-mesh-operator',
          ]
        : []),
      `  kubectl -n ${SAMPLE_NS} logs deploy/client           # the client's requests and answers`,
      `  kubectl -n ${SAMPLE_NS} get pods -o yaml | grep ambient.istio.io/redirection`,
      '  kubectl -n istio-system logs ds/ztunnel              # access log: src.identity, dst.identity',
      '  kubectl -n istio-system logs deploy/istiod',
      ...(example === undefined
        ? []
        : [
            `  ztunnel on ${example.node} (pod ${example.name}) listens on localhost inside its pod; from this machine:`,
            `    ${inNetnsCommand(example, ZTUNNEL_ADMIN_PORT, '/config_dump')}    # workloads, services, policies, certificates`,
            `    ${inNetnsCommand(example, ZTUNNEL_STATS_PORT, '/metrics')}        # istio_tcp_* with both principals`,
          ]),
      '  npm run cluster -- status',
      '  npm run down          # removes the sample, the mesh and the cluster',
    ].join('\n'),
  );
  if (seen === undefined || urls === undefined) return 1;
  return WITH_WAYPOINT ? upWaypoint(client) : 0;
}

function printConnection(pod: ZtunnelPod, s: MetricSample): void {
  const l = s.labels;
  say(
    [
      `  OK: ${l.source_workload ?? '?'} -> ${l.destination_workload ?? '?'} over HBONE, connection_security_policy=${l.connection_security_policy ?? '?'}`,
      `    source identity:      ${l.source_principal ?? '?'}`,
      `    destination identity: ${l.destination_principal ?? '?'}`,
      `    (istio_tcp_connections_opened_total=${s.value} reported by the destination ztunnel ${pod.name} on ${pod.node})`,
    ].join('\n'),
  );
}

async function down(): Promise<number> {
  if (existsSync(kubeconfigPath())) {
    try {
      const client = KubeClient.fromFile(kubeconfigPath());
      const nodes = (
        await client.get<{ items: { metadata: { name: string } }[] }>('/api/v1/nodes')
      ).items.map(n => ({ name: n.metadata.name }));
      say('Removing the sample and the mesh');
      await client.delete(`/api/v1/namespaces/${SAMPLE_NS}`).catch(() => undefined);
      await waitFor(
        `namespace ${SAMPLE_NS} gone`,
        async () => ((await client.find(`/api/v1/namespaces/${SAMPLE_NS}`)) === undefined ? true : undefined),
        { timeoutMs: 90_000, intervalMs: 500 },
      ).catch(() => undefined);
      if (
        await uninstallMeshWithOperator(
          { client },
          {
            progress: line => {
              say(`  ${line}`);
            },
          },
        )
      )
        say('  the operator and its CRs are gone');
      await uninstallMesh(
        { client, nodes },
        {
          progress: line => {
            say(`  ${line}`);
          },
        },
      );
      printStatus(await meshStatus({ client, nodes }));
    } catch (err) {
      say(
        `the cluster did not answer (${err instanceof Error ? err.message : String(err)}); removing it anyway`,
      );
    }
  }
  return clusterCli(['down', '--name', CLUSTER]);
}

const command = process.argv[2];
const run = command === 'up' ? up : command === 'down' ? down : undefined;
if (run === undefined) {
  console.error(
    'usage: npm run up [-- --name NAME --slot S --waypoint --direct] | npm run down [-- --name NAME]',
  );
  process.exitCode = 2;
} else {
  process.exitCode = await run();
}
