/**
 * Traces linked to workloads, which Kiali cannot do in ambient mode: only waypoints produce spans
 * (ztunnel is L4), under the waypoint's service name (`<waypoint>.<namespace>`), without the
 * caller's or the callee's workload. The console reads them from a Jaeger query API
 * (`GET <TRACING_URL>/api/traces?service=&lookback=&limit=`, what Kiali and Istio's tracing
 * addon use) and resolves each span's ends on the live snapshot:
 *
 * - the **destination**: Envoy's `upstream_address` tag (the pod address the waypoint sent the
 *   request to), else the Service host of `upstream_cluster` (`outbound|80||echo.ns.svc.cluster.local`,
 *   `inbound-vip|80|http|echo.ns.svc.cluster.local`), whose selected workload is taken;
 * - the **source**: the `peer.address` tag (the downstream address: the client pod, since the
 *   waypoint sees the client's own address through HBONE).
 *
 * A workload's traces are the spans of the waypoints whose source or destination is that
 * workload: its inbound calls from the waypoint serving it, its outbound calls from the others. Parsing and resolving are pure; `httpTracing` is the only I/O. Every failure is a
 * typed `tracingUnavailable`, never a throw.
 */
import { errorMessage } from '@ambient-mesh/errors';
import { GatewayClassName } from '@ambient-mesh/mesh-api';
import { MeshIndex, workloadOf } from './mesh-view.ts';
import type { SpanView, TracesView, TracingUnavailable, WorkloadRef } from './model.ts';
import type { MeshSnapshot, PodObject } from './snapshot.ts';

export interface JaegerTag {
  readonly key: string;
  readonly value: unknown;
}

export interface JaegerSpan {
  readonly traceID: string;
  readonly spanID: string;
  readonly operationName: string;
  /** Unix microseconds. */
  readonly startTime: number;
  /** Microseconds. */
  readonly duration: number;
  readonly processID: string;
  readonly tags: readonly JaegerTag[];
}

export interface JaegerTrace {
  readonly traceID: string;
  readonly spans: readonly JaegerSpan[];
  readonly processes: Readonly<Record<string, { readonly serviceName: string }>>;
}

export type TracesResult =
  | { readonly ok: true; readonly traces: readonly JaegerTrace[] }
  | ({ readonly ok: false } & TracingUnavailable);

export interface TraceQuery {
  /** The Jaeger service name, e.g. `waypoint.sample`. */
  readonly service: string;
  readonly lookbackSeconds: number;
  readonly limit: number;
}

export interface TracingClient {
  findTraces(q: TraceQuery): Promise<TracesResult>;
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function unavailable(message: string): { readonly ok: false } & TracingUnavailable {
  return { ok: false, code: 'TRACING_UNAVAILABLE', message };
}

/** Validates a Jaeger `/api/traces` answer (`{ data: [trace], errors }`); malformed spans are skipped. */
export function parseJaegerTraces(body: unknown): TracesResult {
  if (!isRecord(body)) return unavailable('the tracing backend answered something that is not a JSON object');
  if (Array.isArray(body.errors) && body.errors.length > 0 && !Array.isArray(body.data)) {
    const first: unknown = body.errors[0];
    const msg = isRecord(first) && typeof first.msg === 'string' ? first.msg : 'no message';
    return unavailable(`the tracing backend rejected the query: ${msg}`);
  }
  if (!Array.isArray(body.data))
    return unavailable("the tracing backend answered without data (expected Jaeger's /api/traces)");
  const traces: JaegerTrace[] = [];
  for (const t of body.data as unknown[]) {
    if (!isRecord(t) || typeof t.traceID !== 'string' || !Array.isArray(t.spans)) continue;
    const processes: Record<string, { serviceName: string }> = {};
    if (isRecord(t.processes)) {
      for (const [id, p] of Object.entries(t.processes)) {
        if (isRecord(p) && typeof p.serviceName === 'string') processes[id] = { serviceName: p.serviceName };
      }
    }
    const spans: JaegerSpan[] = [];
    for (const s of t.spans as unknown[]) {
      if (
        !isRecord(s) ||
        typeof s.spanID !== 'string' ||
        typeof s.startTime !== 'number' ||
        typeof s.duration !== 'number'
      )
        continue;
      const tags = Array.isArray(s.tags)
        ? (s.tags as unknown[]).flatMap(x =>
            isRecord(x) && typeof x.key === 'string' ? [{ key: x.key, value: x.value }] : [],
          )
        : [];
      spans.push({
        traceID: typeof s.traceID === 'string' ? s.traceID : t.traceID,
        spanID: s.spanID,
        operationName: typeof s.operationName === 'string' ? s.operationName : '',
        startTime: s.startTime,
        duration: s.duration,
        processID: typeof s.processID === 'string' ? s.processID : '',
        tags,
      });
    }
    traces.push({ traceID: t.traceID, spans, processes });
  }
  return { ok: true, traces };
}

export interface HttpTracingOptions {
  /** The Jaeger query base URL (Istio's addon: `http://tracing.istio-system:80/jaeger`). */
  readonly url: string;
  readonly timeoutMs: number;
  readonly fetch?: typeof globalThis.fetch;
}

export function httpTracing(options: HttpTracingOptions): TracingClient {
  const doFetch = options.fetch ?? globalThis.fetch;
  const base = options.url.replace(/\/+$/, '');
  return {
    async findTraces(q) {
      const params = new URLSearchParams({
        service: q.service,
        lookback: `${q.lookbackSeconds}s`,
        limit: String(q.limit),
      });
      let response: Response;
      try {
        response = await doFetch(`${base}/api/traces?${params.toString()}`, {
          signal: AbortSignal.timeout(options.timeoutMs),
        });
      } catch (err) {
        return unavailable(
          `cannot reach the tracing backend at ${base}: ${errorMessage(err)} (check TRACING_URL and that it runs)`,
        );
      }
      let body: unknown;
      try {
        body = await response.json();
      } catch {
        return unavailable(`the tracing backend at ${base} answered HTTP ${response.status} without JSON`);
      }
      if (!response.ok && !isRecord(body)) {
        return unavailable(`the tracing backend at ${base} answered HTTP ${response.status}`);
      }
      const parsed = parseJaegerTraces(body);
      // Jaeger answers 200 with an empty list for a service it has never seen.
      return parsed;
    },
  };
}

function tag(span: JaegerSpan, key: string): string | undefined {
  const t = span.tags.find(x => x.key === key);
  if (t === undefined) return undefined;
  return typeof t.value === 'string' ? t.value : typeof t.value === 'number' ? String(t.value) : undefined;
}

/** The host of an address `ip:port`, `[v6]:port` or a bare IP. */
function hostOf(address: string): string {
  if (address.startsWith('[')) return address.slice(1, address.indexOf(']'));
  const colons = address.split(':').length - 1;
  return colons === 1 ? address.slice(0, address.indexOf(':')) : address;
}

/** `<ns>/<name>` of a Service from an Envoy cluster name ending in its hostname. */
function serviceOfCluster(cluster: string): { namespace: string; name: string } | undefined {
  const host = cluster.split('|').at(-1) ?? '';
  const m = /^([a-z0-9-]+)\.([a-z0-9-]+)\.svc(\.|$)/.exec(host);
  return m === null ? undefined : { name: m[1]!, namespace: m[2]! };
}

export class SpanResolver {
  readonly #byIp = new Map<string, PodObject>();
  readonly #snap: MeshSnapshot;
  readonly #index: MeshIndex;

  constructor(snap: MeshSnapshot) {
    this.#snap = snap;
    this.#index = new MeshIndex(snap);
    for (const p of snap.pods) if (p.status?.podIP !== undefined) this.#byIp.set(p.status.podIP, p);
  }

  #workload(pod: PodObject): WorkloadRef {
    return { namespace: pod.metadata.namespace ?? '', name: workloadOf(pod).name };
  }

  source(span: JaegerSpan): WorkloadRef | undefined {
    const peer = tag(span, 'peer.address');
    const pod = peer === undefined ? undefined : this.#byIp.get(hostOf(peer));
    return pod === undefined ? undefined : this.#workload(pod);
  }

  destination(span: JaegerSpan): WorkloadRef | undefined {
    const upstream = tag(span, 'upstream_address');
    const pod = upstream === undefined ? undefined : this.#byIp.get(hostOf(upstream));
    if (pod !== undefined) return this.#workload(pod);
    const cluster = tag(span, 'upstream_cluster') ?? tag(span, 'upstream_cluster.name');
    const svcRef = cluster === undefined ? undefined : serviceOfCluster(cluster);
    if (svcRef === undefined) return undefined;
    const svc = this.#snap.services.find(
      s => s.metadata.namespace === svcRef.namespace && s.metadata.name === svcRef.name,
    );
    const selector = svc?.spec?.selector;
    if (svc === undefined || selector === undefined || Object.keys(selector).length === 0) return undefined;
    const selected = this.#snap.pods.find(
      p =>
        p.metadata.namespace === svcRef.namespace &&
        Object.entries(selector).every(([k, v]) => p.metadata.labels?.[k] === v),
    );
    return selected === undefined ? undefined : this.#workload(selected);
  }

  /** The waypoint serving a workload's pods, as `<name>.<namespace>` (its spans' service name). */
  waypointService(namespace: string, workload: string): string | undefined {
    const pod = this.#snap.pods.find(
      p => p.metadata.namespace === namespace && workloadOf(p).name === workload,
    );
    const ref = pod === undefined ? undefined : this.#index.waypointForPod(pod);
    return ref?.exists === true ? `${ref.name}.${ref.namespace}` : undefined;
  }
}

/** One span as the page shows it, its ends resolved to workloads. */
export function spanView(trace: JaegerTrace, span: JaegerSpan, resolver: SpanResolver): SpanView {
  const status = Number(tag(span, 'http.status_code'));
  return {
    traceId: span.traceID,
    spanId: span.spanID,
    operation: span.operationName,
    proxy: trace.processes[span.processID]?.serviceName ?? '',
    startMs: Math.floor(span.startTime / 1000),
    durationMs: span.duration / 1000,
    method: tag(span, 'http.method'),
    url: tag(span, 'http.url'),
    statusCode: Number.isInteger(status) && status > 0 ? status : undefined,
    error: tag(span, 'error') === 'true' || span.tags.some(t => t.key === 'error' && t.value === true),
    source: resolver.source(span),
    destination: resolver.destination(span),
  };
}

const same = (a: WorkloadRef | undefined, ns: string, name: string): boolean =>
  a !== undefined && a.namespace === ns && a.name === name;

/** At most this many waypoints are asked for one workload's traces. */
export const MAX_WAYPOINT_SERVICES = 20;

/**
 * A workload's spans: those of the waypoints (the one serving it first: its inbound calls; then
 * every other waypoint: the calls it makes to services they serve) whose source or destination is
 * the workload, newest first. Without a tracing backend, or any waypoint, the view says why.
 */
export async function workloadTraces(
  snap: MeshSnapshot,
  tracing: TracingClient | undefined,
  namespace: string,
  workload: string,
  options: { readonly lookbackSeconds: number; readonly limit: number },
): Promise<TracesView> {
  const resolver = new SpanResolver(snap);
  const own = resolver.waypointService(namespace, workload);
  const services = [
    ...new Set([
      ...(own === undefined ? [] : [own]),
      ...snap.gateways
        .filter(g => g.spec?.gatewayClassName === GatewayClassName.waypoint)
        .map(g => `${g.metadata.name}.${g.metadata.namespace ?? ''}`)
        .sort(),
    ]),
  ].slice(0, MAX_WAYPOINT_SERVICES);
  const base = { namespace, workload, service: own, services };
  if (tracing === undefined) {
    return {
      ...base,
      spans: [],
      tracingUnavailable: {
        code: 'TRACING_NOT_CONFIGURED',
        message: 'no tracing backend is configured: set TRACING_URL to a Jaeger query API',
      },
    };
  }
  if (services.length === 0) {
    return {
      ...base,
      spans: [],
      tracingUnavailable: undefined,
      note: 'no waypoint runs: only waypoints produce spans (ztunnel is L4)',
    };
  }
  const results = await Promise.all(
    services.map(service =>
      tracing.findTraces({ service, lookbackSeconds: options.lookbackSeconds, limit: options.limit }),
    ),
  );
  // The backend is unavailable only when no waypoint's spans could be read.
  const failed = results[0];
  if (failed !== undefined && !failed.ok && results.every(r => !r.ok)) {
    return { ...base, spans: [], tracingUnavailable: { code: failed.code, message: failed.message } };
  }
  const seen = new Set<string>();
  const spans = results
    .flatMap(r => (r.ok ? r.traces : []))
    .flatMap(t => t.spans.map(s => spanView(t, s, resolver)))
    .filter(s => same(s.source, namespace, workload) || same(s.destination, namespace, workload))
    .filter(s => {
      const k = `${s.traceId}/${s.spanId}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    })
    .sort((a, b) => b.startMs - a.startMs || a.spanId.localeCompare(b.spanId));
  return { ...base, spans, tracingUnavailable: undefined };
}
