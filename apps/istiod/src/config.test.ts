import { describe, expect, it } from 'vitest';
import { isMeshError } from '@ambient-mesh/errors';
import { loadConfig, parseGoDurationMs } from './config.ts';
import type { ConfigError } from './errors.ts';

describe('loadConfig', () => {
  it('applies upstream defaults when nothing is set', () => {
    const c = loadConfig({ env: {}, argv: [] });
    expect(c.podNamespace).toBe('istio-system');
    expect(c.clusterId).toBe('Kubernetes');
    expect(c.trustedNodeAccounts).toEqual([{ namespace: 'istio-system', serviceAccount: 'ztunnel' }]);
    expect(c.secureGrpcAddr).toEqual({ host: '::', port: 15012 });
    expect(c.httpAddr.port).toBe(8080);
    expect(c.monitoringAddr.port).toBe(15014);
    expect(c.debugAddr).toEqual({ host: '127.0.0.1', port: 9876 });
    expect(c.domain).toBe('cluster.local');
    expect(c.defaultCertTtlSeconds).toBe(86_400);
    expect(c.maxCertTtlSeconds).toBe(90 * 86_400);
    expect(c.logFormat).toBe('text');
    expect(c.revision).toBe('default');
    // Upstream's default: istiod fetches each jwksUri and inlines it, refreshing every 20 minutes.
    expect(c.jwksFetchMode).toBe('istiod');
    expect(c.jwksRefreshIntervalMs).toBe(20 * 60_000);
    expect(c.enableNodeUntaintControllers).toBe(false);
    expect(c.cniNamespace).toBe('istio-system');
    expect(c.grpcMaxRecvMsgSize).toBe(4 * 1024 * 1024);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('reads upstream env names and both flag spellings', () => {
    const c = loadConfig({
      env: {
        POD_NAMESPACE: 'mesh',
        CLUSTER_ID: 'c1',
        CA_TRUSTED_NODE_ACCOUNTS: 'mesh/zt, other/node',
        PILOT_ENABLE_AMBIENT: 'false',
        ISTIOD_CUSTOM_HOST: 'a.example,b.example',
        ROOT_CA_DIR: '/certs',
        LOG_FORMAT: 'json',
        REVISION: 'default-v1-27-9',
        PILOT_ENABLE_NODE_UNTAINT_CONTROLLERS: 'true',
      },
      argv: [
        '--domain=corp.local',
        '--httpAddr',
        ':18080',
        '-secureGRPCAddr=127.0.0.1:0',
        '--kubeconfig',
        'kc',
        '--cniNamespace=kube-system',
      ],
    });
    expect(c.podNamespace).toBe('mesh');
    expect(c.cniNamespace).toBe('kube-system');
    expect(c.clusterId).toBe('c1');
    expect(c.trustedNodeAccounts).toEqual([
      { namespace: 'mesh', serviceAccount: 'zt' },
      { namespace: 'other', serviceAccount: 'node' },
    ]);
    expect(c.enableAmbient).toBe(false);
    expect(c.customHosts).toEqual(['a.example', 'b.example']);
    expect(c.rootCaDir).toBe('/certs');
    expect(c.logFormat).toBe('json');
    expect(c.domain).toBe('corp.local');
    expect(c.httpAddr).toEqual({ host: '::', port: 18080 });
    expect(c.secureGrpcAddr).toEqual({ host: '127.0.0.1', port: 0 });
    expect(c.kubeconfig).toBe('kc');
    expect(c.revision).toBe('default-v1-27-9');
    expect(c.enableNodeUntaintControllers).toBe(true);
  });

  it('the CNI namespace defaults to POD_NAMESPACE; ISTIO_GPRC_MAXRECVMSGSIZE must be a positive byte count', () => {
    expect(loadConfig({ env: { POD_NAMESPACE: 'mesh' }, argv: [] }).cniNamespace).toBe('mesh');
    expect(loadConfig({ env: {}, argv: ['--cniNamespace='] }).cniNamespace).toBe('istio-system');
    expect(loadConfig({ env: { ISTIO_GPRC_MAXRECVMSGSIZE: '1024' }, argv: [] }).grpcMaxRecvMsgSize).toBe(
      1024,
    );
    for (const bad of ['0', '-1', '1.5', 'lots']) {
      expect(() => loadConfig({ env: { ISTIO_GPRC_MAXRECVMSGSIZE: bad }, argv: [] })).toThrow(
        /ISTIO_GPRC_MAXRECVMSGSIZE/,
      );
    }
  });

  it('reads PILOT_JWT_ENABLE_REMOTE_JWKS (true/envoy: the waypoint fetches) and PILOT_JWT_PUB_KEY_REFRESH_INTERVAL', () => {
    const mode = (v: string) =>
      loadConfig({ env: { PILOT_JWT_ENABLE_REMOTE_JWKS: v }, argv: [] }).jwksFetchMode;
    expect(['true', 'envoy', 'false', 'istiod', 'hybrid', 'TRUE'].map(mode)).toEqual([
      'envoy',
      'envoy',
      'istiod',
      'istiod',
      'istiod',
      'envoy',
    ]);
    expect(
      loadConfig({ env: { PILOT_JWT_PUB_KEY_REFRESH_INTERVAL: '5m' }, argv: [] }).jwksRefreshIntervalMs,
    ).toBe(300_000);
  });

  it('names the variable when a value is bad', () => {
    const bad: [Record<string, string>, string[], string][] = [
      [{ LOG_FORMAT: 'xml' }, [], 'LOG_FORMAT'],
      [{ CA_TRUSTED_NODE_ACCOUNTS: 'nosa' }, [], 'CA_TRUSTED_NODE_ACCOUNTS'],
      [{ PILOT_ENABLE_AMBIENT: 'maybe' }, [], 'PILOT_ENABLE_AMBIENT'],
      [{ MAX_WORKLOAD_CERT_TTL: '3 days' }, [], 'MAX_WORKLOAD_CERT_TTL'],
      [{ PILOT_JWT_ENABLE_REMOTE_JWKS: 'sometimes' }, [], 'PILOT_JWT_ENABLE_REMOTE_JWKS'],
      [{ PILOT_JWT_PUB_KEY_REFRESH_INTERVAL: '10ms' }, [], 'PILOT_JWT_PUB_KEY_REFRESH_INTERVAL'],
      [{}, ['--httpAddr=:99999'], '--httpAddr'],
      [{}, ['--debugAddr=0.0.0.0:9876'], '--debugAddr'],
      [{}, ['--unknown=1'], '--unknown'],
    ];
    for (const [env, argv, name] of bad) {
      let caught: unknown;
      try {
        loadConfig({ env, argv });
      } catch (err) {
        caught = err;
      }
      expect(isMeshError(caught, 'ISTIOD_CONFIG_INVALID'), name).toBe(true);
      expect((caught as Error).message).toContain(name);
    }
  });
});

describe('loadConfig problems', () => {
  it('reports every bad variable and flag in one ConfigError', () => {
    let caught: unknown;
    try {
      loadConfig({
        env: { LOG_FORMAT: 'xml', PILOT_ENABLE_AMBIENT: 'maybe', PILOT_DEBOUNCE_AFTER: 'soon' },
        argv: ['discovery', '--httpAddr=:99999', '--debugAddr=0.0.0.0:9876', '--unknown=1'],
      });
    } catch (err) {
      caught = err;
    }
    expect(isMeshError(caught, 'ISTIOD_CONFIG_INVALID')).toBe(true);
    expect((caught as ConfigError).settings).toEqual([
      '--unknown',
      '--debugAddr',
      'PILOT_ENABLE_AMBIENT',
      'PILOT_DEBOUNCE_AFTER',
      '--httpAddr',
      'LOG_FORMAT',
    ]);
    expect((caught as Error).message).toMatch(/^invalid istiod configuration \(6 problems\)/);
  });
});

describe('parseGoDurationMs', () => {
  it('parses Go duration strings', () => {
    expect(parseGoDurationMs('100ms')).toBe(100);
    expect(parseGoDurationMs('1h30m')).toBe(5_400_000);
    expect(parseGoDurationMs('2160h')).toBe(2160 * 3_600_000);
    expect(parseGoDurationMs('1.5s')).toBe(1500);
    expect(parseGoDurationMs('')).toBeUndefined();
    expect(parseGoDurationMs('10')).toBeUndefined();
    expect(parseGoDurationMs('5d')).toBeUndefined();
  });
});
