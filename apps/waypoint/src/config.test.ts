import { describe, expect, it } from 'vitest';
import { ConfigError } from '@ambient-mesh/runtime';
import { loadConfig, modeOf, parsePodLabels, xdsNodeId, xdsNodeMetadata } from './config.ts';

describe('loadConfig', () => {
  it('reads the mode from the command line: router (as the gateway Deployment passes it) or waypoint', () => {
    const env = { POD_NAME: 'gw-istio-5f', POD_NAMESPACE: 'edge', INSTANCE_IP: '10.244.1.9' };
    expect(loadConfig(env).mode).toBe('waypoint');
    const router = loadConfig(env, ['router']);
    expect(router.mode).toBe('router');
    expect(xdsNodeId(router)).toBe('router~10.244.1.9~gw-istio-5f.edge~edge.svc.cluster.local');
    expect(modeOf(['proxy', 'router'])).toBe('router');
    expect(modeOf(['waypoint'])).toBe('waypoint');
    expect(() => loadConfig(env, ['sidecar'])).toThrow(/unknown mode "sidecar"/);
  });

  it('reads the environment with defaults', () => {
    const c = loadConfig({
      POD_NAME: 'waypoint-7d9',
      POD_NAMESPACE: 'bookinfo',
      INSTANCE_IP: '10.244.1.7',
      XDS_HEADER_X_TENANT: 'a',
    });
    expect(c).toMatchObject({
      xdsAddress: 'https://istiod.istio-system.svc:15012',
      hboneAddress: { host: '0.0.0.0', port: 15008 },
      statsAddress: { port: 15020 },
      readinessAddress: { port: 15021 },
      adminAddress: { host: '127.0.0.1', port: 15000 },
      maxRequestBodyBytes: 16 * 1024 * 1024,
      xdsHeaders: { 'x-tenant': 'a' },
      terminationGracePeriodMs: 5_000,
      drainDurationMs: 1_000,
    });
    expect(
      loadConfig({ POD_NAME: 'w', POD_NAMESPACE: 'n', TERMINATION_DRAIN_DURATION_SECONDS: '3' })
        .drainDurationMs,
    ).toBe(3_000);
    expect(xdsNodeId(c)).toBe('waypoint~10.244.1.7~waypoint-7d9.bookinfo~bookinfo.svc.cluster.local');
    expect(xdsNodeMetadata(c)).toMatchObject({
      NAME: 'waypoint-7d9',
      NAMESPACE: 'bookinfo',
      CLUSTER_ID: 'Kubernetes',
    });
    // PROXY_CONFIG marks a proxy (istiod lists it in istioctl proxy-status); the version is ISTIO_VERSION.
    expect(xdsNodeMetadata(c, '0.1.0')).toMatchObject({
      ISTIO_VERSION: '0.1.0',
      PROXY_CONFIG: { discoveryAddress: expect.stringMatching(/:15012$/) as unknown },
    });
    expect(xdsNodeMetadata(c)).not.toHaveProperty('ISTIO_VERSION');
  });

  it("sends the pod's labels (downward API file) as node metadata LABELS, as istio-agent does", () => {
    const c = loadConfig({ POD_NAME: 'public-istio-5f7c9-abcde', POD_NAMESPACE: 'edge' });
    expect(c.podInfoDir).toBe('/etc/istio/pod');
    expect(
      loadConfig({ POD_NAME: 'w', POD_NAMESPACE: 'n', ISTIO_POD_INFO_DIR: '/tmp/podinfo' }).podInfoDir,
    ).toBe('/tmp/podinfo');
    const labels = parsePodLabels(
      'gateway.networking.k8s.io/gateway-name="public"\nservice.istio.io/canonical-name="public-istio"\n' +
        'quoted="a \\"b\\""\nbroken=unquoted\n\n',
    );
    expect(labels).toEqual({
      'gateway.networking.k8s.io/gateway-name': 'public',
      'service.istio.io/canonical-name': 'public-istio',
      quoted: 'a "b"',
    });
    expect(xdsNodeMetadata(c, '0.1.0', labels)).toMatchObject({ LABELS: labels });
    expect(xdsNodeMetadata(c, '0.1.0', {})).not.toHaveProperty('LABELS');
  });

  it('reads the certificate lifetime asked of the CA (SECRET_TTL, 24h by default)', () => {
    const base = { POD_NAME: 'w', POD_NAMESPACE: 'n' };
    expect(loadConfig(base).secretTtlSeconds).toBe(86_400);
    expect(loadConfig({ ...base, SECRET_TTL: '1h30m' }).secretTtlSeconds).toBe(5_400);
    expect(loadConfig({ ...base, SECRET_TTL: '600' }).secretTtlSeconds).toBe(600);
    expect(() => loadConfig({ ...base, SECRET_TTL: '0s' })).toThrow(/SECRET_TTL/);
  });

  it("takes istiod's host:port as TLS, as pilot-agent does (what istiod's waypoint Deployment sets)", () => {
    const c = loadConfig({
      POD_NAME: 'waypoint-7d9',
      POD_NAMESPACE: 'bookinfo',
      XDS_ADDRESS: 'istiod.istio-system.svc:15012',
      CA_ADDR: 'istiod.istio-system.svc:15012',
      TRUST_DOMAIN: 'example.org',
      SERVICE_ACCOUNT: 'waypoint',
    });
    expect(c).toMatchObject({
      xdsAddress: 'https://istiod.istio-system.svc:15012',
      caAddress: 'https://istiod.istio-system.svc:15012',
      trustDomain: 'example.org',
      serviceAccount: 'waypoint',
    });
  });

  it('reports every problem at once', () => {
    let error: unknown;
    try {
      loadConfig({ XDS_ADDRESS: 'ftp://istiod:15012', INSTANCE_IP: 'nope', WAYPOINT_MAX_HEADER_BYTES: '10' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const text = (error as Error).message;
    for (const name of [
      'XDS_ADDRESS',
      'POD_NAME',
      'POD_NAMESPACE',
      'INSTANCE_IP',
      'WAYPOINT_MAX_HEADER_BYTES',
    ]) {
      expect(text).toContain(name);
    }
  });
});
