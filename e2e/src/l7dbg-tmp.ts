import { startMeshCluster } from './mesh/mesh-cluster.ts';
import { waypointGateway, GATEWAY_PATH, readyWaypoint } from './mesh/waypoint.ts';
import { createAppNamespace, echoPod, readyPod } from './mesh/workloads.ts';
const NS = 'l7';
const { cluster: c } = await startMeshCluster({ name: 'l7dbg', slot: 75, nodes: 2 });
await createAppNamespace(c, NS, ['client', 'echo', 'flaky', 'slow']);
await c.client.mergePatch(`/api/v1/namespaces/${NS}`, { metadata: { labels: { 'istio.io/use-waypoint': 'waypoint' } } });
await c.client.create(GATEWAY_PATH(NS), waypointGateway(NS));
const echo = (name: string, node: string, sa: string, labels: Record<string, string>, env = {}) =>
  echoPod(name, { namespace: NS, node, serviceAccount: sa, labels, env, containerPorts: [8080] });
const pods: [string, object][] = [
  ['echo-v1', echo('echo-v1', 'node-1', 'echo', { app: 'echo', version: 'v1' }, { VERSION: 'v1' })],
  ['echo-v2', echo('echo-v2', 'node-1', 'echo', { app: 'echo', version: 'v2' }, { VERSION: 'v2' })],
  ['flaky', echo('flaky', 'node-1', 'flaky', { app: 'flaky' }, { FAIL_EVERY: '2', VERSION: 'flaky' })],
  ['slow', echo('slow', 'node-0', 'slow', { app: 'slow' }, { DELAY_MS: '2000', VERSION: 'slow' })],
  ['client', echoPod('client', { namespace: NS, node: 'node-0', env: { PORT: '9090' } })],
];
for (const [, p] of pods) await c.client.create(`/api/v1/namespaces/${NS}/pods`, p);
for (const [name, selector] of [
  ['echo', { app: 'echo' }], ['echo-v1', { app: 'echo', version: 'v1' }], ['echo-v2', { app: 'echo', version: 'v2' }],
  ['flaky', { app: 'flaky' }], ['slow', { app: 'slow' }],
] as const)
  await c.client.create(`/api/v1/namespaces/${NS}/services`, {
    apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: NS },
    spec: { selector, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
  });
for (const [name] of pods) console.log(JSON.stringify(await readyPod(c, NS, name)));
console.log(JSON.stringify(await readyWaypoint(c.client, c.layout, NS)));
console.log('READY');
await new Promise(r => setTimeout(r, 2_400_000));
await c.stop();
