import { describe, expect, it } from 'vitest';
import { makeBackendPod, makeBoundService, makeWaypointGateway } from '../testing/waypoint-fixtures.ts';
import { waypointIndexes } from '../testing/waypoint-indexes.ts';
import { EnvoyType, EnvoyTypeUrls, decodeEnvoy, unpackTyped } from './envoy-protos.ts';
import { resolveWaypointTracing, tracingProvidersOf, validateTelemetry } from './translate-tracing.ts';
import type { ValidTelemetry } from './translate-tracing.ts';
import { makeIngressGateway } from '../testing/ingress-fixtures.ts';
import { WaypointKinds as K } from './waypoint-index.ts';

const MESH = {
  extensionProviders: [
    {
      name: 'otel',
      opentelemetry: { service: 'jaeger-collector.istio-system.svc.cluster.local', port: 4317 },
    },
    {
      name: 'otel-http',
      opentelemetry: {
        service: 'otel.obs.svc.cluster.local',
        port: 4318,
        http: { path: 'v1/traces', timeout: '5s' },
      },
    },
    { name: 'zipkin', zipkin: { service: 'zipkin.istio-system.svc.cluster.local', port: 9411 } },
  ],
};

function telemetry(namespace: string, name: string, spec: object): ValidTelemetry {
  const r = validateTelemetry({ metadata: { namespace, name }, spec });
  if (!r.ok) throw new Error(r.problems.join('; '));
  return r.value;
}

const telemetryObject = (namespace: string, name: string, spec: object) => ({
  apiVersion: 'telemetry.istio.io/v1',
  kind: 'Telemetry',
  metadata: { namespace, name },
  spec,
});

interface HcmTracing {
  provider: { name: string; typedConfig: unknown };
  randomSampling: { value: number };
  customTags?: unknown[];
}

describe('waypoint tracing (Telemetry + meshConfig extensionProviders)', () => {
  const providers = tracingProvidersOf(MESH);
  const wp = { namespace: 'ns1', name: 'waypoint' };

  it('reads OpenTelemetry providers, and knows the other kinds as unsupported', () => {
    expect(providers.providers.get('otel')).toEqual({
      name: 'otel',
      service: 'jaeger-collector.istio-system.svc.cluster.local',
      port: 4317,
      timeoutMs: 10_000,
    });
    expect(providers.providers.get('otel-http')).toMatchObject({ httpPath: '/v1/traces', timeoutMs: 5000 });
    expect([...providers.unsupported]).toEqual(['zipkin']);
  });

  it('builds the HCM tracing (OTLP/gRPC to outbound|4317||<service>) and the collector cluster', () => {
    const d = resolveWaypointTracing(
      wp,
      'istio-system',
      [
        telemetry('istio-system', 'mesh-default', {
          tracing: [{ providers: [{ name: 'otel' }], randomSamplingPercentage: 100 }],
        }),
      ],
      providers,
    );
    if (d.kind !== 'tracing') throw new Error(d.kind);
    const hcm = d.tracing.hcm as HcmTracing;
    expect(hcm.provider.name).toBe('envoy.tracers.opentelemetry');
    expect(hcm.randomSampling).toEqual({ value: 100 });
    expect(unpackTyped(hcm.provider.typedConfig)).toMatchObject({
      grpcService: {
        envoyGrpc: {
          clusterName: 'outbound|4317||jaeger-collector.istio-system.svc.cluster.local',
          authority: 'jaeger-collector.istio-system.svc.cluster.local',
        },
      },
      serviceName: 'waypoint.ns1',
    });
    expect(d.tracing.cluster).toMatchObject({
      name: 'outbound|4317||jaeger-collector.istio-system.svc.cluster.local',
      type: 'STRICT_DNS',
    });
  });

  it('applies root, then namespace, then targetRefs Telemetries, the more specific overriding what it sets', () => {
    const root = telemetry('istio-system', 'root', {
      tracing: [
        {
          providers: [{ name: 'otel' }],
          randomSamplingPercentage: 5,
          customTags: { a: { literal: { value: '1' } } },
        },
      ],
    });
    const ns = telemetry('ns1', 'ns', { tracing: [{ randomSamplingPercentage: 50 }] });
    const targeted = telemetry('ns1', 'wp', {
      targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'waypoint' }],
      tracing: [{ providers: [{ name: 'otel-http' }], customTags: { b: { header: { name: 'x-user' } } } }],
    });
    const other = telemetry('ns1', 'other', {
      targetRefs: [{ kind: 'Gateway', name: 'another' }],
      tracing: [{ randomSamplingPercentage: 0 }],
    });
    const d = resolveWaypointTracing(wp, 'istio-system', [root, ns, targeted, other], providers);
    if (d.kind !== 'tracing') throw new Error(d.kind);
    const hcm = d.tracing.hcm as HcmTracing;
    expect(hcm.randomSampling).toEqual({ value: 50 });
    expect(hcm.customTags).toEqual([
      { tag: 'a', literal: { value: '1' } },
      { tag: 'b', requestHeader: { name: 'x-user', defaultValue: '' } },
    ]);
    expect(unpackTyped(hcm.provider.typedConfig)).toMatchObject({
      httpService: {
        httpUri: {
          uri: 'http://otel.obs.svc.cluster.local:4318/v1/traces',
          cluster: 'outbound|4318||otel.obs.svc.cluster.local',
        },
      },
    });
    // Only the root: its 5%.
    const rootOnly = resolveWaypointTracing(wp, 'istio-system', [root], providers);
    expect(rootOnly.kind === 'tracing' && (rootOnly.tracing.hcm as HcmTracing).randomSampling.value).toBe(5);
  });

  it('traces nothing without a Telemetry or default provider, or with disableSpanReporting; names a bad provider', () => {
    expect(resolveWaypointTracing(wp, 'istio-system', [], providers).kind).toBe('none');
    const defaults = tracingProvidersOf({ ...MESH, defaultProviders: { tracing: ['otel'] } });
    const d = resolveWaypointTracing(wp, 'istio-system', [], defaults);
    expect(d.kind === 'tracing' && (d.tracing.hcm as HcmTracing).randomSampling.value).toBe(1);
    const off = telemetry('ns1', 'off', { tracing: [{ disableSpanReporting: true }] });
    expect(resolveWaypointTracing(wp, 'istio-system', [off], defaults).kind).toBe('none');
    const zipkin = resolveWaypointTracing(
      wp,
      'istio-system',
      [telemetry('ns1', 'z', { tracing: [{ providers: [{ name: 'zipkin' }] }] })],
      providers,
    );
    expect(zipkin).toMatchObject({
      kind: 'problem',
      message: expect.stringContaining('only OpenTelemetry') as unknown,
    });
    const missing = resolveWaypointTracing(
      wp,
      'istio-system',
      [telemetry('ns1', 'm', { tracing: [{ providers: [{ name: 'nope' }] }] })],
      providers,
    );
    expect(missing).toMatchObject({
      kind: 'problem',
      message: expect.stringContaining('not in meshConfig extensionProviders') as unknown,
    });
    expect(
      validateTelemetry({ metadata: {}, spec: { tracing: [{ randomSamplingPercentage: 150 }] } }).ok,
    ).toBe(false);
  });

  it('programs the waypoint: the HCM of each HTTP chain traces and CDS has the collector cluster', () => {
    const h = waypointIndexes({ meshConfig: MESH });
    h.upsert(K.GATEWAY, makeWaypointGateway('wp1', 'ns1'));
    h.upsert(K.SERVICE, makeBoundService('reviews', 'ns1', 'wp1', '10.96.0.10'));
    h.upsert(K.POD, makeBackendPod('reviews', 'ns1', '10.244.0.5'));
    const tracingOf = (): HcmTracing | undefined => {
      const main = decodeEnvoy(
        EnvoyType.listener,
        h.waypoints.resourcesFor('ns1/wp1', EnvoyTypeUrls.listener).get('main_internal')!.value,
      ) as { filterChains: { filters: { typedConfig: unknown }[] }[] };
      return (unpackTyped(main.filterChains[0]!.filters[0]!.typedConfig) as { tracing?: HcmTracing }).tracing;
    };
    expect(tracingOf()).toBeUndefined();
    const change = h.upsert(
      K.TELEMETRY,
      telemetryObject('istio-system', 'mesh-default', {
        tracing: [{ providers: [{ name: 'otel' }], randomSamplingPercentage: 25 }],
      }),
    );
    expect(change.waypoints.has('ns1/wp1')).toBe(true);
    expect(tracingOf()?.randomSampling).toEqual({ value: 25 });
    expect(
      h.waypoints
        .resourcesFor('ns1/wp1', EnvoyTypeUrls.cluster)
        .has('outbound|4317||jaeger-collector.istio-system.svc.cluster.local'),
    ).toBe(true);
    // A mesh without the provider: no tracing (and the problem is reported, not thrown).
    h.waypoints.setMeshConfig({});
    expect(tracingOf()).toBeUndefined();
    h.waypoints.setMeshConfig(MESH);
    h.delete(K.TELEMETRY, telemetryObject('istio-system', 'mesh-default', {}));
    expect(tracingOf()).toBeUndefined();
  });

  it('programs an ingress gateway: a Telemetry naming the Gateway traces its HTTP listener as <gw>-istio.<ns>', () => {
    const h = waypointIndexes({ meshConfig: MESH });
    h.upsert(K.GATEWAY, makeIngressGateway('public', 'edge', [{ name: 'http', port: 80, protocol: 'HTTP' }]));
    const tracingOf = (): HcmTracing | undefined => {
      const l = decodeEnvoy(
        EnvoyType.listener,
        h.waypoints.resourcesFor('edge/public', EnvoyTypeUrls.listener).get('0.0.0.0_80')!.value,
      ) as { filterChains: { filters: { typedConfig: unknown }[] }[] };
      return (unpackTyped(l.filterChains[0]!.filters[0]!.typedConfig) as { tracing?: HcmTracing }).tracing;
    };
    expect(tracingOf()).toBeUndefined();
    const change = h.upsert(
      K.TELEMETRY,
      telemetryObject('edge', 'gw-tracing', {
        targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'public' }],
        tracing: [{ providers: [{ name: 'otel' }], randomSamplingPercentage: 100 }],
      }),
    );
    expect(change.waypoints.has('edge/public')).toBe(true);
    const tracing = tracingOf();
    expect(tracing?.randomSampling).toEqual({ value: 100 });
    expect(unpackTyped(tracing!.provider.typedConfig)).toMatchObject({ serviceName: 'public-istio.edge' });
    expect(
      h.waypoints
        .resourcesFor('edge/public', EnvoyTypeUrls.cluster)
        .has('outbound|4317||jaeger-collector.istio-system.svc.cluster.local'),
    ).toBe(true);
  });
});
