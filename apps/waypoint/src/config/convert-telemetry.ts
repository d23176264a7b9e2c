/**
 * The HCM's `access_log` → `AccessLogConfig[]` and the `istio.stats` filter → `StatsConfig`.
 *
 * - access logs: `envoy.access_loggers.file` (`FileAccessLog`: `path`, `log_format` with
 *   `text_format_source.inline_string` or `json_format`), optionally with a CEL
 *   `extension_filter` in the subset `@ambient-mesh/mesh-api` evaluates;
 * - stats: upstream's `stats.PluginConfig` in an `xds.type.v3.TypedStruct` (or `udpa`'s): per
 *   `metrics[]` entry `name` (empty: every metric), `dimensions` (tag → value expression),
 *   `tags_to_remove`, `drop`.
 *
 * Anything else is a problem (the listener is NACKed), never silently dropped.
 */
import { parseTelemetryCondition, parseTelemetryValue } from '@ambient-mesh/mesh-api';
import type { TelemetryValue } from '@ambient-mesh/mesh-api';
import type { ProtoObject } from '../xds/envoy-protos.ts';
import { EnvoyType } from '../xds/envoy-protos.ts';
import type { ProtoReader } from './proto-reader.ts';
import type { AccessLogConfig, MetricOverrideConfig, StatsConfig } from './types.ts';

const STATS_CONFIG_TYPE = 'stats.PluginConfig';
const TYPED_STRUCT_TYPES = new Set(['xds.type.v3.TypedStruct', 'udpa.type.v1.TypedStruct']);

/** The stats filter's metric names (upstream's, without `istio_`) this waypoint exports. */
export const STATS_METRICS = [
  'requests_total',
  'request_duration_milliseconds',
  'request_bytes',
  'response_bytes',
  'request_messages_total',
  'response_messages_total',
  'tcp_connections_opened_total',
  'tcp_connections_closed_total',
  'tcp_sent_bytes_total',
  'tcp_received_bytes_total',
] as const;

function typeOf(config: ProtoObject | undefined): string {
  const t = config?.['@type'];
  return typeof t === 'string' ? t.slice(t.lastIndexOf('/') + 1) : '';
}

/** A `google.protobuf.Value`/`Struct` (protobufjs object form, either case) as plain JSON. */
export function plainValue(v: unknown): unknown {
  if (typeof v !== 'object' || v === null) return v;
  const o = v as Record<string, unknown>;
  if ('fields' in o) {
    const fields = (o.fields ?? {}) as Record<string, unknown>;
    return Object.fromEntries(Object.entries(fields).map(([k, x]) => [k, plainValue(x)]));
  }
  for (const k of ['stringValue', 'string_value', 'numberValue', 'number_value', 'boolValue', 'bool_value'])
    if (k in o) return o[k];
  for (const k of ['structValue', 'struct_value']) if (k in o) return plainValue(o[k]);
  for (const k of ['listValue', 'list_value'])
    if (k in o) return ((o[k] as { values?: unknown[] }).values ?? []).map(plainValue);
  if ('nullValue' in o || 'null_value' in o) return null;
  return o;
}

function convertOne(r: ProtoReader, e: ProtoObject, path: string): AccessLogConfig | undefined {
  r.only(e, path, ['name', 'typed_config', 'filter']);
  const config = r.object(e, 'typed_config');
  const type = typeOf(config);
  if (config === undefined || type !== EnvoyType.fileAccessLog) {
    r.problem(
      path,
      `access logger ${JSON.stringify(r.string(e, 'name') ?? '')} (${type === '' ? 'no typed_config' : type}) is not supported (only envoy.access_loggers.file)`,
    );
    return undefined;
  }
  const cp = `${path}.typed_config`;
  r.only(config, cp, ['path', 'log_format']);
  const filePath = r.string(config, 'path') ?? '';
  if (filePath === '') r.problem(`${cp}.path`, 'is empty');
  const lf = r.object(config, 'log_format');
  let format: AccessLogConfig['format'] = { kind: 'text', text: '' };
  if (lf !== undefined) {
    r.only(
      lf,
      `${cp}.log_format`,
      ['text_format_source', 'json_format'],
      ['omit_empty_values', 'content_type'],
    );
    const source = r.object(lf, 'text_format_source');
    const json = r.object(lf, 'json_format');
    if (source !== undefined) {
      r.only(source, `${cp}.log_format.text_format_source`, ['inline_string']);
      format = { kind: 'text', text: r.string(source, 'inline_string') ?? '' };
    } else if (json !== undefined) {
      const plain = plainValue(json) as Record<string, unknown>;
      const fields: Record<string, string> = {};
      for (const [k, v] of Object.entries(plain)) {
        if (typeof v === 'string') fields[k] = v;
        else
          r.problem(`${cp}.log_format.json_format.${k}`, 'only string values (format strings) are supported');
      }
      format = { kind: 'json', fields };
    } else r.problem(`${cp}.log_format`, 'needs text_format_source or json_format');
  } else {
    r.problem(`${cp}.log_format`, "is missing (Envoy's built-in default format is not supported)");
  }
  const f = r.object(e, 'filter');
  if (f === undefined) return { path: filePath, format };
  r.only(f, `${path}.filter`, ['extension_filter']);
  const ext = r.object(f, 'extension_filter') ?? {};
  r.only(ext, `${path}.filter.extension_filter`, ['name', 'typed_config']);
  const fc = r.object(ext, 'typed_config');
  if (typeOf(fc) !== EnvoyType.celExpressionFilter) {
    r.problem(`${path}.filter`, 'only a CEL extension_filter (ExpressionFilter) is supported');
    return { path: filePath, format };
  }
  r.only(fc ?? {}, `${path}.filter.extension_filter.typed_config`, ['expression']);
  const parsed = parseTelemetryCondition(r.string(fc ?? {}, 'expression') ?? '');
  if (!parsed.ok) {
    r.problem(`${path}.filter.extension_filter.typed_config.expression`, parsed.error);
    return { path: filePath, format };
  }
  return { path: filePath, format, filter: parsed.value };
}

export function convertAccessLog(
  r: ProtoReader,
  entries: readonly ProtoObject[],
  path: string,
): AccessLogConfig[] {
  return entries.map((e, i) => convertOne(r, e, `${path}[${i}]`)).filter(e => e !== undefined);
}

/**
 * Is this HTTP filter upstream's stats filter with a config we read (a TypedStruct carrying
 * `stats.PluginConfig`)? Another `istio.stats` (no config, Wasm) stays a no-op, as before.
 */
export function isStatsFilter(config: ProtoObject | undefined): boolean {
  if (!TYPED_STRUCT_TYPES.has(typeOf(config))) return false;
  const url = config?.type_url;
  return typeof url === 'string' && url.endsWith(`/${STATS_CONFIG_TYPE}`);
}

export function convertStats(r: ProtoReader, config: ProtoObject | undefined, path: string): StatsConfig {
  const metrics = new Map<string, MetricOverrideConfig>();
  if (config === undefined || !TYPED_STRUCT_TYPES.has(typeOf(config))) {
    r.problem(path, 'the stats filter needs a TypedStruct carrying stats.PluginConfig');
    return { metrics };
  }
  r.only(config, path, ['type_url', 'value']);
  const url = r.string(config, 'type_url') ?? '';
  if (!url.endsWith(`/${STATS_CONFIG_TYPE}`))
    r.problem(`${path}.type_url`, `${url} is not stats.PluginConfig`);
  const value = plainValue(r.object(config, 'value') ?? {}) as Record<string, unknown>;
  for (const key of Object.keys(value))
    if (
      ![
        'metrics',
        'reporter',
        'disable_host_header_fallback',
        'tcp_reporting_duration',
        'rotation_interval',
        'graceful_deletion_interval',
      ].includes(key)
    )
      r.problem(`${path}.value.${key}`, 'is not supported by the waypoint');
  const list = Array.isArray(value.metrics) ? (value.metrics as unknown[]) : [];
  for (const [i, raw] of list.entries()) {
    const mp = `${path}.value.metrics[${i}]`;
    const m = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
    for (const key of Object.keys(m))
      if (!['name', 'dimensions', 'tags_to_remove', 'drop'].includes(key))
        r.problem(`${mp}.${key}`, 'is not supported by the waypoint');
    const name = typeof m.name === 'string' ? m.name : '';
    const names = name === '' ? [...STATS_METRICS] : [name];
    if (name !== '' && !(STATS_METRICS as readonly string[]).includes(name))
      r.problem(`${mp}.name`, `${JSON.stringify(name)} is not a standard metric`);
    const dimensions = new Map<string, TelemetryValue>();
    for (const [tag, expr] of Object.entries((m.dimensions ?? {}) as Record<string, unknown>)) {
      const parsed = parseTelemetryValue(typeof expr === 'string' ? expr : '');
      if (!parsed.ok) r.problem(`${mp}.dimensions.${tag}`, parsed.error);
      else dimensions.set(tag, parsed.value);
    }
    const remove = Array.isArray(m.tags_to_remove)
      ? (m.tags_to_remove as unknown[]).filter((t): t is string => typeof t === 'string')
      : [];
    for (const n of names) {
      const cur = metrics.get(n);
      metrics.set(n, {
        drop: m.drop === true || (m.drop === undefined && cur?.drop === true),
        tagsToRemove: [...(cur?.tagsToRemove ?? []), ...remove],
        dimensions: new Map([...(cur?.dimensions ?? []), ...dimensions]),
      });
    }
  }
  return { metrics };
}
