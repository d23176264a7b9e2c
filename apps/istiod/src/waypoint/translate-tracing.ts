/**
 * Tracing for a waypoint (pure), as upstream's Telemetry API does it:
 *
 * - meshConfig `extensionProviders[]` with `opentelemetry: { service, port, http? }` name the
 *   collectors; `defaultProviders.tracing` names the ones used when a Telemetry names none;
 * - `telemetry.istio.io/v1` `Telemetry` resources apply from least to most specific: the root
 *   namespace's (no selector, no targetRefs), the waypoint namespace's (no selector, no
 *   targetRefs), then those whose `targetRefs` name the waypoint's Gateway; a later one's
 *   `providers`, `randomSamplingPercentage`, `disableSpanReporting` replace the earlier ones',
 *   `customTags` merge;
 * - the result is the HTTP connection manager's `tracing` (`envoy.tracers.opentelemetry`
 *   exporting over OTLP/gRPC to the cluster `outbound|<port>||<service>`, or OTLP/HTTP with
 *   `http`) and that cluster (`STRICT_DNS` on the service host, HTTP/2 for gRPC). The spans'
 *   service name is `<waypoint>.<namespace>` (upstream's service cluster of a waypoint).
 *
 * Only OpenTelemetry providers are supported; a Telemetry naming another kind, or an unknown
 * provider, gives no tracing and a problem (logged by the caller).
 */
import { EnvoyType, duration, typedConfig } from './envoy-protos.ts';
import { DNS_REFRESH_RATE_MS } from './translate-service-entry.ts';
import { validateLogsAndMetrics } from './translate-telemetry.ts';
import type { LogsAndMetrics } from './translate-telemetry.ts';

/** Upstream's default sampling when no Telemetry sets `randomSamplingPercentage` (meshConfig's 1%). */
export const DEFAULT_SAMPLING_PERCENT = 1;
export const OTEL_TRACER = 'envoy.tracers.opentelemetry';

export interface OtelProvider {
  readonly name: string;
  /** The collector's host (`otel-collector.observability.svc.cluster.local`). */
  readonly service: string;
  readonly port: number;
  /** OTLP/HTTP with this path; absent: OTLP/gRPC. */
  readonly httpPath?: string;
  readonly timeoutMs: number;
}

export interface TracingProviders {
  /** OpenTelemetry providers by name. */
  readonly providers: ReadonlyMap<string, OtelProvider>;
  /** Providers of other kinds (zipkin, datadog...): named, not supported. */
  readonly unsupported: ReadonlySet<string>;
  readonly defaults: readonly string[];
}

export type CustomTag =
  | { readonly kind: 'literal'; readonly value: string }
  | { readonly kind: 'header'; readonly name: string; readonly defaultValue: string };

/** The tracing part of a Telemetry, validated. */
export interface ValidTelemetry {
  readonly namespace: string;
  readonly name: string;
  /** Gateway names of `targetRefs` (kind Gateway); empty: namespace-wide (or root). */
  readonly gateways: readonly string[];
  /** A `selector` (workload-specific): never applies to a waypoint. */
  readonly selector: boolean;
  /** Unset fields stay unset so that a more specific Telemetry only overrides what it sets. */
  readonly providers: readonly string[] | undefined;
  readonly samplingPercent: number | undefined;
  readonly disableSpanReporting: boolean | undefined;
  readonly customTags: ReadonlyMap<string, CustomTag>;
  /** `accessLogging` and `metrics` (translate-telemetry.ts). */
  readonly logsAndMetrics?: LogsAndMetrics | undefined;
}

export type TelemetryResult =
  | { readonly ok: true; readonly value: ValidTelemetry }
  | { readonly ok: false; readonly problems: readonly string[] };

const rec = (v: unknown): Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
const list = (v: unknown): unknown[] => (Array.isArray(v) ? (v as unknown[]) : []);
const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** A Go-style duration (`10s`, `500ms`) in milliseconds. */
function durationMs(v: unknown): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(text(v) ?? '');
  if (m === null) return undefined;
  const n = Number(m[1]);
  return m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000;
}

/** meshConfig's `extensionProviders` and `defaultProviders.tracing` (the raw, parsed YAML). */
export function tracingProvidersOf(mesh: Readonly<Record<string, unknown>>): TracingProviders {
  const providers = new Map<string, OtelProvider>();
  const unsupported = new Set<string>();
  for (const p of list(mesh.extensionProviders)) {
    const r = rec(p);
    const name = text(r.name);
    if (name === undefined || name === '') continue;
    const otel = r.opentelemetry;
    if (otel === undefined) {
      unsupported.add(name);
      continue;
    }
    const o = rec(otel);
    const service = text(o.service) ?? '';
    const port = typeof o.port === 'number' ? o.port : Number(o.port);
    if (service === '' || !Number.isInteger(port) || port <= 0 || port > 65535) {
      unsupported.add(name);
      continue;
    }
    const http = o.http === undefined ? undefined : rec(o.http);
    const path = text(http?.path);
    providers.set(name, {
      name,
      service,
      port,
      ...(http === undefined
        ? {}
        : {
            httpPath:
              path === undefined || path === '' ? '/v1/traces' : path.startsWith('/') ? path : `/${path}`,
          }),
      timeoutMs: durationMs(http?.timeout) ?? 10_000,
    });
  }
  const defaults = list(rec(mesh.defaultProviders).tracing).filter((x): x is string => typeof x === 'string');
  return { providers, unsupported, defaults };
}

/** Validates a Telemetry's targeting and its first `tracing` entry (upstream applies one). */
export function validateTelemetry(obj: {
  readonly metadata?: { readonly namespace?: string; readonly name?: string };
  readonly spec?: unknown;
}): TelemetryResult {
  const spec = rec(obj.spec);
  const problems: string[] = [];
  const refs = [...list(spec.targetRefs), ...(spec.targetRef === undefined ? [] : [spec.targetRef])];
  const gateways: string[] = [];
  for (const [i, ref] of refs.entries()) {
    const r = rec(ref);
    const kind = text(r.kind) ?? '';
    const name = text(r.name) ?? '';
    if (name === '') problems.push(`spec.targetRefs[${i}].name is empty`);
    // Services and ServiceEntries are the kinds a waypoint also serves; only Gateways pick the waypoint itself.
    if (kind === 'Gateway') gateways.push(name);
  }
  const tracing = list(spec.tracing);
  const t = rec(tracing[0]);
  const providers =
    t.providers === undefined ? undefined : list(t.providers).map(p => text(rec(p).name) ?? '');
  if (providers?.some(p => p === '') === true) problems.push('spec.tracing[0].providers[].name is empty');
  const rawPct = t.randomSamplingPercentage;
  let samplingPercent: number | undefined;
  if (rawPct !== undefined && rawPct !== null) {
    const n = typeof rawPct === 'number' ? rawPct : Number(rawPct);
    if (!(n >= 0 && n <= 100))
      problems.push(`spec.tracing[0].randomSamplingPercentage ${JSON.stringify(rawPct)} is not in 0..100`);
    else samplingPercent = n;
  }
  const customTags = new Map<string, CustomTag>();
  for (const [tag, v] of Object.entries(rec(t.customTags))) {
    const c = rec(v);
    if (c.literal !== undefined)
      customTags.set(tag, { kind: 'literal', value: text(rec(c.literal).value) ?? '' });
    else if (c.header !== undefined) {
      const h = rec(c.header);
      const name = text(h.name) ?? '';
      if (name === '') problems.push(`spec.tracing[0].customTags.${tag}.header.name is empty`);
      customTags.set(tag, { kind: 'header', name, defaultValue: text(h.defaultValue) ?? '' });
    } else problems.push(`spec.tracing[0].customTags.${tag}: only literal and header tags are supported`);
  }
  const logsAndMetrics = validateLogsAndMetrics(spec);
  problems.push(...logsAndMetrics.problems);
  if (problems.length > 0) return { ok: false, problems };
  const disable = t.disableSpanReporting;
  return {
    ok: true,
    value: {
      namespace: obj.metadata?.namespace ?? '',
      name: obj.metadata?.name ?? '',
      gateways,
      selector: spec.selector !== undefined && spec.selector !== null,
      providers: tracing.length === 0 ? undefined : providers,
      samplingPercent,
      disableSpanReporting: typeof disable === 'boolean' ? disable : undefined,
      customTags,
      logsAndMetrics: logsAndMetrics.value,
    },
  };
}

export interface WaypointTracing {
  /** The HCM's `tracing`. */
  readonly hcm: object;
  /** The collector cluster (`outbound|<port>||<service>`). */
  readonly cluster: { readonly name: string } & object;
}

export type TracingDecision =
  | { readonly kind: 'none' }
  | { readonly kind: 'tracing'; readonly tracing: WaypointTracing }
  | { readonly kind: 'problem'; readonly message: string };

/** `outbound|<port>||<service>`: the collector's cluster name, as upstream names it. */
export function collectorClusterName(p: OtelProvider): string {
  return `outbound|${p.port}||${p.service}`;
}

function collectorCluster(p: OtelProvider): { readonly name: string } & object {
  const name = collectorClusterName(p);
  const cluster = {
    name,
    type: 'STRICT_DNS',
    connectTimeout: duration(10_000),
    dnsLookupFamily: 'V4_PREFERRED',
    dnsRefreshRate: duration(DNS_REFRESH_RATE_MS),
    respectDnsTtl: true,
    loadAssignment: {
      clusterName: name,
      endpoints: [
        {
          lbEndpoints: [
            { endpoint: { address: { socketAddress: { address: p.service, portValue: p.port } } } },
          ],
        },
      ],
    },
    ...(p.httpPath === undefined
      ? {
          typedExtensionProtocolOptions: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': typedConfig(
              EnvoyType.httpProtocolOptions,
              {
                explicitHttpConfig: { http2ProtocolOptions: {} },
              },
            ),
          },
        }
      : {}),
  };
  return cluster;
}

/**
 * The waypoint's tracing from the Telemetries that apply to it and the mesh's providers. Without
 * any applicable Telemetry, the mesh's default tracing providers apply at the default sampling.
 */
export function resolveWaypointTracing(
  waypoint: {
    readonly namespace: string;
    readonly name: string;
    /** The tracer's `service_name` (default `<name>.<namespace>`; an ingress gateway: its Deployment's). */
    readonly serviceName?: string;
  },
  rootNamespace: string,
  telemetries: Iterable<ValidTelemetry>,
  mesh: TracingProviders,
): TracingDecision {
  const all = [...telemetries].filter(t => !t.selector);
  const byName = (a: ValidTelemetry, b: ValidTelemetry): number =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  const layers = [
    all.filter(t => t.namespace === rootNamespace && t.gateways.length === 0).sort(byName),
    waypoint.namespace === rootNamespace
      ? []
      : all.filter(t => t.namespace === waypoint.namespace && t.gateways.length === 0).sort(byName),
    all.filter(t => t.namespace === waypoint.namespace && t.gateways.includes(waypoint.name)).sort(byName),
  ];
  let providers: readonly string[] | undefined;
  let sampling: number | undefined;
  let disabled = false;
  const tags = new Map<string, CustomTag>();
  let any = false;
  for (const layer of layers) {
    // Upstream takes the oldest of a level; the name order makes it deterministic here.
    const t = layer[0];
    if (t === undefined) continue;
    any = true;
    if (t.providers !== undefined && t.providers.length > 0) providers = t.providers;
    if (t.samplingPercent !== undefined) sampling = t.samplingPercent;
    if (t.disableSpanReporting !== undefined) disabled = t.disableSpanReporting;
    for (const [k, v] of t.customTags) tags.set(k, v);
  }
  if (!any && mesh.defaults.length === 0) return { kind: 'none' };
  if (disabled) return { kind: 'none' };
  const names = providers ?? mesh.defaults;
  const name = names[0];
  if (name === undefined) return { kind: 'none' };
  const provider = mesh.providers.get(name);
  if (provider === undefined) {
    return {
      kind: 'problem',
      message: mesh.unsupported.has(name)
        ? `tracing provider ${JSON.stringify(name)} is not an opentelemetry provider with service and port (only OpenTelemetry is supported)`
        : `tracing provider ${JSON.stringify(name)} is not in meshConfig extensionProviders`,
    };
  }
  const cluster = collectorCluster(provider);
  const collector =
    provider.httpPath === undefined
      ? {
          grpcService: {
            envoyGrpc: { clusterName: cluster.name, authority: provider.service },
            timeout: duration(provider.timeoutMs),
          },
        }
      : {
          httpService: {
            httpUri: {
              uri: `http://${provider.service}:${provider.port}${provider.httpPath}`,
              cluster: cluster.name,
              timeout: duration(provider.timeoutMs),
            },
          },
        };
  const customTags = [...tags].map(([tag, t]) =>
    t.kind === 'literal'
      ? { tag, literal: { value: t.value } }
      : { tag, requestHeader: { name: t.name, defaultValue: t.defaultValue } },
  );
  const hcm = {
    provider: {
      name: OTEL_TRACER,
      typedConfig: typedConfig(EnvoyType.openTelemetryConfig, {
        ...collector,
        serviceName: waypoint.serviceName ?? `${waypoint.name}.${waypoint.namespace}`,
      }),
    },
    randomSampling: { value: sampling ?? DEFAULT_SAMPLING_PERCENT },
    ...(customTags.length > 0 ? { customTags } : {}),
  };
  return { kind: 'tracing', tracing: { hcm, cluster } };
}
