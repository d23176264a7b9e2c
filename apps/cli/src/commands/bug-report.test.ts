import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../errors.ts';
import { runCli } from '../testing.ts';
import { startFakeApiserver, type FakeApiserver } from '../testing-apiserver.ts';
import { cleanItems, summaryLine } from './bug-report.ts';

const pod = (name: string, app: string): object => ({
  metadata: { name, namespace: 'istio-system', labels: { app }, managedFields: [{ manager: 'x' }] },
  spec: { nodeName: 'node-0', containers: [{ name: app }] },
  status: { phase: 'Running' },
});

describe('bug-report pieces', () => {
  it('drops managedFields from listed objects', () => {
    expect(cleanItems({ items: [{ metadata: { name: 'a', managedFields: [] }, spec: {} }] })).toEqual([
      { metadata: { name: 'a' }, spec: {} },
    ]);
  });
  it('summarises the archive and the items that could not be collected', () => {
    expect(summaryLine('r.tar.gz', { files: 3, bytes: 2000, errors: [] })).toBe(
      'wrote r.tar.gz (3 files, 2 KiB)\n',
    );
    expect(summaryLine('r.tar.gz', { files: 3, bytes: 3 * 1024 * 1024, errors: ['x'] })).toBe(
      'wrote r.tar.gz (3 files, 3.0 MiB); 1 item could not be collected (listed in errors.txt)\n',
    );
  });
});

describe('bug-report against a cluster', () => {
  let api: FakeApiserver;
  let dir: string;
  beforeAll(async () => {
    api = await startFakeApiserver();
    dir = mkdtempSync(join(tmpdir(), 'ambientctl-bug-'));
    api.put('/version', { gitVersion: 'v1.33.2' });
    api.put('/api/v1/namespaces/istio-system', { metadata: { name: 'istio-system' } });
    api.put('/api/v1/namespaces/istio-system/pods/istiod-1', pod('istiod-1', 'istiod'));
    api.put('/api/v1/namespaces/istio-system/pods/ztunnel-a', pod('ztunnel-a', 'ztunnel'));
    api.put('/api/v1/namespaces/istio-system/pods/ztunnel-b', pod('ztunnel-b', 'ztunnel'));
    api.put('/api/v1/namespaces/istio-system/pods/istiod-1/log', 'istiod started\n');
    api.put('/api/v1/namespaces/istio-system/pods/ztunnel-a/log', 'ztunnel a started\n');
    api.put('/api/v1/namespaces/istio-system/pods/ztunnel-b/log', 'ztunnel b started\n');
  });
  afterAll(async () => {
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes the state, analyze, logs, ztunnel dumps and istiod syncz into one archive', async () => {
    const file = join(dir, 'report.tar.gz');
    const r = await runCli(['--kubeconfig', api.kubeconfig, 'bug-report', '-f', file, '--tail', '50'], {
      cluster: api.cluster((p, port, _m, path) => {
        if (p.name === 'ztunnel-a' && port === 15000 && path === '/config_dump')
          return { status: 200, body: '{"workloads":[]}' };
        if (p.name === 'istiod-1' && port === 15014 && path === '/debug/syncz')
          return { status: 200, body: '[]' };
        return undefined;
      }),
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /^wrote .*report\.tar\.gz \(\d+ files, \d+ KiB\); 1 item could not be collected \(listed in errors.txt\)\n$/,
    );
    const x = spawnSync('tar', ['-xzf', file, '-C', dir], { encoding: 'utf8' });
    expect(x.status, x.stderr).toBe(0);
    const read = (name: string): string => readFileSync(join(dir, 'bug-report', name), 'utf8');
    expect(JSON.parse(read('cluster/version.json'))).toEqual({ gitVersion: 'v1.33.2' });
    expect(read('resources/namespaces.yaml')).toContain('name: istio-system');
    expect(read('resources/pods.yaml')).not.toContain('managedFields');
    expect(read('analyze.txt')).toBe('✔ No validation issues found when analyzing the cluster.\n');
    expect(read('logs/istio-system/ztunnel-b/ztunnel.log')).toBe('ztunnel b started\n');
    expect(read('ztunnel/ztunnel-a/config_dump.json')).toBe('{"workloads":[]}');
    expect(read('istiod/istiod-1/syncz.json')).toBe('[]');
    expect(existsSync(join(dir, 'bug-report/ztunnel/ztunnel-b'))).toBe(false);
    expect(read('errors.txt')).toBe('/config_dump of ztunnel ztunnel-b: no answer on port 15000\n');
    expect(api.requests).toContain('GET /api/v1/namespaces/istio-system/pods/ztunnel-a/log');
    expect(api.requests.some(q => q.includes('/secrets') || q.includes('/configmaps'))).toBe(false);
  });

  it('refuses a bad --tail and says where it cannot write', async () => {
    const run = (...argv: string[]): ReturnType<typeof runCli> =>
      runCli(['--kubeconfig', api.kubeconfig, 'bug-report', ...argv], { cluster: api.cluster() });
    expect((await run('--tail', '0')).code).toBe(ExitCode.Usage);
    const r = await run('-f', join(dir, 'no/such/dir/r.tar.gz'));
    expect(r.code).toBe(ExitCode.Failure);
    expect(r.stderr).toMatch(/cannot write .*r\.tar\.gz .*check the directory exists and is writable/);
  });
});
