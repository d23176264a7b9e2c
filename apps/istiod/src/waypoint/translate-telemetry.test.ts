import { describe, expect, it } from 'vitest';
import { makeBackendPod, makeBoundService, makeWaypointGateway } from '../testing/waypoint-fixtures.ts';
import { waypointIndexes } from '../testing/waypoint-indexes.ts';
import { EnvoyType, EnvoyTypeUrls, decodeEnvoy, unpackTyped } from './envoy-protos.ts';
import { validateTelemetry } from './translate-tracing.ts';
import type { ValidTelemetry } from './translate-tracing.ts';
import {
  ACCESS_LOG_OFF_PATH,
  DEFAULT_TEXT_FORMAT,
  resolveWaypointAccessLog,
  resolveWaypointStats,
  telemetryProvidersOf,
} from './translate-telemetry.ts';
import { WaypointKinds as K } from './waypoint-index.ts';

const MESH = {
  extensionProviders: [
    {
      name: 'json-file',
      envoyFileAccessLog: {
        path: '/var/log/wp.json',
        logFormat: { labels: { code: '%RESPONSE_CODE%', path: '%REQ(:PATH)%' } },
      },
    },
    {
      name: 'text-file',
      envoyFileAccessLog: { path: '/dev/stdout', logFormat: { text: '%RESPONSE_CODE%' } },
    },
    { name: 'otel', opentelemetry: { service: 'otel.obs.svc.cluster.local', port: 4317 } },
  ],
};

function telemetry(namespace: string, name: string, spec: object): ValidTelemetry {
  const r = validateTelemetry({ metadata: { namespace, name }, spec });
  if (!r.ok) throw new Error(r.problems.join('; '));
  return r.value;
}

interface AccessLogEntry {
  name: string;
  filter?: { extensionFilter: { name: string; typedConfig: unknown } };
  typedConfig: unknown;
}

/** An access log entry as it goes on the wire (decoded back). */
function wireLog(entry: object): { path: string; text?: string; json?: unknown; filter?: string } {
  const e = entry as AccessLogEntry;
  const cfg = unpackTyped(e.typedConfig) as {
    path: string;
    logFormat: { textFormatSource?: { inlineString: string }; jsonFormat?: unknown };
  };
  const filter = e.filter === undefined ? undefined : unpackTyped(e.filter.extensionFilter.typedConfig);
  return {
    path: cfg.path,
    ...(cfg.logFormat.textFormatSource === undefined
      ? {}
      : { text: cfg.logFormat.textFormatSource.inlineString }),
    ...(cfg.logFormat.jsonFormat === undefined ? {} : { json: cfg.logFormat.jsonFormat }),
    ...(filter === undefined ? {} : { filter: (filter as { expression: string }).expression }),
  };
}

/** The stats filter's `metrics` (TypedStruct → Struct → plain). */
function wireMetrics(filter: object): unknown {
  const f = filter as { name: string; typedConfig: unknown };
  expect(f.name).toBe('istio.stats');
  const ts = unpackTyped(f.typedConfig) as { typeUrl: string; value: { fields: Record<string, unknown> } };
  expect(ts.typeUrl).toBe('type.googleapis.com/stats.PluginConfig');
  const plain = (v: unknown): unknown => {
    const x = v as Record<string, unknown>;
    if ('stringValue' in x) return x.stringValue;
    if ('boolValue' in x) return x.boolValue;
    if ('numberValue' in x) return x.numberValue;
    if ('listValue' in x) return ((x.listValue as { values?: unknown[] }).values ?? []).map(plain);
    if ('structValue' in x)
      return Object.fromEntries(
        Object.entries((x.structValue as { fields?: Record<string, unknown> }).fields ?? {}).map(([k, y]) => [
          k,
          plain(y),
        ]),
      );
    return null;
  };
  return plain(ts.value.fields.metrics);
}

describe('waypoint access logging and metrics (Telemetry + meshConfig)', () => {
  const providers = telemetryProvidersOf(MESH);
  const wp = { namespace: 'ns1', name: 'waypoint' };

  it('leaves access logging and stats to the waypoint when nothing configures them', () => {
    expect(resolveWaypointAccessLog(wp, 'istio-system', [], providers)).toEqual({ kind: 'default' });
    expect(resolveWaypointStats(wp, 'istio-system', [], providers)).toEqual({ kind: 'default' });
  });

  it('logs with meshConfig accessLogFile alone (the built-in envoy provider), in its encoding', () => {
    const text = resolveWaypointAccessLog(
      wp,
      'istio-system',
      [],
      telemetryProvidersOf({ accessLogFile: '/dev/stdout' }),
    );
    expect(text.kind === 'access-log' && text.accessLog.map(wireLog)).toEqual([
      { path: '/dev/stdout', text: DEFAULT_TEXT_FORMAT },
    ]);
    const json = resolveWaypointAccessLog(
      wp,
      'istio-system',
      [],
      telemetryProvidersOf({ accessLogFile: '/dev/stdout', accessLogEncoding: 'JSON' }),
    );
    const j = json.kind === 'access-log' ? wireLog(json.accessLog[0]!) : undefined;
    expect(j?.path).toBe('/dev/stdout');
    expect(JSON.stringify(j?.json)).toContain('%RESPONSE_CODE%');
  });

  it('applies root, namespace, then targetRefs Telemetries: providers set, filtered or disabled', () => {
    const root = telemetry('istio-system', 'mesh', { accessLogging: [{ providers: [{ name: 'envoy' }] }] });
    const ns = telemetry('ns1', 'ns-logs', {
      accessLogging: [
        { providers: [{ name: 'json-file' }], filter: { expression: 'response.code >= 400' } },
        { providers: [{ name: 'text-file' }], match: { mode: 'CLIENT' } },
      ],
    });
    const targeted = telemetry('ns1', 'wp-off', {
      targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'waypoint' }],
      accessLogging: [{ providers: [{ name: 'envoy' }], disabled: true }],
    });
    const both = resolveWaypointAccessLog(wp, 'istio-system', [root, ns], providers);
    expect(both.kind === 'access-log' && both.accessLog.map(wireLog)).toEqual([
      { path: '/dev/stdout', text: DEFAULT_TEXT_FORMAT },
      {
        path: '/var/log/wp.json',
        json: {
          fields: { code: { stringValue: '%RESPONSE_CODE%' }, path: { stringValue: '%REQ(:PATH)%' } },
        },
        filter: 'response.code >= 400',
      },
    ]);
    expect(
      (both as unknown as { accessLog: AccessLogEntry[] }).accessLog[1]!.filter?.extensionFilter.name,
    ).toBe('envoy.access_loggers.extension_filters.cel');
    const narrowed = resolveWaypointAccessLog(wp, 'istio-system', [root, ns, targeted], providers);
    expect(narrowed.kind === 'access-log' && narrowed.accessLog.map(wireLog).map(l => l.path)).toEqual([
      '/var/log/wp.json',
    ]);
    // Disabling everything is a logger to /dev/null: the waypoint's built-in log is off too.
    const off = resolveWaypointAccessLog(
      wp,
      'istio-system',
      [
        telemetry('ns1', 'off', { accessLogging: [{ providers: [{ name: 'envoy' }], disabled: true }] }),
        root,
      ],
      providers,
    );
    expect(off.kind === 'access-log' && off.accessLog.map(wireLog).map(l => l.path)).toEqual([
      ACCESS_LOG_OFF_PATH,
    ]);
  });

  it('names providers it cannot use, and rejects unsupported expressions at validation', () => {
    const d = resolveWaypointAccessLog(
      wp,
      'istio-system',
      [telemetry('ns1', 't', { accessLogging: [{ providers: [{ name: 'otel' }, { name: 'nope' }] }] })],
      providers,
    );
    expect(d.kind === 'access-log' && d.problems).toEqual([
      'access log provider "nope" is not in meshConfig extensionProviders',
      'access log provider "otel" is not an envoyFileAccessLog provider (only file access logs are supported)',
    ]);
    const bad = validateTelemetry({
      metadata: { namespace: 'ns1', name: 'bad' },
      spec: {
        accessLogging: [{ filter: { expression: "has(request.headers['x'])" } }],
        metrics: [
          {
            overrides: [
              { tagOverrides: { user: { value: 'request.size + 1' } } },
              { match: { customMetric: 'my_metric' } },
            ],
          },
        ],
      },
    });
    expect(bad.ok ? [] : bad.problems.map(p => p.split(':')[0])).toEqual([
      'spec.accessLogging[0].filter.expression',
      'spec.metrics[0].overrides[0].tagOverrides.user.value',
      'spec.metrics[0].overrides[1].match',
    ]);
  });

  it('builds the istio.stats filter: dropped metrics, removed and upserted tags, merged by specificity', () => {
    const root = telemetry('istio-system', 'mesh', {
      metrics: [
        {
          providers: [{ name: 'prometheus' }],
          overrides: [
            {
              match: { metric: 'REQUEST_COUNT' },
              tagOverrides: { request_protocol: { operation: 'REMOVE' } },
            },
            { match: { metric: 'REQUEST_SIZE' }, disabled: true },
          ],
        },
      ],
    });
    const targeted = telemetry('ns1', 'wp', {
      targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'waypoint' }],
      metrics: [
        {
          overrides: [
            {
              match: { metric: 'REQUEST_COUNT', mode: 'SERVER' },
              tagOverrides: { user: { operation: 'UPSERT', value: "request.headers['x-user']" } },
            },
            { match: { metric: 'REQUEST_SIZE' }, disabled: false },
            { match: { metric: 'RESPONSE_SIZE', mode: 'CLIENT' }, disabled: true },
          ],
        },
      ],
    });
    const d = resolveWaypointStats(wp, 'istio-system', [root, targeted], providers);
    expect(d.kind === 'stats' && wireMetrics(d.filter)).toEqual([
      { name: 'request_bytes' },
      {
        name: 'requests_total',
        dimensions: { user: "request.headers['x-user']" },
        tags_to_remove: ['request_protocol'],
      },
    ]);
    const off = resolveWaypointStats(
      wp,
      'istio-system',
      [root, telemetry('ns1', 'quiet', { metrics: [{ reportingDisabled: true }] })],
      providers,
    );
    const dropped =
      off.kind === 'stats' ? (wireMetrics(off.filter) as { name: string; drop?: boolean }[]) : [];
    expect(dropped.length).toBe(10);
    expect(dropped.every(m => m.drop === true)).toBe(true);
  });

  it('programs the waypoint: the HCM carries access_log and the stats filter runs before the router', () => {
    const h = waypointIndexes({ meshConfig: MESH });
    h.upsert(K.GATEWAY, makeWaypointGateway('wp1', 'ns1'));
    h.upsert(K.SERVICE, makeBoundService('reviews', 'ns1', 'wp1', '10.96.0.10'));
    h.upsert(K.POD, makeBackendPod('reviews', 'ns1', '10.244.0.5'));
    const hcm = () => {
      const main = decodeEnvoy(
        EnvoyType.listener,
        h.waypoints.resourcesFor('ns1/wp1', EnvoyTypeUrls.listener).get('main_internal')!.value,
      ) as { filterChains: { filters: { typedConfig: unknown }[] }[] };
      return unpackTyped(main.filterChains[0]!.filters[0]!.typedConfig) as {
        accessLog?: object[];
        httpFilters: { name: string }[];
      };
    };
    expect(hcm().accessLog).toBeUndefined();
    expect(hcm().httpFilters.map(f => f.name)).not.toContain('istio.stats');
    const object = {
      apiVersion: 'telemetry.istio.io/v1',
      kind: 'Telemetry',
      metadata: { namespace: 'ns1', name: 'logs' },
      spec: {
        accessLogging: [{ providers: [{ name: 'text-file' }] }],
        metrics: [{ overrides: [{ match: { metric: 'REQUEST_DURATION' }, disabled: true }] }],
      },
    };
    const change = h.upsert(K.TELEMETRY, object);
    expect(change.waypoints.has('ns1/wp1')).toBe(true);
    expect(hcm().accessLog?.map(wireLog)).toEqual([{ path: '/dev/stdout', text: '%RESPONSE_CODE%\n' }]);
    expect(
      hcm()
        .httpFilters.map(f => f.name)
        .slice(-2),
    ).toEqual(['istio.stats', 'envoy.filters.http.router']);
  });

  it('puts the istio.stats network filter before the tcp_proxy of a TCP chain (TCP metric overrides)', () => {
    const h = waypointIndexes({ meshConfig: MESH });
    h.upsert(K.GATEWAY, makeWaypointGateway('wp1', 'ns1'));
    const svc = makeBoundService('db', 'ns1', 'wp1', '10.96.0.11', 5432);
    const tcpSvc = { ...svc, spec: { ...svc.spec, ports: [{ name: 'tcp', port: 5432, targetPort: 8080 }] } };
    h.upsert(K.SERVICE, tcpSvc);
    h.upsert(K.POD, makeBackendPod('db', 'ns1', '10.244.0.6'));
    const filters = () => {
      const main = decodeEnvoy(
        EnvoyType.listener,
        h.waypoints.resourcesFor('ns1/wp1', EnvoyTypeUrls.listener).get('main_internal')!.value,
      ) as { filterChains: { name: string; filters: { name: string; typedConfig: unknown }[] }[] };
      return main.filterChains.find(c => c.name.includes('|tcp|db.'))!.filters;
    };
    expect(filters().map(f => f.name)).toEqual(['envoy.filters.network.tcp_proxy']);
    const object = {
      apiVersion: 'telemetry.istio.io/v1',
      kind: 'Telemetry',
      metadata: { namespace: 'ns1', name: 'tcp' },
      spec: { metrics: [{ overrides: [{ match: { metric: 'TCP_SENT_BYTES' }, disabled: true }] }] },
    };
    h.upsert(K.TELEMETRY, object);
    expect(filters().map(f => f.name)).toEqual(['istio.stats', 'envoy.filters.network.tcp_proxy']);
    expect(wireMetrics(filters()[0]!)).toEqual([{ name: 'tcp_sent_bytes_total', drop: true }]);
  });
});
