import { describe, expect, it } from 'vitest';
import { ConfigError } from './errors.ts';
import { loadConfig, parseDurationSeconds, xdsNodeId, xdsNodeMetadata } from './config.ts';

const BASE = { POD_NAME: 'ztunnel-abc', POD_NAMESPACE: 'istio-system', NODE_NAME: 'node-1' };

describe('loadConfig', () => {
  it('applies upstream defaults and freezes the result', () => {
    const config = loadConfig(BASE);
    expect(config.xdsAddress).toBe('https://istiod.istio-system.svc:15012');
    expect(config.caAddress).toBe(config.xdsAddress);
    expect(config.instanceIp).toBe('1.1.1.1');
    expect(config.clusterId).toBe('Kubernetes');
    expect(config.secretTtlSeconds).toBe(86_400);
    expect(config.inpodUds).toBe('/var/run/ztunnel/ztunnel.sock');
    expect(config.tokenPath).toBe('/var/run/secrets/tokens/istio-token');
    expect(config.logFormat).toBe('text');
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('serves the in-pod listeners on IPv6 too unless IPV6_ENABLED is false', () => {
    expect(loadConfig(BASE).ipv6Enabled).toBe(true);
    expect(loadConfig({ ...BASE, IPV6_ENABLED: 'false' }).ipv6Enabled).toBe(false);
    expect(() => loadConfig({ ...BASE, IPV6_ENABLED: 'sometimes' })).toThrow(/IPV6_ENABLED/);
  });

  it('lets V8 follow load into memory mode unless MEMORY_MODE is false', () => {
    expect(loadConfig(BASE).memoryMode).toBe(true);
    expect(loadConfig({ ...BASE, MEMORY_MODE: 'false' }).memoryMode).toBe(false);
    expect(() => loadConfig({ ...BASE, MEMORY_MODE: 'maybe' })).toThrow(/MEMORY_MODE/);
  });

  it('runs the DNS proxy unless ISTIO_META_DNS_CAPTURE is false, reading /etc/resolv.conf by default', () => {
    expect(loadConfig(BASE)).toMatchObject({ dnsProxy: true, dnsResolvConfPath: '/etc/resolv.conf' });
    expect(loadConfig({ ...BASE, ISTIO_META_DNS_CAPTURE: 'true' }).dnsProxy).toBe(true);
    expect(loadConfig({ ...BASE, ISTIO_META_DNS_CAPTURE: 'False' }).dnsProxy).toBe(false);
    expect(loadConfig({ ...BASE, ISTIO_METAJSON_DNS_CAPTURE: 'false' }).dnsProxy).toBe(false);
    expect(loadConfig({ ...BASE, DNS_RESOLV_CONF: '/run/resolv.conf' }).dnsResolvConfPath).toBe(
      '/run/resolv.conf',
    );
  });

  it('reads upstream names, Go durations, metadata and extra headers', () => {
    const config = loadConfig({
      ...BASE,
      CA_ADDRESS: 'https://ca.example:15012',
      ISTIO_META_CLUSTER_ID: 'c1',
      ISTIO_META_DNS_CAPTURE: 'true',
      ISTIO_METAJSON_LABELS: '{"a":"b"}',
      SECRET_TTL: '1h30m',
      LOG_FORMAT: 'json',
      INPOD_UDS: '/run/z.sock',
      XDS_HEADER_X_TENANT: 't1',
    });
    expect(config.caAddress).toBe('https://ca.example:15012');
    expect(config.clusterId).toBe('c1');
    expect(config.secretTtlSeconds).toBe(5400);
    expect(config.logFormat).toBe('json');
    expect(config.proxyMetadata).toEqual({ CLUSTER_ID: 'c1', DNS_CAPTURE: 'true', LABELS: { a: 'b' } });
    expect(config.xdsHeaders).toEqual({ 'x-tenant': 't1' });
    expect(config.inpodUds).toBe('/run/z.sock');
  });

  it('derives the drain deadline from the grace period as upstream, or takes CONNECTION_TERMINATION_DEADLINE', () => {
    const base = { POD_NAME: 'p', POD_NAMESPACE: 'n', NODE_NAME: 'node' };
    const deadline = (env: Record<string, string>): number =>
      loadConfig({ ...base, ...env }).connectionTerminationDeadlineMs;
    expect(deadline({})).toBe(5_000);
    expect(deadline({ TERMINATION_GRACE_PERIOD_SECONDS: '30' })).toBe(25_000);
    expect(deadline({ TERMINATION_GRACE_PERIOD_SECONDS: '10' })).toBe(9_000);
    expect(deadline({ TERMINATION_GRACE_PERIOD_SECONDS: '1' })).toBe(1_000);
    expect(deadline({ TERMINATION_GRACE_PERIOD_SECONDS: '30', CONNECTION_TERMINATION_DEADLINE: '3s' })).toBe(
      3_000,
    );
  });

  it('reads the connection limits, with their defaults, 0 turning the idle ones and the per-source cap off', () => {
    const d = loadConfig(BASE);
    expect({
      handshake: d.hboneHandshakeTimeoutMs,
      connect: d.upstreamConnectTimeoutMs,
      idle: d.connectionIdleTimeoutMs,
      session: d.hboneIdleSessionTimeoutMs,
      perSource: d.maxConnectionsPerSource,
    }).toEqual({ handshake: 10_000, connect: 10_000, idle: 3_600_000, session: 600_000, perSource: 4096 });
    const c = loadConfig({
      ...BASE,
      HBONE_HANDSHAKE_TIMEOUT: '2s',
      UPSTREAM_CONNECT_TIMEOUT: '3',
      CONNECTION_IDLE_TIMEOUT: '0',
      HBONE_IDLE_SESSION_TIMEOUT: '1m',
      MAX_CONNECTIONS_PER_SOURCE: '0',
    });
    expect([
      c.hboneHandshakeTimeoutMs,
      c.upstreamConnectTimeoutMs,
      c.connectionIdleTimeoutMs,
      c.hboneIdleSessionTimeoutMs,
      c.maxConnectionsPerSource,
    ]).toEqual([2_000, 3_000, 0, 60_000, 0]);
    expect(() => loadConfig({ ...BASE, HBONE_HANDSHAKE_TIMEOUT: '0s' })).toThrow(/HBONE_HANDSHAKE_TIMEOUT/);
    expect(() => loadConfig({ ...BASE, MAX_CONNECTIONS_PER_SOURCE: 'many' })).toThrow(
      /MAX_CONNECTIONS_PER_SOURCE/,
    );
  });

  it('reads the control-plane channel bounds as durations', () => {
    const base = { POD_NAME: 'p', POD_NAMESPACE: 'n', NODE_NAME: 'node' };
    expect(loadConfig(base)).toMatchObject({
      controlPlaneConnectTimeoutMs: 5_000,
      controlPlaneKeepaliveIntervalMs: 10_000,
      controlPlaneKeepaliveTimeoutMs: 5_000,
    });
    const set = loadConfig({
      ...base,
      CONTROL_PLANE_CONNECT_TIMEOUT: '500ms',
      CONTROL_PLANE_KEEPALIVE_INTERVAL: '20',
      CONTROL_PLANE_KEEPALIVE_TIMEOUT: '2s',
    });
    expect(set).toMatchObject({
      controlPlaneConnectTimeoutMs: 500,
      controlPlaneKeepaliveIntervalMs: 20_000,
      controlPlaneKeepaliveTimeoutMs: 2_000,
    });
    expect(() => loadConfig({ ...base, CONTROL_PLANE_CONNECT_TIMEOUT: '0s' })).toThrow(
      /CONTROL_PLANE_CONNECT_TIMEOUT/,
    );
  });

  it('prefers CLUSTER_ID over ISTIO_META_CLUSTER_ID', () => {
    expect(loadConfig({ ...BASE, CLUSTER_ID: 'a', ISTIO_META_CLUSTER_ID: 'b' }).clusterId).toBe('a');
  });

  it('reports every invalid variable in one ConfigError', () => {
    let caught: unknown;
    try {
      loadConfig({ XDS_ADDRESS: 'not a url', SECRET_TTL: 'forever', INSTANCE_IP: 'x', LOG_FORMAT: 'xml' });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const problems = (caught as ConfigError).problems;
    expect(problems).toHaveLength(8);
    expect(problems.join('\n')).toMatch(/POD_NAME: required/);
    expect(problems.join('\n')).toMatch(/SECRET_TTL: "forever"/);
    expect((caught as ConfigError).code).toBe('ZTUNNEL_CONFIG_INVALID');
  });
});

describe('parseDurationSeconds', () => {
  it('parses Go durations and bare seconds', () => {
    expect(parseDurationSeconds('24h0m0s')).toBe(86_400);
    expect(parseDurationSeconds('500ms')).toBe(0.5);
    expect(parseDurationSeconds('30')).toBe(30);
    expect(parseDurationSeconds('1x')).toBeUndefined();
    expect(parseDurationSeconds('')).toBeUndefined();
  });
});

describe('xDS node', () => {
  it('builds the node id and metadata as upstream ztunnel does', () => {
    const config = loadConfig({ ...BASE, INSTANCE_IP: '10.0.0.5', ISTIO_META_DNS_CAPTURE: 'true' });
    expect(xdsNodeId(config)).toBe(
      'ztunnel~10.0.0.5~ztunnel-abc.istio-system~istio-system.svc.cluster.local',
    );
    expect(xdsNodeMetadata(config)).toEqual({
      NAME: 'ztunnel-abc',
      NAMESPACE: 'istio-system',
      INSTANCE_IPS: '10.0.0.5',
      NODE_NAME: 'node-1',
      CLUSTER_ID: 'Kubernetes',
      DNS_CAPTURE: 'true',
    });
  });
});
