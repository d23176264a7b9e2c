/**
 * The HTTP connection manager's `tracing` → `TracingConfig`. Only the OpenTelemetry tracer
 * (`envoy.tracers.opentelemetry`) is supported, exporting to a cluster over OTLP/gRPC
 * (`grpc_service.envoy_grpc`) or OTLP/HTTP (`http_service`); custom tags may be literals or
 * request headers. Anything else is a problem (the listener is NACKed), never silently dropped.
 */
import type { ProtoObject } from '../xds/envoy-protos.ts';
import { EnvoyType } from '../xds/envoy-protos.ts';
import type { ProtoReader } from './proto-reader.ts';
import type { TracingConfig, TracingTag } from './types.ts';

function typeOf(config: ProtoObject | undefined): string {
  const t = config?.['@type'];
  return typeof t === 'string' ? t.slice(t.lastIndexOf('/') + 1) : '';
}

/** Envoy's defaults: every request sampled, paths cut at 256 characters. */
const DEFAULT_SAMPLING_PERCENT = 100;
const DEFAULT_MAX_PATH_TAG_LENGTH = 256;

function percent(r: ProtoReader, o: ProtoObject, key: string, path: string): number | undefined {
  const p = r.object(o, key);
  if (p === undefined) return undefined;
  r.only(p, `${path}.${key}`, ['value']);
  const v = r.number(p, 'value') ?? 0;
  if (!(v >= 0 && v <= 100)) {
    r.problem(`${path}.${key}.value`, `${v} is not a percentage (0..100)`);
    return undefined;
  }
  return v;
}

function customTag(r: ProtoReader, o: ProtoObject, path: string): TracingTag | undefined {
  r.only(o, path, ['tag', 'literal', 'request_header']);
  const tag = r.string(o, 'tag') ?? '';
  if (tag === '') r.problem(`${path}.tag`, 'is empty');
  const literal = r.object(o, 'literal');
  if (literal !== undefined) {
    r.only(literal, `${path}.literal`, ['value']);
    return { tag, kind: 'literal', value: r.string(literal, 'value') ?? '' };
  }
  const header = r.object(o, 'request_header');
  if (header !== undefined) {
    r.only(header, `${path}.request_header`, ['name', 'default_value']);
    const name = (r.string(header, 'name') ?? '').toLowerCase();
    if (name === '') r.problem(`${path}.request_header.name`, 'is empty');
    return { tag, kind: 'header', name, defaultValue: r.string(header, 'default_value') ?? '' };
  }
  r.problem(path, 'needs literal or request_header (environment and metadata tags are not supported)');
  return undefined;
}

export function convertTracing(r: ProtoReader, t: ProtoObject, path: string): TracingConfig | undefined {
  r.only(
    t,
    path,
    ['provider', 'random_sampling', 'custom_tags', 'max_path_tag_length'],
    // Client-forced and overall sampling are Envoy's x-client-trace-id machinery; verbose
    // annotations and a separate upstream span are not produced.
    ['client_sampling', 'overall_sampling', 'verbose', 'spawn_upstream_span'],
  );
  const provider = r.object(t, 'provider');
  if (provider === undefined) {
    r.problem(`${path}.provider`, 'is missing (a bootstrap tracer is not supported)');
    return undefined;
  }
  r.only(provider, `${path}.provider`, ['name', 'typed_config']);
  const config = r.object(provider, 'typed_config');
  const type = typeOf(config);
  if (config === undefined || type !== EnvoyType.openTelemetryConfig) {
    r.problem(
      `${path}.provider`,
      `tracer ${JSON.stringify(r.string(provider, 'name') ?? '')} (${type === '' ? 'no typed_config' : type}) is not supported (only envoy.tracers.opentelemetry)`,
    );
    return undefined;
  }
  const cp = `${path}.provider.typed_config`;
  r.only(config, cp, ['grpc_service', 'http_service', 'service_name'], ['resource_detectors']);
  let protocol: TracingConfig['protocol'] = 'grpc';
  let cluster = '';
  let httpPath = '/v1/traces';
  const grpc = r.object(config, 'grpc_service');
  const http = r.object(config, 'http_service');
  if (grpc !== undefined) {
    r.only(grpc, `${cp}.grpc_service`, ['envoy_grpc'], ['timeout', 'initial_metadata']);
    const envoyGrpc = r.object(grpc, 'envoy_grpc');
    if (envoyGrpc === undefined)
      r.problem(`${cp}.grpc_service`, 'needs envoy_grpc (google_grpc is not supported)');
    else {
      r.only(envoyGrpc, `${cp}.grpc_service.envoy_grpc`, ['cluster_name'], ['authority']);
      cluster = r.string(envoyGrpc, 'cluster_name') ?? '';
    }
  } else if (http !== undefined) {
    protocol = 'http';
    r.only(http, `${cp}.http_service`, ['http_uri'], ['request_headers_to_add']);
    const uri = r.object(http, 'http_uri') ?? {};
    r.only(uri, `${cp}.http_service.http_uri`, ['uri', 'cluster'], ['timeout']);
    cluster = r.string(uri, 'cluster') ?? '';
    const text = r.string(uri, 'uri') ?? '';
    try {
      const parsed = new URL(text.includes('://') ? text : `http://${text}`);
      if (parsed.pathname !== '/' && parsed.pathname !== '') httpPath = parsed.pathname;
    } catch {
      r.problem(`${cp}.http_service.http_uri.uri`, `${JSON.stringify(text)} is not a URI`);
    }
  } else {
    r.problem(cp, 'needs grpc_service or http_service (the collector)');
  }
  if (cluster === '' && (grpc !== undefined || http !== undefined))
    r.problem(cp, 'names no collector cluster');
  const customTags = r
    .list(t, 'custom_tags')
    .map((c, i) => customTag(r, c, `${path}.custom_tags[${i}]`))
    .filter(c => c !== undefined);
  return {
    protocol,
    cluster,
    httpPath,
    serviceName: r.string(config, 'service_name') ?? '',
    samplingPercent: percent(r, t, 'random_sampling', path) ?? DEFAULT_SAMPLING_PERCENT,
    customTags,
    maxPathTagLength: r.wrappedNumber(t, 'max_path_tag_length') ?? DEFAULT_MAX_PATH_TAG_LENGTH,
  };
}
