import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectCluster } from './cluster.ts';
import { completionScript, completionTable } from './completion.ts';
import { ExitCode } from './errors.ts';
import { offlineProgram, runCli } from './testing.ts';

function allCommands(cmd: Command, path: string[] = []): string[][] {
  return cmd.commands
    .filter(c => c.name() !== 'help')
    .flatMap(c => [[...path, c.name()], ...allCommands(c, [...path, c.name()])]);
}

const program = offlineProgram();

describe('ambientctl skeleton', () => {
  it.each(allCommands(program).map(p => [p.join(' '), p] as const))(
    '`%s --help` shows examples',
    async (_name, path) => {
      const r = await runCli([...path, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('Examples:\n  ');
    },
  );

  it('shows the global kubectl-like flags and the exit codes in the root help', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    for (const flag of [
      '--kubeconfig <file>',
      '--context <name>',
      '-n, --namespace <namespace>',
      '-o, --output <format>',
    ]) {
      expect(r.stdout).toContain(flag);
    }
    expect(r.stdout).toMatch(/Exit codes: 0 ok, 1 failure, 2 bad usage, 3 cluster unreachable/);
  });

  it('exits 2 on bad usage', async () => {
    expect((await runCli(['nope'])).code).toBe(ExitCode.Usage);
    expect((await runCli(['zc', 'workload', '--bogus'])).code).toBe(ExitCode.Usage);
    expect((await runCli(['dataplane', 'enroll'])).code).toBe(ExitCode.Usage);
    expect((await runCli(['x', 'authz', 'explain', '--from', 'a'])).code).toBe(ExitCode.Usage);
    const shell = await runCli(['completion', 'fish']);
    expect(shell.code).toBe(ExitCode.Usage);
    expect(shell.stderr).toMatch(/unknown shell "fish"; use one of bash, zsh/);
  });

  it('prints the version', async () => {
    const r = await runCli(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('0.1.0');
  });

  it('passes the global flags to the cluster connection', async () => {
    const r = await runCli(['--kubeconfig', '/k', '--context', 'c', 'waypoint', 'list', '-n', 'sample']);
    expect(r.flags).toEqual([{ kubeconfig: '/k', context: 'c', namespace: 'sample' }]);
    expect(r.code).toBe(ExitCode.Unreachable);
  });
});

describe('completion', () => {
  it('completes subcommands, aliases and flags per command path', () => {
    const table = completionTable(program);
    expect(table.get('')).toEqual(
      expect.arrayContaining([
        'ztunnel-config',
        'zc',
        'waypoint',
        'dataplane',
        'x',
        'completion',
        '--kubeconfig',
        '-n',
      ]),
    );
    expect(table.get('zc')).toEqual(
      expect.arrayContaining(['workload', 'service', 'policy', 'certificate', 'connections', 'all']),
    );
    expect(table.get('waypoint apply')).toEqual(
      expect.arrayContaining(['--enroll-namespace', '--wait', '--overwrite']),
    );
  });
  it('prints bash and zsh scripts', async () => {
    const bash = await runCli(['completion', 'bash']);
    expect(bash.stdout).toContain('complete -F _ambientctl_complete ambientctl');
    expect(completionScript(program, 'zsh')).toMatch(/^#compdef ambientctl/);
  });
  it('completes in a real bash', () => {
    const complete = (words: string): string => {
      const script = `${completionScript(program, 'bash')}
COMP_WORDS=(${words}); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); _ambientctl_complete; echo "\${COMPREPLY[*]}"`;
      const r = spawnSync('bash', ['-c', script], { encoding: 'utf8' });
      expect(r.stderr).toBe('');
      return r.stdout.trim();
    };
    expect(complete('ambientctl zt')).toBe('ztunnel-config');
    expect(complete('ambientctl -n sample zc wo')).toBe('workload');
    expect(complete('ambientctl waypoint apply --enr')).toBe('--enroll-namespace');
  });
});

describe('errors against a cluster', () => {
  let server: Server;
  let ztunnelRunning = false;
  let dir: string;
  let kubeconfig: string;

  function writeKubeconfig(file: string, server: string): void {
    writeFileSync(
      file,
      `apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: ${server}\n    insecure-skip-tls-verify: true\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n    namespace: sample\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: t\n`,
    );
  }

  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url?.startsWith('/api/v1/namespaces/sample') === true && req.url.split('/').length === 5) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ kind: 'Namespace', metadata: { name: 'sample' } }));
        return;
      }
      if (req.url?.startsWith('/api/v1/namespaces/istio-system/pods') === true) {
        const items = ztunnelRunning
          ? [
              {
                metadata: { name: 'ztunnel-x', namespace: 'istio-system', uid: 'u' },
                spec: { nodeName: 'node-1' },
                status: { phase: 'Running', podIP: '10.0.0.9' },
              },
            ]
          : [];
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ kind: 'PodList', metadata: {}, items }));
        return;
      }
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          kind: 'Status',
          status: 'Failure',
          reason: 'NotFound',
          code: 404,
          message: 'not found',
        }),
      );
    });
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
    dir = mkdtempSync(join(tmpdir(), 'ambientctl-'));
    kubeconfig = join(dir, 'kubeconfig');
    writeKubeconfig(kubeconfig, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  });
  afterAll(async () => {
    await new Promise<void>(resolve =>
      server.close(() => {
        resolve();
      }),
    );
    rmSync(dir, { recursive: true, force: true });
  });

  it('says an unknown namespace does not exist and exits 4', async () => {
    const r = await runCli(['--kubeconfig', kubeconfig, 'dataplane', 'enroll', 'nope'], {
      cluster: f => connectCluster(f, ''),
    });
    expect(r.code).toBe(ExitCode.NotFound);
    expect(r.stderr).toMatch(/namespace "nope" does not exist; check the name/);
  });

  it('takes the namespace from the context, and -n over it', () => {
    expect(connectCluster({ kubeconfig }, '').namespace).toBe('sample');
    expect(connectCluster({ namespace: 'other' }, kubeconfig).namespace).toBe('other');
  });

  it('names the known contexts for an unknown --context, exit 3', async () => {
    const r = await runCli(['--kubeconfig', kubeconfig, '--context', 'prod', 'waypoint', 'list'], {
      cluster: f => connectCluster(f, ''),
    });
    expect(r.code).toBe(ExitCode.Unreachable);
    expect(r.stderr).toMatch(/context "prod" is not in the kubeconfig .*known: c/);
  });

  it('reports an unreachable cluster with what to check, exit 3', async () => {
    const closed = join(dir, 'closed');
    writeKubeconfig(closed, 'http://127.0.0.1:1');
    const r = await runCli(['--kubeconfig', closed, 'waypoint', 'list', '-A'], {
      cluster: f => connectCluster(f, ''),
    });
    expect(r.code).toBe(ExitCode.Unreachable);
    expect(r.stderr).toMatch(/check --kubeconfig\/--context point at a running cluster/);
  });

  it('says there is no ztunnel when none runs, exit 7', async () => {
    const r = await runCli(['--kubeconfig', kubeconfig, 'zc', 'workload'], {
      cluster: f => connectCluster(f, ''),
    });
    expect(r.stderr).toMatch(/no running ztunnel pod in istio-system; check the mesh is installed/);
    expect(r.code).toBe(ExitCode.MeshUnavailable);
  });

  it('names the ztunnel that does not answer and what to check, exit 7', async () => {
    ztunnelRunning = true;
    try {
      const r = await runCli(['--kubeconfig', kubeconfig, 'zc', 'workload'], {
        cluster: f => ({ ...connectCluster(f, ''), podGet: () => Promise.resolve(undefined) }),
      });
      expect(r.code).toBe(ExitCode.MeshUnavailable);
      expect(r.stderr).toMatch(
        /ztunnel ztunnel-x on node node-1 did not answer on its admin port 15000 .*check the pod is Ready/,
      );
    } finally {
      ztunnelRunning = false;
    }
  });
});
