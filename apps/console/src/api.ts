/**
 * The console's HTTP API and static file server. Every `/api/*` answer is computed on the
 * server from the informers' snapshot and Prometheus; the browser only draws. The API is
 * read-only (GET and HEAD); bad parameters answer 400 with a stable code, never a crash.
 */
import { readFile } from 'node:fs/promises';
import { errorMessage } from '@ambient-mesh/errors';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';
import { validateAuthorizationPolicy, validatePeerAuthentication } from '@ambient-mesh/policy-engine';
import { dispatch, reply, replyJson, type Route } from '@ambient-mesh/runtime';
import type { Logger } from '@ambient-mesh/runtime';
import { ConsoleErrorCode } from './errors.ts';
import { edgePolicies } from './edge-policies.ts';
import { buildGraph } from './graph.ts';
import { workloadLogs, type PodLogReader } from './logs.ts';
import {
  controlPlaneView,
  namespaceViews,
  serviceViews,
  workloadDetailView,
  workloadViews,
} from './mesh-view.ts';
import {
  METRICS_DURATION_DEFAULT_S,
  METRICS_DURATION_MAX_S,
  METRICS_DURATION_MIN_S,
  metricsRange,
  metricsView,
  type MetricsTarget,
} from './metrics.ts';
import { ztunnelConfigView, type ZtunnelDumpReader } from './ztunnel-config.ts';
import type {
  EdgeRequest,
  ConfigError,
  ConfigObjectView,
  GraphView,
  IstioConfigView,
  MetricsUnavailable,
  OverviewView,
  TrafficFilter,
} from './model.ts';
import {
  l4Queries,
  l7Query,
  parseRateWindow,
  type PrometheusClient,
  type QueryResult,
  type Sample,
} from './prometheus.ts';
import type { MeshSnapshot } from './snapshot.ts';
import { readSyncState, waypointSync, type SyncReader } from './sync-state.ts';
import { workloadTraces, type TracingClient } from './traces.ts';
import { validate } from './validations.ts';
import { waypointViews } from './waypoints.ts';

export interface ApiDeps {
  readonly snapshot: () => MeshSnapshot;
  /** False until every informer listed once: the API answers 503 until then. */
  readonly synced: () => boolean;
  readonly prometheus: PrometheusClient;
  readonly systemNamespace: string;
  readonly logger: Logger;
  /** Pod logs through the apiserver (the merged log view). */
  readonly readLog: PodLogReader;
  /** A ztunnel's `/config_dump` (through a pod port-forward). */
  readonly readZtunnelDump: ZtunnelDumpReader;
  /** The tracing backend (a Jaeger query API); undefined when none is configured. */
  readonly tracing?: TracingClient | undefined;
  /** An istiod pod's `/debug/syncz` (through a pod port-forward to its monitoring port). */
  readonly readSyncz: SyncReader;
  /** Unix milliseconds now (the metrics range ends here); tests fix it. */
  readonly now?: () => number;
}

/** The merged log view reads at most this far back, and this many lines per pod. */
export const LOG_SINCE_DEFAULT_S = 300;
export const LOG_SINCE_MAX_S = 3_600;
export const LOG_TAIL_LINES = 1_000;
/** The Traces tab looks this far back (at most a day) for this many traces. */
export const TRACES_LOOKBACK_DEFAULT_S = 3_600;
export const TRACES_LOOKBACK_MAX_S = 86_400;
export const TRACES_LIMIT = 50;

function badRequest(res: ServerResponse, message: string): void {
  replyJson(res, 400, { code: ConsoleErrorCode.badRequest, message });
}

/**
 * The request shape of `/api/graph/edge/policies`: `method`, `path`, `host` and repeated
 * `header=name:value`; a string is what is wrong with them.
 */
export function edgeRequest(params: URLSearchParams): Partial<EdgeRequest> | string {
  const out: { method?: string; path?: string; host?: string; headers?: Record<string, string> } = {};
  const method = params.get('method');
  if (method !== null && method !== '') {
    if (!/^[A-Za-z]+$/.test(method)) return 'method must be an HTTP method such as GET or POST';
    out.method = method.toUpperCase();
  }
  const path = params.get('path');
  if (path !== null && path !== '') {
    if (!path.startsWith('/')) return 'path must start with / (for example /admin?x=1)';
    out.path = path;
  }
  const host = params.get('host');
  if (host !== null && host !== '') out.host = host;
  const headers = params.getAll('header').filter(h => h !== '');
  if (headers.length > 0) {
    out.headers = {};
    for (const h of headers) {
      const colon = h.indexOf(':');
      if (colon <= 0) return 'header must be name:value (for example header=x-user:alice)';
      out.headers[h.slice(0, colon).trim().toLowerCase()] = h.slice(colon + 1).trim();
    }
  }
  return out;
}

export function overview(snap: MeshSnapshot, systemNamespace: string): OverviewView {
  return { controlPlane: controlPlaneView(snap, systemNamespace), namespaces: namespaceViews(snap) };
}

type Validator = (
  input: unknown,
) =>
  | { readonly ok: true }
  | { readonly ok: false; readonly errors: readonly { path: string; message: string }[] };

/** Converts a config object as istiod would; a malformed one gets its errors, field by field. */
export function configError(kind: string, object: unknown, validator: Validator): ConfigError | undefined {
  const r = validator(object);
  if (r.ok) return undefined;
  const first = r.errors.slice(0, 3).map(e => `${e.path}: ${e.message}`);
  const more = r.errors.length > 3 ? ` (and ${r.errors.length - 3} more)` : '';
  return {
    code: ConsoleErrorCode.configInvalid,
    message: `this ${kind} is malformed and is not applied: ${first.join('; ')}${more}`,
    fields: r.errors.map(e => ({ path: e.path, message: e.message })),
  };
}

export function istioConfig(snap: MeshSnapshot): IstioConfigView {
  const validations = validate(snap);
  const objects: ConfigObjectView[] = [];
  const add = (
    kind: string,
    list: readonly {
      metadata: { name: string; namespace?: string };
      status?: { conditions?: readonly ConfigObjectView['conditions'][number][] };
    }[],
    validator?: Validator,
  ): void => {
    for (const o of list) {
      const namespace = o.metadata.namespace ?? '';
      objects.push({
        kind,
        namespace,
        name: o.metadata.name,
        conditions: o.status?.conditions ?? [],
        validations: validations.filter(
          v => v.kind === kind && v.namespace === namespace && v.name === o.metadata.name,
        ),
        error: validator === undefined ? undefined : configError(kind, o, validator),
      });
    }
  };
  add('AuthorizationPolicy', snap.authorizationPolicies, validateAuthorizationPolicy);
  add('PeerAuthentication', snap.peerAuthentications ?? [], validatePeerAuthentication);
  add('Gateway', snap.gateways);
  return { objects, validations };
}

export async function graph(
  snap: MeshSnapshot,
  prometheus: PrometheusClient,
  options: {
    readonly namespaces: readonly string[];
    readonly window: string;
    readonly showWaypoints: boolean;
    readonly traffic?: TrafficFilter;
  },
): Promise<GraphView> {
  const traffic = options.traffic ?? 'all';
  // Only the filter's queries run: ztunnel's for tcp, the waypoints' for http (as Kiali does).
  const none = Promise.resolve<QueryResult>({ ok: true, samples: [] });
  const [l7, ...l4] = await Promise.all([
    traffic === 'tcp' ? none : prometheus.query(l7Query(options.window)),
    ...l4Queries(options.window).map(q => (traffic === 'http' ? none : prometheus.query(q))),
  ]);
  let metricsUnavailable: MetricsUnavailable | undefined;
  const samples = (r: QueryResult | undefined): readonly Sample[] => {
    if (r === undefined) return [];
    if (r.ok) return r.samples;
    metricsUnavailable ??= { code: r.code, message: r.message };
    return [];
  };
  return buildGraph({
    namespaces: options.namespaces,
    workloads: workloadViews(snap),
    l4: l4.flatMap(r => samples(r)),
    l7: samples(l7),
    metricsUnavailable,
    showWaypoints: options.showWaypoints,
    traffic,
    window: options.window,
  });
}

/** Replies with a view built from Prometheus, logging a warning when its metrics were unavailable. */
function replyMetricsView(
  res: ServerResponse,
  logger: Logger,
  view: { readonly metricsUnavailable?: MetricsUnavailable | undefined },
  warning: string,
): void {
  if (view.metricsUnavailable !== undefined) {
    logger.warn({ code: view.metricsUnavailable.code, reason: view.metricsUnavailable.message }, warning);
  }
  replyJson(res, 200, view);
}

export function apiRoutes(deps: ApiDeps): Route[] {
  const guarded =
    (
      handler: (
        req: IncomingMessage,
        res: ServerResponse,
        url: URL,
        snap: MeshSnapshot,
      ) => void | Promise<void>,
    ) =>
    async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
      if (!deps.synced()) {
        replyJson(res, 503, {
          code: ConsoleErrorCode.notSynced,
          message: 'the console is still listing the cluster; try again in a moment',
        });
        return;
      }
      await handler(req, res, url, deps.snapshot());
    };
  return [
    {
      path: '/api/overview',
      handler: guarded((_q, res, _u, snap) => {
        replyJson(res, 200, overview(snap, deps.systemNamespace));
      }),
    },
    {
      path: '/api/namespaces',
      handler: guarded((_q, res, _u, snap) => {
        replyJson(res, 200, namespaceViews(snap));
      }),
    },
    {
      path: '/api/workloads',
      handler: guarded((_q, res, url, snap) => {
        const ns = url.searchParams.get('namespace') ?? undefined;
        replyJson(res, 200, workloadViews(snap, ns === '' ? undefined : ns));
      }),
    },
    {
      path: '/api/graph',
      handler: guarded(async (_q, res, url, snap) => {
        const namespaces = (url.searchParams.get('namespaces') ?? '')
          .split(',')
          .map(s => s.trim())
          .filter(s => s !== '');
        if (namespaces.length === 0) {
          badRequest(res, 'name at least one namespace: /api/graph?namespaces=sample');
          return;
        }
        const window = parseRateWindow(url.searchParams.get('window') ?? undefined);
        if (window === undefined) {
          badRequest(res, 'window must be a Prometheus duration such as 30s, 1m or 1h');
          return;
        }
        const showWaypoints = url.searchParams.get('waypoints') === 'true';
        const traffic = url.searchParams.get('traffic') ?? 'all';
        if (traffic !== 'all' && traffic !== 'tcp' && traffic !== 'http') {
          badRequest(res, 'traffic must be all, tcp (ztunnel, L4) or http (waypoints, L7)');
          return;
        }
        const view = await graph(snap, deps.prometheus, { namespaces, window, showWaypoints, traffic });
        replyMetricsView(res, deps.logger, view, 'graph without metrics');
      }),
    },
    {
      path: '/api/graph/edge/policies',
      handler: guarded((_q, res, url, snap) => {
        const source = url.searchParams.get('source') ?? '';
        const target = url.searchParams.get('target') ?? '';
        if (!source.includes('/') || !target.includes('/')) {
          badRequest(
            res,
            'name the edge by its graph node ids: /api/graph/edge/policies?source=sample/client&target=sample/echo',
          );
          return;
        }
        const portText = url.searchParams.get('port') ?? '';
        const port = portText === '' ? undefined : Number(portText);
        if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) {
          badRequest(res, 'port must be a destination port number from 1 to 65535');
          return;
        }
        const request = edgeRequest(url.searchParams);
        if (typeof request === 'string') {
          badRequest(res, request);
          return;
        }
        const result = edgePolicies(snap, { source, target, port, request }, deps.systemNamespace);
        if (!result.ok) {
          replyJson(res, 404, { code: ConsoleErrorCode.notFound, message: result.message });
          return;
        }
        replyJson(res, 200, result.view);
      }),
    },
    {
      path: '/api/workload',
      handler: guarded((_q, res, url, snap) => {
        const namespace = url.searchParams.get('namespace') ?? '';
        const name = url.searchParams.get('name') ?? '';
        if (namespace === '' || name === '') {
          badRequest(res, 'name the workload: /api/workload?namespace=sample&name=echo');
          return;
        }
        const view = workloadDetailView(snap, namespace, name);
        if (view === undefined) {
          replyJson(res, 404, {
            code: ConsoleErrorCode.notFound,
            message: `no workload ${namespace}/${name} (check the namespace and the name)`,
          });
          return;
        }
        replyJson(res, 200, view);
      }),
    },
    {
      path: '/api/services',
      handler: guarded((_q, res, url, snap) => {
        const ns = url.searchParams.get('namespace') ?? '';
        replyJson(res, 200, serviceViews(snap, ns === '' ? undefined : ns));
      }),
    },
    {
      path: '/api/metrics',
      handler: guarded(async (_q, res, url, snap) => {
        const kind = url.searchParams.get('kind') ?? 'workload';
        const namespace = url.searchParams.get('namespace') ?? '';
        const name = url.searchParams.get('name') ?? '';
        const direction = url.searchParams.get('direction') ?? 'inbound';
        if (
          (kind !== 'workload' && kind !== 'service' && kind !== 'ztunnel') ||
          namespace === '' ||
          name === ''
        ) {
          badRequest(
            res,
            'name a workload, a service or a ztunnel pod: /api/metrics?kind=workload&namespace=sample&name=echo',
          );
          return;
        }
        if (direction !== 'inbound' && direction !== 'outbound') {
          badRequest(res, 'direction must be inbound or outbound');
          return;
        }
        if (kind !== 'workload' && direction === 'outbound') {
          badRequest(res, `a ${kind} has one metrics view: leave direction out`);
          return;
        }
        const known =
          kind === 'workload'
            ? workloadViews(snap, namespace).some(w => w.name === name)
            : kind === 'service'
              ? snap.services.some(s => s.metadata.namespace === namespace && s.metadata.name === name)
              : controlPlaneView(snap, deps.systemNamespace).ztunnels.some(
                  z => z.namespace === namespace && z.name === name,
                );
        if (!known) {
          replyJson(res, 404, {
            code: ConsoleErrorCode.notFound,
            message: `no ${kind} ${namespace}/${name} (check the namespace and the name)`,
          });
          return;
        }
        const durationText = url.searchParams.get('duration') ?? String(METRICS_DURATION_DEFAULT_S);
        const duration = Number(durationText);
        if (
          !Number.isInteger(duration) ||
          duration < METRICS_DURATION_MIN_S ||
          duration > METRICS_DURATION_MAX_S
        ) {
          badRequest(
            res,
            `duration must be a number of seconds from ${METRICS_DURATION_MIN_S} to ${METRICS_DURATION_MAX_S}`,
          );
          return;
        }
        const window = parseRateWindow(url.searchParams.get('window') ?? undefined);
        if (window === undefined) {
          badRequest(res, 'window must be a Prometheus duration such as 30s, 1m or 1h');
          return;
        }
        const target: MetricsTarget = { kind, namespace, name, direction };
        const view = await metricsView(
          deps.prometheus,
          target,
          metricsRange(duration, (deps.now?.() ?? Date.now()) / 1000, window),
        );
        replyMetricsView(res, deps.logger, view, 'metrics charts without metrics');
      }),
    },
    {
      path: '/api/ztunnels',
      handler: guarded((_q, res, _u, snap) => {
        replyJson(res, 200, controlPlaneView(snap, deps.systemNamespace).ztunnels);
      }),
    },
    {
      path: '/api/ztunnel',
      handler: guarded(async (_q, res, url, snap) => {
        const namespace = url.searchParams.get('namespace') ?? '';
        const name = url.searchParams.get('name') ?? '';
        const pod = controlPlaneView(snap, deps.systemNamespace).ztunnels.find(
          z => z.namespace === namespace && z.name === name,
        );
        if (pod === undefined) {
          replyJson(res, 404, {
            code: ConsoleErrorCode.notFound,
            message: `no ztunnel pod ${namespace}/${name} (the ztunnels are listed at /api/ztunnels)`,
          });
          return;
        }
        const filterNs = url.searchParams.get('filterNamespace') ?? '';
        const search = (url.searchParams.get('search') ?? '').trim();
        const filter = {
          namespace: filterNs === '' ? undefined : filterNs,
          thisNode: url.searchParams.get('thisNode') === 'true',
          search: search === '' ? undefined : search,
        };
        let dump: { ok: true; text: string } | { ok: false; message: string };
        try {
          dump = { ok: true, text: await deps.readZtunnelDump(pod.namespace, pod.name) };
        } catch (err) {
          dump = { ok: false, message: errorMessage(err) };
        }
        const view = ztunnelConfigView(pod, dump, filter);
        if (view.error !== undefined) deps.logger.warn(view.error, 'cannot read a ztunnel config dump');
        replyJson(res, 200, view);
      }),
    },
    {
      path: '/api/istio-config',
      handler: guarded((_q, res, _u, snap) => {
        replyJson(res, 200, istioConfig(snap));
      }),
    },
    {
      path: '/api/waypoints',
      handler: guarded(async (_q, res, _u, snap) => {
        const views = waypointViews(snap);
        if (views.length === 0) {
          replyJson(res, 200, views);
          return;
        }
        const state = await readSyncState(snap, deps.systemNamespace, deps.readSyncz);
        for (const e of state.errors) deps.logger.warn(e, 'cannot read the xDS sync state of an istiod');
        replyJson(
          res,
          200,
          views.map(v => ({ ...v, sync: waypointSync(v.proxyPods, v.namespace, state) })),
        );
      }),
    },
    {
      path: '/api/logs',
      handler: guarded(async (_q, res, url, snap) => {
        const namespace = url.searchParams.get('namespace') ?? '';
        const workload = url.searchParams.get('workload') ?? '';
        if (namespace === '' || workload === '') {
          badRequest(res, 'name the workload: /api/logs?namespace=sample&workload=echo');
          return;
        }
        const sinceText = url.searchParams.get('since') ?? String(LOG_SINCE_DEFAULT_S);
        const since = Number(sinceText);
        if (!Number.isInteger(since) || since <= 0 || since > LOG_SINCE_MAX_S) {
          badRequest(res, `since must be a number of seconds from 1 to ${LOG_SINCE_MAX_S}`);
          return;
        }
        const view = await workloadLogs(snap, deps.readLog, namespace, workload, {
          sinceSeconds: since,
          tailLines: LOG_TAIL_LINES,
        });
        if (view === undefined) {
          replyJson(res, 404, {
            code: ConsoleErrorCode.notFound,
            message: `no pod of workload ${namespace}/${workload} (check the namespace and the name)`,
          });
          return;
        }
        for (const e of view.errors) deps.logger.warn(e, 'cannot read a pod log');
        replyJson(res, 200, view);
      }),
    },
    {
      path: '/api/traces',
      handler: guarded(async (_q, res, url, snap) => {
        const namespace = url.searchParams.get('namespace') ?? '';
        const workload = url.searchParams.get('workload') ?? '';
        if (namespace === '' || workload === '') {
          badRequest(res, 'name the workload: /api/traces?namespace=sample&workload=echo');
          return;
        }
        const lookback = Number(url.searchParams.get('lookback') ?? String(TRACES_LOOKBACK_DEFAULT_S));
        if (!Number.isInteger(lookback) || lookback < 60 || lookback > TRACES_LOOKBACK_MAX_S) {
          badRequest(res, `lookback must be a number of seconds from 60 to ${TRACES_LOOKBACK_MAX_S}`);
          return;
        }
        if (!workloadViews(snap, namespace).some(w => w.name === workload)) {
          replyJson(res, 404, {
            code: ConsoleErrorCode.notFound,
            message: `no workload ${namespace}/${workload} (check the namespace and the name)`,
          });
          return;
        }
        const view = await workloadTraces(snap, deps.tracing, namespace, workload, {
          lookbackSeconds: lookback,
          limit: TRACES_LIMIT,
        });
        if (view.tracingUnavailable?.code === 'TRACING_UNAVAILABLE')
          deps.logger.warn(view.tracingUnavailable, 'traces without a tracing backend');
        replyJson(res, 200, view);
      }),
    },
    {
      path: '/healthz/ready',
      handler: (_q, res) => {
        if (deps.synced()) reply(res, 200, 'ready\n');
        else reply(res, 503, 'not synced\n');
      },
    },
  ];
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
  '.ttf': 'font/ttf',
  '.json': 'application/json',
};

/**
 * Serves the built frontend from `root`; unknown paths get `index.html` (client-side routes).
 * Paths escaping `root` answer 404.
 */
export function staticHandler(root: string) {
  const base = normalize(root + sep);
  return async (res: ServerResponse, url: URL): Promise<void> => {
    let rel: string;
    try {
      rel = decodeURIComponent(url.pathname);
    } catch {
      reply(res, 400, 'bad path\n');
      return;
    }
    const file = normalize(join(base, rel));
    if (!file.startsWith(base)) {
      reply(res, 404, 'not found\n');
      return;
    }
    for (const candidate of rel.endsWith('/')
      ? [join(file, 'index.html')]
      : [file, join(base, 'index.html')]) {
      try {
        const body = await readFile(candidate);
        res.writeHead(200, {
          'content-type': CONTENT_TYPES[extname(candidate)] ?? 'application/octet-stream',
          'content-length': body.length,
          'cache-control': candidate.includes(`${sep}assets${sep}`)
            ? 'public, max-age=31536000, immutable'
            : 'no-cache',
        });
        res.end(body);
        return;
      } catch {
        // next candidate
      }
    }
    reply(res, 404, `the console's web files are missing under ${root} (run the build)\n`);
  };
}

/** One handler for the whole console: API and health routes, else the static files. */
export function consoleHandler(routes: readonly Route[], webRoot: string, logger: Logger) {
  const api = dispatch(routes, logger);
  const files = staticHandler(webRoot);
  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    if (url.pathname.startsWith('/api/') || url.pathname.startsWith('/healthz/')) {
      await api(req, res, url);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      reply(res, 405, 'the console is read-only\n');
      return;
    }
    await files(res, url);
  };
}
