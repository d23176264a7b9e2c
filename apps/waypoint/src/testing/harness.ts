/** Shared test support: the waypoint's config on loopback, and a seeded PRNG. */
import type { Config } from '../config.ts';

/** A config that listens on loopback ephemeral ports; xDS and CA addresses point nowhere. */
export function testConfig(): Config {
  const local = (port: number) => ({ host: '127.0.0.1', port });
  return {
    mode: 'waypoint',
    xdsAddress: 'http://127.0.0.1:1',
    caAddress: 'http://127.0.0.1:1',
    trustDomain: 'cluster.local',
    serviceAccount: 'waypoint',
    xdsRootCaPath: '',
    altXdsHostname: undefined,
    tokenPath: '',
    podName: 'waypoint-0',
    podNamespace: 'default',
    instanceIp: '127.0.0.1',
    clusterId: 'Kubernetes',
    clusterDomain: 'cluster.local',
    certDir: '',
    podInfoDir: '',
    secretTtlSeconds: 86_400,
    logFormat: 'json',
    logLevel: 'error',
    terminationGracePeriodMs: 1000,
    drainDurationMs: 0,
    maxRequestBodyBytes: 1024 * 1024,
    maxHeaderBytes: 60 * 1024,
    xdsHeaders: {},
    proxyMetadata: {},
    hboneAddress: local(0),
    adminAddress: local(0),
    statsAddress: local(0),
    readinessAddress: local(0),
  };
}

/** mulberry32: a small seeded PRNG, so percentages and statistics in tests are reproducible. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
