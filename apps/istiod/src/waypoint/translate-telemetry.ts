/**
 * Access logging and metrics overrides for a waypoint (pure), as upstream's Telemetry API does
 * them (tracing is translate-tracing.ts's):
 *
 * - providers: the built-in `envoy` (file `meshConfig.accessLogFile`, else `/dev/stdout`, in
 *   `accessLogFormat` / `accessLogEncoding`), meshConfig `extensionProviders[]` with
 *   `envoyFileAccessLog: { path, logFormat: { text | labels } }`, and for metrics the built-in
 *   `prometheus` (and `prometheus: {}` extension providers);
 * - Telemetries apply from least to most specific (root namespace, waypoint namespace, `targetRefs`
 *   naming the waypoint's Gateway), starting from `defaultProviders.accessLogging` /
 *   `.metrics`; an `accessLogging` entry sets (or with `disabled` removes) its providers, with
 *   `filter.expression`; `metrics` entries set `reportingDisabled` and merge `overrides` (per metric,
 *   `disabled` and `tagOverrides` REMOVE/UPSERT). Entries with `match.mode: CLIENT` do not apply
 *   (a waypoint reports as the server side);
 * - without any Telemetry access logging, a non-empty `meshConfig.accessLogFile` logs as upstream.
 *
 * The result is the HTTP connection manager's `access_log` (`envoy.access_loggers.file`
 * `FileAccessLog`, with a CEL `ExpressionFilter` for `filter.expression`) and upstream's
 * `istio.stats` filter (`stats.PluginConfig` carried in an `xds.type.v3.TypedStruct`: `metrics[]`
 * with `name`, `dimensions`, `tags_to_remove`, `drop`). Nothing configured leaves both out (the
 * waypoint keeps its built-in access log and standard metrics); access logging that resolves to no
 * provider is a file logger to `/dev/null` (our encoding of "off"), reporting disabled is every
 * metric dropped.
 */
import { parseTelemetryCondition, parseTelemetryValue } from '@ambient-mesh/mesh-api';
import { EnvoyType, typedConfig } from './envoy-protos.ts';

export const FILE_ACCESS_LOGGER = 'envoy.access_loggers.file';
export const CEL_FILTER = 'envoy.access_loggers.extension_filters.cel';
export const STATS_FILTER = 'istio.stats';
export const STATS_CONFIG_TYPE_URL = 'type.googleapis.com/stats.PluginConfig';
/** Where access logging that resolves to no provider writes: nowhere. */
export const ACCESS_LOG_OFF_PATH = '/dev/null';

/** Upstream's default text access log format (meshConfig `accessLogFormat` unset). */
export const DEFAULT_TEXT_FORMAT =
  '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% ' +
  '%RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% ' +
  '"%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% ' +
  '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" ' +
  '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% ' +
  '%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% ' +
  '%REQUESTED_SERVER_NAME% %ROUTE_NAME%\n';

/** Upstream's default JSON access log labels (`accessLogEncoding: JSON`, no format). */
export const DEFAULT_JSON_LABELS: Readonly<Record<string, string>> = {
  start_time: '%START_TIME%',
  route_name: '%ROUTE_NAME%',
  method: '%REQ(:METHOD)%',
  path: '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%',
  protocol: '%PROTOCOL%',
  response_code: '%RESPONSE_CODE%',
  response_flags: '%RESPONSE_FLAGS%',
  response_code_details: '%RESPONSE_CODE_DETAILS%',
  connection_termination_details: '%CONNECTION_TERMINATION_DETAILS%',
  upstream_transport_failure_reason: '%UPSTREAM_TRANSPORT_FAILURE_REASON%',
  bytes_received: '%BYTES_RECEIVED%',
  bytes_sent: '%BYTES_SENT%',
  duration: '%DURATION%',
  upstream_service_time: '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%',
  x_forwarded_for: '%REQ(X-FORWARDED-FOR)%',
  user_agent: '%REQ(USER-AGENT)%',
  request_id: '%REQ(X-REQUEST-ID)%',
  authority: '%REQ(:AUTHORITY)%',
  upstream_host: '%UPSTREAM_HOST%',
  upstream_cluster: '%UPSTREAM_CLUSTER_RAW%',
  upstream_local_address: '%UPSTREAM_LOCAL_ADDRESS%',
  downstream_local_address: '%DOWNSTREAM_LOCAL_ADDRESS%',
  downstream_remote_address: '%DOWNSTREAM_REMOTE_ADDRESS%',
  requested_server_name: '%REQUESTED_SERVER_NAME%',
};

/** The Telemetry API's metric names → upstream's stats filter metric names (no `istio_` prefix). */
export const METRIC_NAMES: Readonly<Record<string, string>> = {
  REQUEST_COUNT: 'requests_total',
  REQUEST_DURATION: 'request_duration_milliseconds',
  REQUEST_SIZE: 'request_bytes',
  RESPONSE_SIZE: 'response_bytes',
  TCP_OPENED_CONNECTIONS: 'tcp_connections_opened_total',
  TCP_CLOSED_CONNECTIONS: 'tcp_connections_closed_total',
  TCP_SENT_BYTES: 'tcp_sent_bytes_total',
  TCP_RECEIVED_BYTES: 'tcp_received_bytes_total',
  GRPC_REQUEST_MESSAGES: 'request_messages_total',
  GRPC_RESPONSE_MESSAGES: 'response_messages_total',
};

export type LogFormat =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'json'; readonly labels: Readonly<Record<string, string>> };

export interface FileLogProvider {
  readonly name: string;
  readonly path: string;
  readonly format: LogFormat;
}

export interface TelemetryProviders {
  /** Access log providers by name (the built-in `envoy` included). */
  readonly accessLog: ReadonlyMap<string, FileLogProvider>;
  /** Metrics providers of the Prometheus kind (the built-in `prometheus` included). */
  readonly prometheus: ReadonlySet<string>;
  /** Every provider name meshConfig declares (for "unknown" vs "not supported"). */
  readonly declared: ReadonlySet<string>;
  readonly defaultAccessLogging: readonly string[];
  readonly defaultMetrics: readonly string[];
  /** meshConfig `accessLogFile`, when set: upstream's access log without any Telemetry. */
  readonly accessLogFile: string | undefined;
}

type Mode = 'CLIENT' | 'SERVER' | 'CLIENT_AND_SERVER';

export interface LoggingEntry {
  readonly providers: readonly string[] | undefined;
  readonly disabled: boolean | undefined;
  readonly filter: string | undefined;
  readonly mode: Mode;
}

export interface TagOverride {
  readonly operation: 'UPSERT' | 'REMOVE';
  readonly value?: string;
}

export interface MetricOverride {
  /** Stats filter names (`requests_total`...); `ALL_METRICS` expanded. */
  readonly metrics: readonly string[];
  readonly mode: Mode;
  readonly disabled: boolean | undefined;
  readonly tagOverrides: ReadonlyMap<string, TagOverride>;
}

export interface MetricsEntry {
  readonly providers: readonly string[] | undefined;
  readonly reportingDisabled: boolean | undefined;
  readonly overrides: readonly MetricOverride[];
}

/** A Telemetry's `accessLogging` and `metrics`, validated (undefined: the field is unset). */
export interface LogsAndMetrics {
  readonly accessLogging: readonly LoggingEntry[] | undefined;
  readonly metrics: readonly MetricsEntry[] | undefined;
}

const rec = (v: unknown): Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
const list = (v: unknown): unknown[] => (Array.isArray(v) ? (v as unknown[]) : []);
const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const strings = (v: unknown): string[] => list(v).filter((x): x is string => typeof x === 'string');

function formatOf(raw: Record<string, unknown>, encoding: 'TEXT' | 'JSON', meshText: string): LogFormat {
  const labels = rec(raw.labels);
  if (raw.labels !== undefined) {
    const entries = Object.entries(labels).map(([k, v]): [string, string] => [
      k,
      typeof v === 'string' ? v : JSON.stringify(v),
    ]);
    const parsed: Record<string, string> = Object.fromEntries(entries);
    return { kind: 'json', labels: entries.length > 0 ? parsed : DEFAULT_JSON_LABELS };
  }
  const t = text(raw.text);
  if (t !== undefined) return { kind: 'text', text: t === '' ? DEFAULT_TEXT_FORMAT : withNewline(t) };
  if (encoding === 'JSON') return { kind: 'json', labels: DEFAULT_JSON_LABELS };
  return { kind: 'text', text: meshText === '' ? DEFAULT_TEXT_FORMAT : withNewline(meshText) };
}

function withNewline(t: string): string {
  return t.endsWith('\n') ? t : `${t}\n`;
}

/** meshConfig's access log and metrics providers (the raw, parsed YAML). */
export function telemetryProvidersOf(mesh: Readonly<Record<string, unknown>>): TelemetryProviders {
  const encoding = text(mesh.accessLogEncoding) === 'JSON' ? 'JSON' : 'TEXT';
  const meshFormat = text(mesh.accessLogFormat) ?? '';
  const file = text(mesh.accessLogFile) ?? '';
  const builtinFormat: LogFormat =
    encoding === 'JSON'
      ? meshFormat === ''
        ? { kind: 'json', labels: DEFAULT_JSON_LABELS }
        : { kind: 'text', text: withNewline(meshFormat) }
      : { kind: 'text', text: meshFormat === '' ? DEFAULT_TEXT_FORMAT : withNewline(meshFormat) };
  const accessLog = new Map<string, FileLogProvider>([
    ['envoy', { name: 'envoy', path: file === '' ? '/dev/stdout' : file, format: builtinFormat }],
  ]);
  const prometheus = new Set<string>(['prometheus']);
  const declared = new Set<string>(['envoy', 'prometheus']);
  for (const p of list(mesh.extensionProviders)) {
    const r = rec(p);
    const name = text(r.name);
    if (name === undefined || name === '') continue;
    declared.add(name);
    if (r.prometheus !== undefined) prometheus.add(name);
    if (r.envoyFileAccessLog !== undefined) {
      const f = rec(r.envoyFileAccessLog);
      const path = text(f.path) ?? '';
      accessLog.set(name, {
        name,
        path: path === '' ? '/dev/stdout' : path,
        format: formatOf(rec(f.logFormat), 'TEXT', ''),
      });
    }
  }
  const defaults = rec(mesh.defaultProviders);
  return {
    accessLog,
    prometheus,
    declared,
    defaultAccessLogging: strings(defaults.accessLogging),
    defaultMetrics: defaults.metrics === undefined ? ['prometheus'] : strings(defaults.metrics),
    accessLogFile: file === '' ? undefined : file,
  };
}

function modeOf(v: unknown, path: string, problems: string[]): Mode {
  const m = text(rec(v).mode) ?? 'CLIENT_AND_SERVER';
  if (m !== 'CLIENT' && m !== 'SERVER' && m !== 'CLIENT_AND_SERVER') {
    problems.push(`${path}.mode ${JSON.stringify(m)} is not CLIENT, SERVER or CLIENT_AND_SERVER`);
    return 'CLIENT_AND_SERVER';
  }
  return m;
}

function providerNames(v: unknown, path: string, problems: string[]): string[] | undefined {
  if (v === undefined) return undefined;
  const names = list(v).map(p => text(rec(p).name) ?? '');
  if (names.some(n => n === '')) problems.push(`${path}[].name is empty`);
  return names;
}

/** Validates a Telemetry's `accessLogging` and `metrics`; problems name the field. */
export function validateLogsAndMetrics(spec: Record<string, unknown>): {
  readonly value: LogsAndMetrics;
  readonly problems: readonly string[];
} {
  const problems: string[] = [];
  const accessLogging =
    spec.accessLogging === undefined
      ? undefined
      : list(spec.accessLogging).map((raw, i): LoggingEntry => {
          const e = rec(raw);
          const p = `spec.accessLogging[${i}]`;
          const expr = text(rec(e.filter).expression);
          if (expr !== undefined && expr !== '') {
            const parsed = parseTelemetryCondition(expr);
            if (!parsed.ok) problems.push(`${p}.filter.expression: ${parsed.error}`);
          }
          const disabled = e.disabled;
          return {
            providers: providerNames(e.providers, `${p}.providers`, problems),
            disabled: typeof disabled === 'boolean' ? disabled : undefined,
            filter: expr === undefined || expr === '' ? undefined : expr,
            mode: modeOf(e.match, `${p}.match`, problems),
          };
        });
  const metrics =
    spec.metrics === undefined
      ? undefined
      : list(spec.metrics).map((raw, i): MetricsEntry => {
          const e = rec(raw);
          const p = `spec.metrics[${i}]`;
          const overrides = list(e.overrides).map((o, j): MetricOverride => {
            const ov = rec(o);
            const op = `${p}.overrides[${j}]`;
            const match = rec(ov.match);
            const metric = text(match.metric) ?? (match.customMetric === undefined ? 'ALL_METRICS' : '');
            let names: string[] = [];
            if (metric === 'ALL_METRICS') names = Object.values(METRIC_NAMES);
            else if (METRIC_NAMES[metric] !== undefined) names = [METRIC_NAMES[metric]];
            else
              problems.push(
                `${op}.match: only the standard metrics are supported (${metric || 'customMetric'})`,
              );
            const tagOverrides = new Map<string, TagOverride>();
            for (const [tag, t] of Object.entries(rec(ov.tagOverrides))) {
              const to = rec(t);
              const operation = text(to.operation) ?? 'UPSERT';
              if (operation === 'REMOVE') tagOverrides.set(tag, { operation });
              else if (operation === 'UPSERT') {
                const value = text(to.value) ?? '';
                const parsed = parseTelemetryValue(value);
                if (!parsed.ok) problems.push(`${op}.tagOverrides.${tag}.value: ${parsed.error}`);
                tagOverrides.set(tag, { operation, value });
              } else
                problems.push(
                  `${op}.tagOverrides.${tag}.operation ${JSON.stringify(operation)} is not UPSERT or REMOVE`,
                );
            }
            const disabled = ov.disabled;
            return {
              metrics: names,
              mode: modeOf(ov.match, `${op}.match`, problems),
              disabled: typeof disabled === 'boolean' ? disabled : undefined,
              tagOverrides,
            };
          });
          const reporting = e.reportingDisabled;
          return {
            providers: providerNames(e.providers, `${p}.providers`, problems),
            reportingDisabled: typeof reporting === 'boolean' ? reporting : undefined,
            overrides,
          };
        });
  return { value: { accessLogging, metrics }, problems };
}

/** What the resolution works on: a Telemetry's targeting and its access logging and metrics. */
export interface TelemetryLayerInput {
  readonly namespace: string;
  readonly name: string;
  readonly gateways: readonly string[];
  readonly selector: boolean;
  readonly logsAndMetrics?: LogsAndMetrics | undefined;
}

/** The Telemetries that apply to a waypoint, least specific first (one per level, oldest by name). */
function layersFor(
  waypoint: { readonly namespace: string; readonly name: string },
  rootNamespace: string,
  telemetries: Iterable<TelemetryLayerInput>,
): TelemetryLayerInput[] {
  const all = [...telemetries].filter(t => !t.selector);
  const byName = (a: TelemetryLayerInput, b: TelemetryLayerInput): number =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  const levels = [
    all.filter(t => t.namespace === rootNamespace && t.gateways.length === 0).sort(byName),
    waypoint.namespace === rootNamespace
      ? []
      : all.filter(t => t.namespace === waypoint.namespace && t.gateways.length === 0).sort(byName),
    all.filter(t => t.namespace === waypoint.namespace && t.gateways.includes(waypoint.name)).sort(byName),
  ];
  return levels.flatMap(l => (l[0] === undefined ? [] : [l[0]]));
}

const appliesToWaypoint = (mode: Mode): boolean => mode !== 'CLIENT';

export type AccessLogDecision =
  | { readonly kind: 'default' }
  | {
      readonly kind: 'access-log';
      readonly accessLog: readonly object[];
      readonly problems: readonly string[];
    };

function fileLogger(path: string, format: LogFormat, filter: string | undefined): object {
  const logFormat =
    format.kind === 'text'
      ? { textFormatSource: { inlineString: format.text } }
      : {
          jsonFormat: {
            fields: Object.fromEntries(
              Object.entries(format.labels).map(([k, v]) => [k, { stringValue: v }]),
            ),
          },
        };
  return {
    name: FILE_ACCESS_LOGGER,
    ...(filter === undefined
      ? {}
      : {
          filter: {
            extensionFilter: {
              name: CEL_FILTER,
              typedConfig: typedConfig(EnvoyType.celExpressionFilter, { expression: filter }),
            },
          },
        }),
    typedConfig: typedConfig(EnvoyType.fileAccessLog, { path, logFormat }),
  };
}

/** The HCM's `access_log` for a waypoint, or `default` when nothing configures access logging. */
export function resolveWaypointAccessLog(
  waypoint: { readonly namespace: string; readonly name: string },
  rootNamespace: string,
  telemetries: Iterable<TelemetryLayerInput>,
  mesh: TelemetryProviders,
): AccessLogDecision {
  const layers = layersFor(waypoint, rootNamespace, telemetries).filter(
    t => t.logsAndMetrics?.accessLogging !== undefined,
  );
  if (layers.length === 0 && mesh.defaultAccessLogging.length === 0) {
    // No Telemetry: meshConfig `accessLogFile` alone, as upstream.
    const envoy = mesh.accessLog.get('envoy');
    if (mesh.accessLogFile === undefined || envoy === undefined) return { kind: 'default' };
    return { kind: 'access-log', accessLog: [fileLogger(envoy.path, envoy.format, undefined)], problems: [] };
  }
  const chosen = new Map<string, string | undefined>(mesh.defaultAccessLogging.map(p => [p, undefined]));
  for (const layer of layers) {
    for (const e of layer.logsAndMetrics?.accessLogging ?? []) {
      if (!appliesToWaypoint(e.mode)) continue;
      const names =
        e.providers === undefined || e.providers.length === 0 ? mesh.defaultAccessLogging : e.providers;
      for (const p of names) {
        if (e.disabled === true) chosen.delete(p);
        else chosen.set(p, e.filter);
      }
    }
  }
  const problems: string[] = [];
  const loggers: object[] = [];
  for (const [name, filter] of [...chosen].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const provider = mesh.accessLog.get(name);
    if (provider === undefined) {
      problems.push(
        mesh.declared.has(name)
          ? `access log provider ${JSON.stringify(name)} is not an envoyFileAccessLog provider (only file access logs are supported)`
          : `access log provider ${JSON.stringify(name)} is not in meshConfig extensionProviders`,
      );
      continue;
    }
    loggers.push(fileLogger(provider.path, provider.format, filter));
  }
  if (loggers.length === 0)
    loggers.push(fileLogger(ACCESS_LOG_OFF_PATH, { kind: 'text', text: '' }, undefined));
  return { kind: 'access-log', accessLog: loggers, problems };
}

export type StatsDecision =
  | { readonly kind: 'default' }
  | { readonly kind: 'stats'; readonly filter: object; readonly problems: readonly string[] };

/** A plain JSON value as a `google.protobuf.Value` (protobufjs object form). */
function value(v: unknown): object {
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(value) } };
  if (typeof v === 'object' && v !== null)
    return { structValue: { fields: Object.fromEntries(Object.entries(v).map(([k, x]) => [k, value(x)])) } };
  return { nullValue: 'NULL_VALUE' };
}

/** Upstream's `istio.stats` filter for a waypoint's metrics overrides, or `default` without any. */
export function resolveWaypointStats(
  waypoint: { readonly namespace: string; readonly name: string },
  rootNamespace: string,
  telemetries: Iterable<TelemetryLayerInput>,
  mesh: TelemetryProviders,
): StatsDecision {
  const layers = layersFor(waypoint, rootNamespace, telemetries).filter(
    t => t.logsAndMetrics?.metrics !== undefined,
  );
  if (layers.length === 0) return { kind: 'default' };
  let providers: readonly string[] = mesh.defaultMetrics;
  let reportingDisabled = false;
  const perMetric = new Map<string, { drop: boolean; tags: Map<string, TagOverride> }>();
  for (const layer of layers) {
    for (const e of layer.logsAndMetrics?.metrics ?? []) {
      if (e.providers !== undefined && e.providers.length > 0) providers = e.providers;
      if (e.reportingDisabled !== undefined) reportingDisabled = e.reportingDisabled;
      for (const o of e.overrides) {
        if (!appliesToWaypoint(o.mode)) continue;
        for (const m of o.metrics) {
          const cur = perMetric.get(m) ?? { drop: false, tags: new Map<string, TagOverride>() };
          if (o.disabled !== undefined) cur.drop = o.disabled;
          for (const [tag, t] of o.tagOverrides) cur.tags.set(tag, t);
          perMetric.set(m, cur);
        }
      }
    }
  }
  const problems: string[] = [];
  const prometheus = providers.filter(p => mesh.prometheus.has(p));
  for (const p of providers)
    if (!mesh.prometheus.has(p))
      problems.push(
        mesh.declared.has(p)
          ? `metrics provider ${JSON.stringify(p)} is not a prometheus provider (only Prometheus metrics are supported)`
          : `metrics provider ${JSON.stringify(p)} is not in meshConfig extensionProviders`,
      );
  const metrics: Record<string, unknown>[] = [];
  if (reportingDisabled || prometheus.length === 0) {
    metrics.push(...Object.values(METRIC_NAMES).map(name => ({ name, drop: true })));
  } else {
    for (const name of [...perMetric.keys()].sort()) {
      const m = perMetric.get(name)!;
      const dimensions = Object.fromEntries(
        [...m.tags].filter(([, t]) => t.operation === 'UPSERT').map(([tag, t]) => [tag, t.value ?? '']),
      );
      const remove = [...m.tags].filter(([, t]) => t.operation === 'REMOVE').map(([tag]) => tag);
      metrics.push({
        name,
        ...(Object.keys(dimensions).length > 0 ? { dimensions } : {}),
        ...(remove.length > 0 ? { tags_to_remove: remove } : {}),
        ...(m.drop ? { drop: true } : {}),
      });
    }
  }
  const filter = {
    name: STATS_FILTER,
    typedConfig: typedConfig(EnvoyType.typedStruct, {
      typeUrl: STATS_CONFIG_TYPE_URL,
      value: { fields: { metrics: value(metrics) } },
    }),
  };
  return { kind: 'stats', filter, problems };
}
