/**
 * L7 through a waypoint, written once for the cluster scenarios and `npm run up -- --waypoint`:
 * the waypoint Gateway (class `istio-waypoint`, as `istioctl waypoint generate` writes it), an
 * HTTPRoute splitting a Service by weight, waiting for the waypoint pod, measuring a split by
 * sending a batch of requests from inside a pod, and the waypoint's own metrics.
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { KubeClient } from '@ambient-mesh/kube';
import { runCommand, waitFor } from '../exec.ts';
import { podNetnsName, type ClusterLayout } from '../layout.ts';
import { getInNetns, parsePrometheus, type MetricSample } from './observe.ts';

export const WAYPOINT_STATS_PORT = 15020;
export const GATEWAY_PATH = (ns: string): string =>
  `/apis/gateway.networking.k8s.io/v1/namespaces/${ns}/gateways`;
export const HTTPROUTE_PATH = (ns: string): string =>
  `/apis/gateway.networking.k8s.io/v1/namespaces/${ns}/httproutes`;
export const VIRTUALSERVICE_PATH = (ns: string): string =>
  `/apis/networking.istio.io/v1/namespaces/${ns}/virtualservices`;
export const DESTINATIONRULE_PATH = (ns: string): string =>
  `/apis/networking.istio.io/v1/namespaces/${ns}/destinationrules`;

/** A waypoint Gateway for the Services of `namespace` (`istio.io/waypoint-for: service`). */
export function waypointGateway(namespace: string, name = 'waypoint'): Record<string, unknown> {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name, namespace, labels: { 'istio.io/waypoint-for': 'service' } },
    spec: {
      gatewayClassName: 'istio-waypoint',
      listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }],
    },
  };
}

export interface Backend {
  readonly service: string;
  readonly weight: number;
}

/** An HTTPRoute attached to Service `parent` (port `port`) sending to `backends` by weight. */
export function weightedRoute(
  namespace: string,
  name: string,
  parent: string,
  backends: readonly Backend[],
  port = 80,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name, namespace },
    spec: {
      parentRefs: [{ group: '', kind: 'Service', name: parent, port }],
      rules: [{ backendRefs: backends.map(b => ({ name: b.service, port, weight: b.weight })), ...extra }],
    },
  };
}

export interface WaypointPod {
  readonly name: string;
  readonly ip: string;
  readonly netns: string;
  readonly node: string;
}

/** Waits until the Gateway is Programmed and its Deployment's pod is Ready; returns the pod. */
export async function readyWaypoint(
  client: KubeClient,
  layout: ClusterLayout,
  namespace: string,
  name = 'waypoint',
  timeoutMs = 120_000,
): Promise<WaypointPod> {
  await waitFor(
    `waypoint ${namespace}/${name} Programmed`,
    async () => {
      const gw = await client.get<{ status?: { conditions?: { type: string; status: string }[] } }>(
        `${GATEWAY_PATH(namespace)}/${name}`,
      );
      return gw.status?.conditions?.some(c => c.type === 'Programmed' && c.status === 'True') === true
        ? true
        : undefined;
    },
    { timeoutMs, intervalMs: 1_000 },
  );
  const selector = encodeURIComponent(`gateway.networking.k8s.io/gateway-name=${name}`);
  const podsPath = `/api/v1/namespaces/${namespace}/pods?labelSelector=${selector}`;
  return waitFor(
    `waypoint ${namespace}/${name} pod Ready`,
    async () => {
      const pods = await client.get<{ items: V1Pod[] }>(podsPath);
      const p = pods.items.find(
        x =>
          x.metadata?.deletionTimestamp === undefined &&
          x.status?.conditions?.some(c => c.type === 'Ready' && c.status === 'True') === true,
      );
      if (p?.status?.podIP === undefined) return undefined;
      return {
        name: p.metadata?.name ?? '',
        ip: p.status.podIP,
        netns: podNetnsName(layout, p.metadata?.uid ?? ''),
        node: p.spec?.nodeName ?? '',
      };
    },
    { timeoutMs, intervalMs: 1_000 },
  ).catch(async (err: unknown) => {
    // Say why: the pods' container states and the end of their logs.
    const pods = await client.get<{ items: V1Pod[] }>(podsPath).catch(() => ({ items: [] as V1Pod[] }));
    const details: string[] = [];
    for (const p of pods.items) {
      const podName = p.metadata?.name ?? '';
      const log = await client
        .get<unknown>(`/api/v1/namespaces/${namespace}/pods/${podName}/log?tailLines=20`)
        .then(t => (typeof t === 'string' ? t : JSON.stringify(t)))
        .catch(() => '');
      details.push(`${podName}: ${JSON.stringify(p.status?.containerStatuses ?? p.status?.phase)}\n${log}`);
    }
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n${details.join('\n')}`, {
      cause: err,
    });
  });
}

/** The waypoint's Prometheus samples (its 15020 `/stats/prometheus`); [] when it does not answer. */
export async function waypointMetrics(pod: { readonly netns: string }): Promise<MetricSample[]> {
  const text = await getInNetns(pod.netns, WAYPOINT_STATS_PORT, '/stats/prometheus');
  return text === undefined ? [] : parsePrometheus(text);
}

/** `istio_requests_total{reporter="waypoint"}` samples. */
export function waypointRequests(samples: readonly MetricSample[]): MetricSample[] {
  return samples.filter(s => s.name === 'istio_requests_total' && s.labels.reporter === 'waypoint');
}

export interface BatchResult {
  /** Requests by HTTP status (0: no answer). */
  readonly codes: ReadonlyMap<number, number>;
  /** 200 answers by the echo `version` in the body. */
  readonly versions: ReadonlyMap<string, number>;
  readonly total: number;
  /** Each request's total time (s), in the order the answers came. */
  readonly times: readonly number[];
  /** 200 answers' times (s). */
  readonly okTimes: readonly number[];
}

export interface BatchOptions {
  readonly method?: string;
  /** Per-request limit (s), default 10. */
  readonly maxTimeS?: number;
  /** Requests at once (curl `--parallel`, one connection each); default 1 (one kept-alive connection). */
  readonly parallel?: number;
  /** `Connection: close`: every request on a new connection (a new tunnel through the mesh). */
  readonly close?: boolean;
  /** curl `--rate`, e.g. `20/s`. */
  readonly rate?: string;
  /** Request headers sent with every request (e.g. `authorization`). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Limit of the whole curl run (ms), default 60 s. */
  readonly timeoutMs?: number;
}

/**
 * Sends `count` requests (method `method`) to `url` with one curl run inside `from`'s netns (by
 * default one connection, kept alive, so each request is routed on its own by the waypoint), and
 * counts the answers by status and by echo version. With `parallel`, bodies are discarded.
 */
export async function requestBatch(
  from: { readonly netns: string },
  url: string,
  count: number,
  options: BatchOptions = {},
): Promise<BatchResult> {
  const sep = url.includes('?') ? '&' : '?';
  const parallel = options.parallel ?? 1;
  const r = await runCommand(
    [
      'ip',
      'netns',
      'exec',
      from.netns,
      'curl',
      '-s',
      '--max-time',
      String(options.maxTimeS ?? 10),
      '-X',
      options.method ?? 'GET',
      ...(parallel > 1 ? ['--parallel', '--parallel-immediate', '--parallel-max', String(parallel)] : []),
      ...(options.close === true ? ['-H', 'Connection: close'] : []),
      ...Object.entries(options.headers ?? {}).flatMap(([k, v]) => ['-H', `${k}: ${v}`]),
      ...(options.rate === undefined ? [] : ['--rate', options.rate]),
      '-w',
      '\n@@code=%{http_code} time=%{time_total}\n',
      ...(parallel > 1 ? ['-o', '/dev/null'] : []),
      `${url}${sep}i=[1-${count}]`,
    ],
    { allowFailure: true, timeoutMs: options.timeoutMs ?? 60_000 },
  );
  const codes = new Map<number, number>();
  const versions = new Map<string, number>();
  const times: number[] = [];
  const okTimes: number[] = [];
  let body: string[] = [];
  let total = 0;
  for (const line of r.stdout.split('\n')) {
    const m = /^@@code=(\d+) time=([\d.]+)$/.exec(line);
    if (m === null) {
      body.push(line);
      continue;
    }
    total += 1;
    const code = Number(m[1]);
    codes.set(code, (codes.get(code) ?? 0) + 1);
    times.push(Number(m[2]));
    if (code === 200) okTimes.push(Number(m[2]));
    const version = /"version":"([^"]*)"/.exec(body.join('\n'))?.[1];
    if (code === 200 && version !== undefined) versions.set(version, (versions.get(version) ?? 0) + 1);
    body = [];
  }
  return { codes, versions, total, times, okTimes };
}

/** The median of `values` (0 for none). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** `<type>/<name>` -> version of the resources the waypoint holds (its admin `/config_dump`). */
export async function waypointConfigVersions(pod: { readonly netns: string }): Promise<Map<string, string>> {
  const text = await getInNetns(pod.netns, 15000, '/config_dump');
  const dump = JSON.parse(text ?? '{}') as Record<string, { name: string; version: string }[] | undefined>;
  const out = new Map<string, string>();
  for (const type of ['listeners', 'routes', 'clusters'])
    for (const r of dump[type] ?? []) out.set(`${type}/${r.name}`, r.version);
  return out;
}

/**
 * Applies `change`, then waits until the waypoint holds, for each of `affected`, a new version of
 * a resource whose `<type>/<name>` key it accepts (default: any one new version).
 */
export async function waypointConfigChange(
  pod: { readonly netns: string },
  change: () => Promise<void>,
  affected: readonly ((key: string) => boolean)[] = [() => true],
): Promise<void> {
  const before = await waypointConfigVersions(pod);
  await change();
  await waitFor(
    'a new configuration in the waypoint',
    async () => {
      const after = await waypointConfigVersions(pod);
      const changed = [...after].filter(([key, version]) => before.get(key) !== version).map(([key]) => key);
      return affected.every(a => changed.some(a)) ? true : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 500 },
  );
}

/**
 * Creates the AuthorizationPolicy `deny-admin-post` in `namespace` (the waypoint of Service `echo`
 * denies POST /admin) and waits until a POST to `${url}/admin` from `from` is answered 403.
 */
export async function denyAdminPost(
  client: KubeClient,
  namespace: string,
  from: { readonly netns: string },
  url: string,
): Promise<void> {
  await client.create(`/apis/security.istio.io/v1/namespaces/${namespace}/authorizationpolicies`, {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name: 'deny-admin-post', namespace },
    spec: {
      targetRefs: [{ kind: 'Service', group: '', name: 'echo' }],
      action: 'DENY',
      rules: [{ to: [{ operation: { methods: ['POST'], paths: ['/admin'] } }] }],
    },
  });
  await waitFor(
    'POST /admin denied by the waypoint',
    async () =>
      (await requestBatch(from, `${url}/admin`, 1, { method: 'POST' })).codes.get(403) === 1
        ? true
        : undefined,
    { timeoutMs: 30_000, intervalMs: 500 },
  );
}
