import { trace } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { any, router } from '../testing/fixtures.ts';
import { EnvoyType, decodeEnvoy, encodeEnvoy } from '../xds/envoy-protos.ts';
import type { ProtoObject } from '../xds/envoy-protos.ts';
import { convertListener } from '../config/convert-listener.ts';
import type { Converted, HttpChain, ListenerConfig } from '../config/types.ts';
import { extractContext, injectContext } from './tracing.ts';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';

/** A listener whose one HCM carries `tracing`, through the wire. */
function listenerWith(tracing: ProtoObject): Converted<ListenerConfig> {
  const hcm = any(EnvoyType.httpConnectionManager, {
    stat_prefix: 's',
    rds: { route_config_name: 'r' },
    http_filters: [router],
    tracing,
  });
  const l = { name: 'l', filter_chains: [{ name: 'c', filters: [{ name: 'hcm', typed_config: hcm }] }] };
  return convertListener('l', '1', decodeEnvoy(EnvoyType.listener, encodeEnvoy(EnvoyType.listener, l)));
}

const otel = (config: ProtoObject): ProtoObject => ({
  name: 'envoy.tracers.opentelemetry',
  typed_config: any(EnvoyType.openTelemetryConfig, config),
});

describe('the HCM tracing config', () => {
  it('reads the OpenTelemetry provider (gRPC), random_sampling and custom tags', () => {
    const c = listenerWith({
      provider: otel({
        grpc_service: { envoy_grpc: { cluster_name: 'outbound|4317||otel.ns.svc.cluster.local' } },
        service_name: 'waypoint.ns',
      }),
      random_sampling: { value: 12.5 },
      custom_tags: [
        { tag: 'istio.mesh_id', literal: { value: 'mesh1' } },
        { tag: 'user', request_header: { name: 'X-User', default_value: 'none' } },
      ],
    });
    if (!c.ok) throw new Error(c.problems.join('; '));
    const chain = c.value.chains[0]?.action as HttpChain;
    expect(chain.tracing).toEqual({
      protocol: 'grpc',
      cluster: 'outbound|4317||otel.ns.svc.cluster.local',
      httpPath: '/v1/traces',
      serviceName: 'waypoint.ns',
      samplingPercent: 12.5,
      customTags: [
        { tag: 'istio.mesh_id', kind: 'literal', value: 'mesh1' },
        { tag: 'user', kind: 'header', name: 'x-user', defaultValue: 'none' },
      ],
      maxPathTagLength: 256,
    });
  });

  it('reads OTLP/HTTP with its path, and defaults sampling to 100%', () => {
    const c = listenerWith({
      provider: otel({
        http_service: { http_uri: { uri: 'http://otel:4318/custom/traces', cluster: 'otlp' } },
      }),
    });
    if (!c.ok) throw new Error(c.problems.join('; '));
    const chain = c.value.chains[0]?.action as HttpChain;
    expect(chain.tracing).toMatchObject({
      protocol: 'http',
      cluster: 'otlp',
      httpPath: '/custom/traces',
      samplingPercent: 100,
    });
  });

  it('rejects other tracers and a provider without a collector, naming the field', () => {
    const zipkin = listenerWith({
      provider: { name: 'envoy.tracers.zipkin', typed_config: any('envoy.config.trace.v3.ZipkinConfig', {}) },
    });
    expect(zipkin.ok).toBe(false);
    if (!zipkin.ok) expect(zipkin.problems.join()).toContain('only envoy.tracers.opentelemetry');
    const none = listenerWith({ provider: otel({ service_name: 'x' }) });
    expect(none.ok).toBe(false);
    if (!none.ok) expect(none.problems.join()).toContain('needs grpc_service or http_service');
  });
});

describe('trace context propagation', () => {
  it('extracts W3C first, then B3 multi or single headers', () => {
    const w3c = trace.getSpanContext(
      extractContext({
        traceparent: `00-${TRACE}-${SPAN}-01`,
        'x-b3-traceid': 'a'.repeat(32),
        'x-b3-spanid': 'b'.repeat(16),
      }),
    );
    expect(w3c).toMatchObject({ traceId: TRACE, spanId: SPAN, traceFlags: 1, isRemote: true });
    const multi = trace.getSpanContext(
      extractContext({ 'x-b3-traceid': TRACE, 'x-b3-spanid': SPAN, 'x-b3-sampled': '0' }),
    );
    expect(multi).toMatchObject({ traceId: TRACE, spanId: SPAN, traceFlags: 0 });
    const single = trace.getSpanContext(extractContext({ b3: `${TRACE}-${SPAN}-1` }));
    expect(single).toMatchObject({ traceId: TRACE, spanId: SPAN, traceFlags: 1 });
    expect(trace.getSpanContext(extractContext({ traceparent: 'garbage' }))).toBeUndefined();
  });

  it('injects W3C and B3 headers, and b3 only when the client used it', () => {
    const ctx = extractContext({ traceparent: `00-${TRACE}-${SPAN}-01`, tracestate: 'a=b' });
    const headers: Record<string, string | string[]> = {};
    injectContext(ctx, headers, false);
    expect(headers).toMatchObject({
      traceparent: `00-${TRACE}-${SPAN}-01`,
      tracestate: 'a=b',
      'x-b3-traceid': TRACE,
      'x-b3-spanid': SPAN,
      'x-b3-sampled': '1',
    });
    expect(headers.b3).toBeUndefined();
    injectContext(ctx, headers, true);
    expect(headers.b3).toBe(`${TRACE}-${SPAN}-1`);
  });
});
