import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeError, KubeErrorCode } from './errors.ts';
import { loadKubeConfig, loadKubeContext } from './kubeconfig.ts';

function configError(load: () => unknown): KubeError {
  let caught: unknown;
  try {
    load();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(KubeError);
  expect((caught as KubeError).code).toBe(KubeErrorCode.Config);
  return caught as KubeError;
}

describe('loadKubeContext', () => {
  let dir: string;
  let file: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'kube-config-'));
    file = join(dir, 'kubeconfig');
    writeFileSync(
      file,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [
          { name: 'a', cluster: { server: 'https://127.0.0.1:6443' } },
          { name: 'b', cluster: { server: 'https://127.0.0.2:6443' } },
        ],
        users: [{ name: 'u', user: { token: 't' } }],
        contexts: [
          { name: 'dev', context: { cluster: 'a', user: 'u', namespace: 'sample' } },
          { name: 'prod', context: { cluster: 'b', user: 'u' } },
          { name: 'broken', context: { cluster: 'missing', user: 'u' } },
        ],
        'current-context': 'dev',
      }),
    );
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('uses the current-context and its namespace, or the context named and its cluster', () => {
    const current = loadKubeContext({ file });
    expect(current.context).toBe('dev');
    expect(current.namespace).toBe('sample');
    expect(current.config.getCurrentCluster()?.server).toBe('https://127.0.0.1:6443');
    const prod = loadKubeContext({ file, context: 'prod' });
    expect(prod.context).toBe('prod');
    expect(prod.namespace).toBeUndefined();
    expect(prod.config.getCurrentCluster()?.server).toBe('https://127.0.0.2:6443');
    expect(loadKubeConfig({ file, context: 'prod' }).getCurrentCluster()?.name).toBe('b');
  });

  it('a context not in the file, a context without a cluster and a missing file are KUBE_CONFIG', () => {
    expect(configError(() => loadKubeContext({ file, context: 'staging' })).message).toMatch(
      /context "staging" is not in the kubeconfig .*known: dev, prod, broken/,
    );
    expect(configError(() => loadKubeContext({ file, context: 'broken' })).message).toContain(
      'has no current cluster',
    );
    expect(configError(() => loadKubeConfig({ file: join(dir, 'none') })).message).toContain(
      'cannot load the kubeconfig',
    );
  });
});
