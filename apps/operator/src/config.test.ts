import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.ts';

describe('loadConfig', () => {
  it('has defaults', () => {
    expect(loadConfig({})).toMatchObject({
      kubeconfig: undefined,
      inCluster: false,
      resyncMs: 60_000,
      images: {},
      logLevel: 'info',
    });
  });

  it('reads the image map and the resync period', () => {
    const c = loadConfig({
      OPERATOR_IMAGES: 'ambient-mesh/ztunnel=reg/zt:2, ambient-mesh/istiod=reg/istiod:2',
      OPERATOR_RESYNC_PERIOD: '30s',
    });
    expect(c.images).toEqual({ 'ambient-mesh/ztunnel': 'reg/zt:2', 'ambient-mesh/istiod': 'reg/istiod:2' });
    expect(c.resyncMs).toBe(30_000);
  });

  it('names a malformed image entry', () => {
    expect(() => loadConfig({ OPERATOR_IMAGES: 'oops' })).toThrow(/OPERATOR_IMAGES/);
  });
});

describe('loadConfig in a pod', () => {
  it('builds the apiserver URL from KUBERNETES_SERVICE_HOST/PORT (IPv6 in brackets)', () => {
    expect(
      loadConfig({ KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }).apiServer,
    ).toBe('https://10.96.0.1:443');
    expect(loadConfig({ KUBERNETES_SERVICE_HOST: 'fd00::1' }).apiServer).toBe('https://[fd00::1]:443');
    expect(loadConfig({}).apiServer).toBeUndefined();
  });
});
