// Every command, walked from the program itself: each has a --help with examples, and each bad
// input the acceptance names (an unreachable cluster, an unknown namespace, a ztunnel or istiod
// that does not answer) ends with the documented exit code and a message saying what to check.
// A command added without an entry in SAMPLES fails the first case.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectCluster } from './cluster.ts';
import { ExitCode } from './errors.ts';
import { offlineProgram, runCli } from './testing.ts';
import { startFakeApiserver, type FakeApiserver } from './testing-apiserver.ts';

interface Sample {
  /** Arguments that run the command (NS stands for the namespace under test). */
  readonly argv: readonly string[];
  /** It never touches a cluster. */
  readonly offline?: true;
  /** How it takes a namespace: `-n`, or inside argv (NS); absent when it has none. */
  readonly namespace?: '-n' | 'argv';
  /** The mesh component it reads over port-forward. */
  readonly component?: 'ztunnel' | 'istiod';
}

const SAMPLES: Readonly<Record<string, Sample>> = {
  'ztunnel-config workload': { argv: ['zc', 'workload'], namespace: '-n', component: 'ztunnel' },
  'ztunnel-config service': { argv: ['zc', 'service'], namespace: '-n', component: 'ztunnel' },
  'ztunnel-config policy': { argv: ['zc', 'policy'], namespace: '-n', component: 'ztunnel' },
  'ztunnel-config certificate': { argv: ['zc', 'certificate'], namespace: '-n', component: 'ztunnel' },
  'ztunnel-config connections': { argv: ['zc', 'connections'], namespace: '-n', component: 'ztunnel' },
  'ztunnel-config all': { argv: ['zc', 'all'], namespace: '-n', component: 'ztunnel' },
  'ztunnel-config log': { argv: ['zc', 'log'], component: 'ztunnel' },
  'dataplane enroll': { argv: ['dataplane', 'enroll', 'NS'], namespace: 'argv' },
  'dataplane unenroll': { argv: ['dataplane', 'unenroll', 'NS'], namespace: 'argv' },
  'waypoint generate': { argv: ['waypoint', 'generate'], offline: true },
  'waypoint apply': { argv: ['waypoint', 'apply'], namespace: '-n' },
  'waypoint list': { argv: ['waypoint', 'list'], namespace: '-n' },
  'waypoint status': { argv: ['waypoint', 'status'], namespace: '-n' },
  'waypoint delete': { argv: ['waypoint', 'delete', 'waypoint'], namespace: '-n' },
  analyze: { argv: ['analyze'], namespace: '-n' },
  'proxy-status': { argv: ['proxy-status'], namespace: '-n', component: 'istiod' },
  install: { argv: ['install'] },
  upgrade: { argv: ['upgrade', '--version', 'v1.27.9'] },
  uninstall: { argv: ['uninstall'] },
  'dashboard console': { argv: ['dashboard', 'console', '--no-browser'], namespace: '-n' },
  'dashboard prometheus': { argv: ['dashboard', 'prometheus', '--no-browser'], namespace: '-n' },
  'bug-report': { argv: ['bug-report', '-f', 'BUGREPORT'] },
  'x authz explain': {
    argv: ['x', 'authz', 'explain', '--from', 'NS/client', '--to', 'NS/echo:80'],
    namespace: 'argv',
  },
  'x precheck': { argv: ['x', 'precheck', '--no-node-probe'] },
  completion: { argv: ['completion', 'bash'], offline: true },
};

function leaves(cmd: Command, path: string[] = []): string[] {
  return cmd.commands
    .filter(c => c.name() !== 'help')
    .flatMap(c => {
      const sub = leaves(c, [...path, c.name()]);
      return sub.length > 0 ? sub : [[...path, c.name()].join(' ')];
    });
}

const program = offlineProgram();
const LEAVES = leaves(program);

let dir = '';
let unreachable = '';
let api: FakeApiserver;
const sample = (name: string): Sample => SAMPLES[name] ?? { argv: [] };
const argvFor = (s: Sample, ns: string): string[] =>
  s.argv.map(a => a.replace('NS', ns).replace('BUGREPORT', join(dir, 'report.tar.gz')));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ambientctl-audit-'));
  unreachable = join(dir, 'unreachable.kubeconfig');
  writeFileSync(
    unreachable,
    `apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n    insecure-skip-tls-verify: true\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: t\n`,
  );
  api = await startFakeApiserver();
  api.put('/version', { gitVersion: 'v1.33.2' });
  for (const ns of ['default', 'istio-system'])
    api.put(`/api/v1/namespaces/${ns}`, { metadata: { name: ns } });
  const pod = (name: string, app: string, ip: string): object => ({
    metadata: { name, namespace: 'istio-system', uid: `uid-${name}`, labels: { app } },
    spec: { nodeName: 'node-1' },
    status: { phase: 'Running', podIP: ip },
  });
  // A ztunnel and an istiod that are Running but never answer on their ports.
  api.put(
    '/api/v1/namespaces/istio-system/pods/ztunnel-silent',
    pod('ztunnel-silent', 'ztunnel', '10.0.0.9'),
  );
  api.put('/api/v1/namespaces/istio-system/pods/istiod-silent', pod('istiod-silent', 'istiod', '10.0.0.8'));
});
afterAll(async () => {
  await api.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('every command', () => {
  it('is in the audit table, and every entry is a command', () => {
    expect([...LEAVES].sort()).toEqual(Object.keys(SAMPLES).sort());
  });

  it.each(LEAVES)('`%s --help` has a description, usage and examples', async name => {
    const r = await runCli([...name.split(' '), '--help']);
    expect(r.code).toBe(ExitCode.Ok);
    expect(r.stdout).toMatch(/^Usage: ambientctl /);
    expect(r.stdout).toMatch(/\nExamples:\n {2}(ambientctl|source) /);
  });

  it.each(LEAVES)('`%s` on an unreachable cluster exits 3 and says to check the kubeconfig', async name => {
    const s = sample(name);
    const r = await runCli(['--kubeconfig', unreachable, ...argvFor(s, 'default')], {
      cluster: f => connectCluster(f, ''),
    });
    if (s.offline === true) {
      expect(r.code, r.stderr).toBe(ExitCode.Ok);
      return;
    }
    expect(r.code, r.stderr).toBe(ExitCode.Unreachable);
    expect(r.stderr).toMatch(
      /the cluster did not answer; check --kubeconfig\/--context point at a running cluster \(kubectl cluster-info\)\n$/,
    );
  });

  it.each(LEAVES.filter(n => sample(n).namespace !== undefined))(
    '`%s` with an unknown namespace exits 4 and says to check the name',
    async name => {
      const s = sample(name);
      const argv = argvFor(s, 'nowhere');
      const r = await runCli(s.namespace === '-n' ? [...argv, '-n', 'nowhere'] : argv, {
        cluster: api.cluster(() => undefined),
      });
      expect(r.code, r.stderr).toBe(ExitCode.NotFound);
      expect(r.stderr).toMatch(
        /namespace "nowhere" does not exist; check the name \(kubectl get namespaces\) and the --context in use/,
      );
    },
  );

  it.each(LEAVES.filter(n => sample(n).component !== undefined))(
    '`%s` with a component that does not answer exits 7 and names the pod to check',
    async name => {
      const s = sample(name);
      const r = await runCli(argvFor(s, 'default'), { cluster: api.cluster(() => undefined) });
      expect(r.code, r.stderr).toBe(ExitCode.MeshUnavailable);
      expect(r.stderr).toMatch(
        s.component === 'ztunnel'
          ? /ztunnel ztunnel-silent on node node-1 did not answer on its admin port 15000 .*check the pod is Ready \(kubectl -n istio-system get pod ztunnel-silent\) and its logs/
          : /istiod istiod-silent did not answer \/debug\/syncz on its monitoring port 15014 .*check the pod is Ready \(kubectl -n istio-system get pod istiod-silent\) and its logs/,
      );
    },
  );

  it.each(LEAVES.filter(n => sample(n).offline !== true))(
    '`%s` fails with a message that says what to check, whatever it meets',
    async name => {
      // An apiserver without the mesh (no CRDs, no ztunnel answer): any failure must still guide.
      const r = await runCli(argvFor(sample(name), 'default'), { cluster: api.cluster(() => undefined) });
      if (r.code !== ExitCode.Ok) {
        expect(r.stderr, `exit ${r.code}`).toMatch(/(check|pass|use|install|apply|run|fix)[^\n]*\n$/);
      }
    },
  );
});
