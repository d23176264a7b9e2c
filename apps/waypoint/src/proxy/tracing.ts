/**
 * Request tracing, as Envoy's HTTP connection manager does with the OpenTelemetry tracer
 * (`tracing.provider: envoy.tracers.opentelemetry`):
 *
 * - the incoming context is extracted from W3C `traceparent`/`tracestate`, else from B3
 *   (`x-b3-traceid`/`x-b3-spanid`/`x-b3-sampled`/`x-b3-flags` or the single `b3` header);
 * - one SERVER span per request, a child of that context (a new trace without one), sampled as
 *   the incoming flag says, else at `random_sampling` percent;
 * - the upstream request carries the new span as its parent: `traceparent`/`tracestate`, the B3
 *   headers, and `b3` when the client sent it;
 * - at the end of the exchange the span gets Envoy's tags (`http.method`, `http.url`,
 *   `http.status_code`, `upstream_cluster`, `upstream_address`, `peer.address`,
 *   `response_flags`, ...) plus the destination workload's identity, and is exported over OTLP
 *   (gRPC or HTTP) by the OpenTelemetry JS SDK's batch processor: never on the request's path,
 *   an unreachable collector costs dropped spans and a rate-limited warning, nothing more.
 *
 * One SDK tracer provider per (collector address, protocol, service name, sampling): a config
 * change makes a new one; the least recently made ones past `MAX_PROVIDERS` are shut down.
 * The OTLP exporters (and the gRPC and protobuf code under them) are imported on the first
 * export, so a waypoint that traces nothing never loads them.
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { Attributes, Context, Span, TextMapPropagator, Tracer } from '@opentelemetry/api';
import { ExportResultCode, W3CTraceContextPropagator } from '@opentelemetry/core';
import type { ExportResult } from '@opentelemetry/core';
import { B3InjectEncoding, B3Propagator } from '@opentelemetry/propagator-b3';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';
import { errorMessage } from '@ambient-mesh/errors';
import type { Logger } from '@ambient-mesh/runtime';
import type { Endpoint, TracingConfig, WaypointConfig } from '../config/types.ts';

/** Tracer providers kept at once (each has its own exporter and batch). */
export const MAX_PROVIDERS = 8;

/** Where the collector is: an endpoint of the provider's cluster. */
export interface CollectorAddress {
  readonly host: string;
  readonly port: number;
}

export interface WaypointTracerOptions {
  readonly logger: Logger;
  /** Resource attributes of every span besides `service.name` (the waypoint's own identity). */
  readonly resource?: Readonly<Record<string, string>>;
  /** The batch processor's delay before an export (ms; the SDK's default 5000). */
  readonly exportDelayMs?: number;
}

/** What the request looks like when its span starts. */
export interface SpanStart {
  /** The operation name (Envoy's default decorator: `<service host>:<port>/*`). */
  readonly name: string;
  readonly method: string;
  /** `<scheme>://<authority><path>`. */
  readonly url: string;
  readonly protocol: string;
  readonly peerAddress: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The waypoint's service name when the config names none. */
  readonly fallbackServiceName: string;
}

/** What is known when the exchange ends. */
export interface SpanEnd {
  /** 0: no response (the client went away). */
  readonly status: number;
  readonly responseFlags: string;
  readonly upstreamCluster: string | undefined;
  readonly upstreamAddress: string | undefined;
  readonly requestSize: number;
  readonly responseSize: number;
  readonly destination?: {
    readonly workload: string | undefined;
    readonly namespace: string | undefined;
    readonly principal: string | undefined;
    readonly service: string | undefined;
  };
}

/** A request's span: its context goes upstream with `inject`, `end` finishes and queues it. */
export interface RequestSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly sampled: boolean;
  inject(headers: Record<string, string | string[]>): void;
  end(result: SpanEnd): void;
}

type Carrier = Readonly<Record<string, string | string[] | undefined>>;

const getter = {
  keys: (carrier: Carrier): string[] => Object.keys(carrier),
  get: (carrier: Carrier, key: string): string | string[] | undefined => carrier[key],
};
const setter = {
  set: (carrier: Record<string, string | string[]>, key: string, value: string): void => {
    carrier[key] = value;
  },
};

const W3C: TextMapPropagator = new W3CTraceContextPropagator();
const B3_MULTI: TextMapPropagator = new B3Propagator({ injectEncoding: B3InjectEncoding.MULTI_HEADER });
const B3_SINGLE: TextMapPropagator = new B3Propagator({ injectEncoding: B3InjectEncoding.SINGLE_HEADER });

/** The incoming context: W3C first, then B3 (single or multi header). */
export function extractContext(headers: Carrier): Context {
  const w3c = W3C.extract(ROOT_CONTEXT, headers, getter);
  if (trace.getSpanContext(w3c) !== undefined) return w3c;
  return B3_MULTI.extract(ROOT_CONTEXT, headers, getter);
}

/** Writes `context`'s span into upstream headers: W3C and B3, and `b3` when the client used it. */
export function injectContext(
  context: Context,
  headers: Record<string, string | string[]>,
  singleB3: boolean,
): void {
  W3C.inject(context, headers, setter);
  B3_MULTI.inject(context, headers, setter);
  if (singleB3) B3_SINGLE.inject(context, headers, setter);
}

function truncate(text: string, max: number): string {
  return max > 0 && text.length > max ? text.slice(0, max) : text;
}

/** The OTLP exporter for `protocol`, imported when first needed. */
async function loadOtlpExporter(protocol: TracingConfig['protocol'], url: string): Promise<SpanExporter> {
  if (protocol === 'grpc') {
    const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-grpc');
    return new OTLPTraceExporter({ url });
  }
  const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-http');
  return new OTLPTraceExporter({ url });
}

/**
 * Loads the OTLP exporter on the first export, logs failed exports (at most one warning a
 * minute) and passes everything else through.
 */
class LoggingExporter implements SpanExporter {
  #lastWarn = -Infinity;
  #inner: Promise<SpanExporter> | undefined;
  readonly load: () => Promise<SpanExporter>;
  readonly target: string;
  readonly log: Logger;
  constructor(load: () => Promise<SpanExporter>, target: string, log: Logger) {
    this.load = load;
    this.target = target;
    this.log = log;
  }

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.#inner ??= this.load();
    this.#inner.then(
      inner => {
        inner.export(spans, result => {
          this.#report(spans.length, result);
          done(result);
        });
      },
      (error: unknown) => {
        const result: ExportResult = {
          code: ExportResultCode.FAILED,
          error: error instanceof Error ? error : new Error(String(error)),
        };
        this.#report(spans.length, result);
        done(result);
      },
    );
  }

  #report(spans: number, result: ExportResult): void {
    if (result.code !== ExportResultCode.SUCCESS && performance.now() - this.#lastWarn > 60_000) {
      this.#lastWarn = performance.now();
      this.log.warn(
        {
          code: 'TRACE_EXPORT_FAILED',
          collector: this.target,
          spans,
          err: result.error === undefined ? undefined : errorMessage(result.error),
        },
        'spans could not be exported to the OTLP collector (check the tracing provider service and port in meshConfig extensionProviders)',
      );
    }
  }

  async shutdown(): Promise<void> {
    // Never loaded: nothing was exported, nothing to close.
    if (this.#inner === undefined) return;
    await (await this.#inner).shutdown();
  }

  async forceFlush(): Promise<void> {
    if (this.#inner === undefined) return;
    await (await this.#inner).forceFlush?.();
  }
}

interface ProviderEntry {
  readonly provider: TracerProvider;
  readonly tracer: Tracer;
}

export class WaypointTracer {
  readonly #o: WaypointTracerOptions;
  readonly #providers = new Map<string, ProviderEntry>();
  #warnedMissing = new Set<string>();

  constructor(options: WaypointTracerOptions) {
    this.#o = options;
  }

  #entry(config: TracingConfig, collector: CollectorAddress, serviceName: string): ProviderEntry {
    const host = collector.host.includes(':') ? `[${collector.host}]` : collector.host;
    const url =
      config.protocol === 'grpc'
        ? `http://${host}:${collector.port}`
        : `http://${host}:${collector.port}${config.httpPath}`;
    const key = `${config.protocol}|${url}|${serviceName}|${config.samplingPercent}`;
    const existing = this.#providers.get(key);
    if (existing !== undefined) return existing;
    const provider = new TracerProvider({
      resource: resourceFromAttributes({ ...this.#o.resource, 'service.name': serviceName }),
      sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.samplingPercent / 100) }),
      spanProcessors: [
        new BatchSpanProcessor({
          exporter: new LoggingExporter(() => loadOtlpExporter(config.protocol, url), url, this.#o.logger),
          scheduledDelayMillis: this.#o.exportDelayMs ?? 5000,
          exportTimeoutMillis: 10_000,
          maxQueueSize: 2048,
          maxExportBatchSize: 512,
        }),
      ],
    });
    const entry = { provider, tracer: provider.getTracer('ambient-mesh-waypoint') };
    this.#providers.set(key, entry);
    this.#o.logger.info(
      { collector: url, protocol: config.protocol, serviceName },
      'tracing to an OTLP collector',
    );
    while (this.#providers.size > MAX_PROVIDERS) {
      const [oldKey, old] = this.#providers.entries().next().value as [string, ProviderEntry];
      this.#providers.delete(oldKey);
      void old.provider.shutdown().catch(() => undefined);
    }
    return entry;
  }

  /**
   * Starts the request's span; `undefined` (the request goes untraced, its headers untouched)
   * when the collector cluster has no endpoint.
   */
  start(
    config: TracingConfig,
    collector: CollectorAddress | undefined,
    req: SpanStart,
  ): RequestSpan | undefined {
    if (collector === undefined) {
      if (!this.#warnedMissing.has(config.cluster)) {
        this.#warnedMissing.add(config.cluster);
        this.#o.logger.warn(
          { code: 'TRACE_COLLECTOR_UNKNOWN', cluster: config.cluster },
          'the tracing collector cluster has no endpoint; requests are not traced until it has one',
        );
      }
      return undefined;
    }
    this.#warnedMissing.delete(config.cluster);
    const serviceName = config.serviceName === '' ? req.fallbackServiceName : config.serviceName;
    const { tracer } = this.#entry(config, collector, serviceName);
    const parent = extractContext(req.headers);
    const attributes: Attributes = {
      component: 'proxy',
      'http.method': req.method,
      'http.url': truncate(req.url, config.maxPathTagLength),
      'http.protocol': req.protocol,
      'peer.address': req.peerAddress,
    };
    const requestId = req.headers['x-request-id'];
    if (typeof requestId === 'string') attributes['guid:x-request-id'] = requestId;
    const userAgent = req.headers['user-agent'];
    if (typeof userAgent === 'string') attributes.user_agent = userAgent;
    for (const t of config.customTags) {
      if (t.kind === 'literal') attributes[t.tag] = t.value;
      else {
        const v = req.headers[t.name];
        const text = Array.isArray(v) ? v.join(',') : v;
        if (text !== undefined || t.defaultValue !== '') attributes[t.tag] = text ?? t.defaultValue;
      }
    }
    const span: Span = tracer.startSpan(req.name, { kind: SpanKind.SERVER, attributes }, parent);
    const ctx = trace.setSpan(parent, span);
    const sc = span.spanContext();
    const singleB3 = req.headers.b3 !== undefined;
    let ended = false;
    return {
      traceId: sc.traceId,
      spanId: sc.spanId,
      sampled: (sc.traceFlags & 1) === 1,
      inject: headers => {
        injectContext(ctx, headers, singleB3);
      },
      end: result => {
        if (ended) return;
        ended = true;
        const end: Attributes = {
          'http.status_code': result.status,
          response_flags: result.responseFlags,
          request_size: result.requestSize,
          response_size: result.responseSize,
        };
        if (result.upstreamCluster !== undefined) {
          end.upstream_cluster = result.upstreamCluster;
          end['upstream_cluster.name'] = result.upstreamCluster;
        }
        if (result.upstreamAddress !== undefined) end.upstream_address = result.upstreamAddress;
        const d = result.destination;
        if (d?.workload !== undefined) end['istio.destination_workload'] = d.workload;
        if (d?.namespace !== undefined) end['istio.destination_namespace'] = d.namespace;
        if (d?.principal !== undefined) end['istio.destination_principal'] = d.principal;
        if (d?.service !== undefined) end['istio.destination_service'] = d.service;
        span.setAttributes(end);
        // Envoy marks 5xx and resets (no response) as errors.
        if (result.status === 0 || result.status >= 500) {
          span.setAttribute('error', true);
          span.setStatus({ code: SpanStatusCode.ERROR });
        }
        span.end();
      },
    };
  }

  /** Exports what is queued (tests, shutdown). */
  async flush(): Promise<void> {
    await Promise.all([...this.#providers.values()].map(e => e.provider.forceFlush()));
  }

  /** Flushes and stops every exporter; gives up after `timeoutMs` (a collector that is down). */
  async shutdown(timeoutMs = 3000): Promise<void> {
    const entries = [...this.#providers.values()];
    this.#providers.clear();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(entries.map(e => e.provider.shutdown().catch(() => undefined))),
      new Promise<void>(resolve => {
        timer = setTimeout(resolve, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
  }
}

/**
 * The collector's address: the first healthy endpoint of the provider's cluster (inline, EDS or
 * resolved DNS), reached directly over plain TCP as Envoy's gRPC client does.
 */
export function collectorOf(
  config: WaypointConfig,
  tracing: TracingConfig,
  dnsEndpoints: (cluster: string) => readonly Endpoint[] | undefined,
): CollectorAddress | undefined {
  const cluster = config.clusters.get(tracing.cluster);
  if (cluster === undefined) return undefined;
  const endpoints =
    cluster.discovery.kind === 'dns'
      ? (dnsEndpoints(cluster.name) ?? [])
      : (cluster.staticEndpoints ?? config.endpoints.get(cluster.edsName)?.endpoints ?? []);
  const e = endpoints.find(x => x.healthy) ?? endpoints[0];
  return e === undefined ? undefined : { host: e.address, port: e.port };
}
