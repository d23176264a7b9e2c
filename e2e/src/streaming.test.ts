/* eslint-disable @typescript-eslint/no-unsafe-class-instance-assignment -- client-node's models are classes, but the API speaks plain JSON: plain objects of those shapes are what we send and receive. */
// Cluster tier: the local cluster behaves like a cluster for the commands people type first —
// kubectl exec (TTY, piped stdin), port-forward (pod and Service), logs -f, attach, pod hostnames,
// LoadBalancer addresses —
// all driven through real kubectl, so the apiserver's SPDY/WebSocket path to the kubelet is the
// one under test. Cluster `stream`, slot 14.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import http from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { V1Pod, V1Service } from '@kubernetes/client-node';
import { podNetnsName } from './layout.ts';
import { startCluster, type Cluster } from './cluster.ts';
import { runCommand, waitFor, type RunResult } from './exec.ts';
import { kubectl as kubectlIn, kubectlPath } from './mesh/kubectl.ts';
import { loadBalancerPool } from './network/load-balancer.ts';

const NS = 'default';

/** Runs `kubectl exec -it` on a pseudo-terminal it resizes once the remote side has printed its first size. */
const RESIZE_DRIVER = `
import fcntl, os, pty, struct, sys, termios, select
kubectl = sys.argv[1]
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack('HHHH', 20, 70, 0, 0))
    os.execvp(kubectl, [kubectl, 'exec', '-it', sys.argv[2], '--', 'sh', '-c',
        'stty size; while [ "$(stty size)" = "20 70" ]; do sleep 0.1; done; stty size'])
out = b''
resized = False
while True:
    r, _, _ = select.select([fd], [], [], 30)
    if not r:
        print('TIMEOUT', out); sys.exit(2)
    try:
        data = os.read(fd, 1024)
    except OSError:
        break
    if not data:
        break
    out += data
    if not resized and b'20 70' in out:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', 50, 150, 0, 0))
        resized = True
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors='replace'))
sys.exit(os.waitstatus_to_exitcode(status))
`;
let cluster: Cluster;

function kubectlEnv(): NodeJS.ProcessEnv {
  return { ...process.env, KUBECONFIG: cluster.kubeconfig };
}

function kubectl(args: string[], input?: string): Promise<RunResult> {
  return kubectlIn(cluster, args, input === undefined ? {} : { input });
}

/** A long-running kubectl (port-forward, logs -f, attach) whose output the test watches. */
class Background {
  readonly child: ChildProcessWithoutNullStreams;
  out = '';
  err = '';
  constructor(args: string[], env: NodeJS.ProcessEnv = {}) {
    this.child = spawn(kubectlPath(), args, { env: { ...kubectlEnv(), ...env } });
    this.child.stdout.on('data', (b: Buffer) => (this.out += b.toString()));
    this.child.stderr.on('data', (b: Buffer) => (this.err += b.toString()));
  }
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise(r => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    await exited;
  }
}

/** Starts `kubectl port-forward <target> :<port>` and resolves with the local port it chose. */
async function portForward(
  target: string,
  port: number,
  env: NodeJS.ProcessEnv = {},
): Promise<{ bg: Background; local: number }> {
  const bg = new Background(['port-forward', '--address', '127.0.0.1', target, `:${port}`], env);
  const local = await waitFor(
    `port-forward ${target}`,
    () => {
      if (bg.child.exitCode !== null) throw new Error(`kubectl port-forward exited: ${bg.err}`);
      const m = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(bg.out);
      return m ? Number(m[1]) : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 100 },
  );
  return { bg, local };
}

function httpGet(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent: false }, res => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => {
          resolve(body);
        });
      })
      .on('error', reject);
  });
}

const echoPod = (name: string, node: string, extra: Partial<V1Pod['spec']> = {}): V1Pod => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: NS, labels: { app: 'echo' } },
  spec: {
    nodeName: node,
    terminationGracePeriodSeconds: 2,
    containers: [
      {
        name: 'echo',
        image: 'ambient-mesh/echo:0.1.0',
        env: [{ name: 'GREETING', value: 'from-the-spec' }],
        ports: [{ name: 'http', containerPort: 8080 }],
        readinessProbe: { httpGet: { path: '/', port: 'http' }, periodSeconds: 1 },
      },
    ],
    ...extra,
  },
});

const tickerPod: V1Pod = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'ticker', namespace: NS },
  spec: {
    nodeName: 'node-1',
    terminationGracePeriodSeconds: 1,
    containers: [
      {
        name: 'ticker',
        image: 'ambient-mesh/echo:0.1.0',
        command: ['/bin/sh', '-c', 'i=0; while true; do echo "tick $i"; i=$((i+1)); sleep 0.3; done'],
      },
    ],
  },
};

async function waitReady(names: string[]): Promise<void> {
  for (const name of names) {
    await waitFor(
      `pod ${name} Ready`,
      async () => {
        const p = await cluster.client.get<V1Pod>(`/api/v1/namespaces/${NS}/pods/${name}`);
        return p.status?.conditions?.some(c => c.type === 'Ready' && c.status === 'True') === true
          ? true
          : undefined;
      },
      { timeoutMs: 90_000 },
    );
  }
}

describe('local cluster: streaming, hostnames', () => {
  beforeAll(async () => {
    cluster = await startCluster({
      name: 'stream',
      slot: 14,
      nodes: 2,
      progress: line => {
        console.log(`[cluster] ${line}`);
      },
    });
    await cluster.client.create(`/api/v1/namespaces/${NS}/pods`, echoPod('echo-a', 'node-0'));
    await cluster.client.create(
      `/api/v1/namespaces/${NS}/pods`,
      echoPod('echo-b', 'node-1', { hostname: 'web-0', subdomain: 'web' }),
    );
    await cluster.client.create(`/api/v1/namespaces/${NS}/pods`, tickerPod);
    await cluster.client.create(`/api/v1/namespaces/${NS}/services`, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'echo', namespace: NS },
      spec: { selector: { app: 'echo' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
    });
    await waitReady(['echo-a', 'echo-b', 'ticker']);
  }, 900_000);

  afterAll(async () => {
    await cluster.stop();
  }, 180_000);

  it('kubectl exec runs in the pod: its hostname, environment, mounts and network; exit codes pass through', async () => {
    const host = await kubectl(['exec', 'echo-a', '--', 'hostname']);
    expect(host.stderr).toBe('');
    expect(host.stdout.trim()).toBe('echo-a');
    const env = await kubectl(['exec', 'echo-a', '--', 'sh', '-c', 'echo "$GREETING"; cat /etc/resolv.conf']);
    expect(env.stdout).toContain('from-the-spec');
    expect(env.stdout).toContain(`nameserver ${cluster.layout.dnsServiceIp}`);
    const podIp = (await cluster.client.get<V1Pod>(`/api/v1/namespaces/${NS}/pods/echo-a`)).status!.podIP!;
    const addr = await kubectl(['exec', 'echo-a', '--', 'ip', '-4', '-o', 'addr', 'show', 'eth0']);
    expect(addr.stdout).toContain(`${podIp}/`);
    const failed = await kubectl(['exec', 'echo-a', '--', 'sh', '-c', 'exit 3']);
    expect(failed.code).toBe(3);
  }, 60_000);

  it('kubectl exec -i passes piped stdin and ends when the command ends', async () => {
    const r = await kubectl(
      ['exec', '-i', 'echo-a', '--', 'sh', '-c', 'tr a-z A-Z; echo done'],
      'hello stdin\n',
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('HELLO STDIN\ndone\n');
    // kubectl speaks WebSocket to the apiserver by default (which translates to SPDY for the
    // kubelet); the older SPDY-all-the-way path must work too.
    const spdy = await runCommand([kubectlPath(), 'exec', '-i', 'echo-a', '--', 'sh', '-c', 'tr a-z A-Z'], {
      env: { ...kubectlEnv(), KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' },
      allowFailure: true,
      input: 'over spdy\n',
    });
    expect(spdy.stdout).toBe('OVER SPDY\n');
  }, 60_000);

  it('another cluster asking for this cluster’s slot fails at once, naming it', async () => {
    await expect(startCluster({ name: 'streamb', slot: 14 })).rejects.toThrow(
      /slot 14 .* held by cluster 'stream'/,
    );
  }, 60_000);

  it('kubectl exec -it gives the command a terminal of the caller’s size', async () => {
    // script(1) gives kubectl a pseudo-terminal; the remote command checks it has one and its size.
    const inner = `stty cols 123 rows 45; ${kubectlPath()} exec -it echo-a -- sh -c 'test -t 0 && echo IS-A-TTY; stty size'`;
    const r = await runCommand(['script', '-q', '-e', '-c', inner, '/dev/null'], {
      env: kubectlEnv(),
      allowFailure: true,
      timeoutMs: 60_000,
      input: '',
    });
    expect(r.stdout).toContain('IS-A-TTY');
    expect(r.stdout).toContain('45 123');
    expect(r.code).toBe(0);
  }, 60_000);

  it('kubectl exec -it follows the caller’s terminal when it is resized mid-session', async () => {
    // A pty we drive: kubectl starts at 20x70; once the remote side reports that, the pty is
    // resized to 50x150 (the kernel sends kubectl SIGWINCH) and the remote side waits for the change.
    const r = await runCommand(['python3', '-c', RESIZE_DRIVER, kubectlPath(), 'echo-a'], {
      env: kubectlEnv(),
      allowFailure: true,
      timeoutMs: 45_000,
    });
    expect(r.stdout).toMatch(/20 70\r?\n[^]*50 150/);
    expect(r.code).toBe(0);
  }, 60_000);

  it('a terminal session ends when kubectl goes away (hang-up), leaving nothing in the pod', async () => {
    const pod = await cluster.client.get<V1Pod>(`/api/v1/namespaces/${NS}/pods/echo-a`);
    const netns = podNetnsName(cluster.layout, pod.metadata!.uid!);
    const sleepers = async (): Promise<number[]> => {
      const r = await runCommand(['ip', 'netns', 'pids', netns]);
      return r.stdout
        .split('\n')
        .filter(Boolean)
        .map(Number)
        .filter(pid => {
          try {
            return readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('sleep\u0000424242');
          } catch {
            return false;
          }
        });
    };
    const session = spawn(
      'script',
      ['-q', '-c', `${kubectlPath()} exec -it echo-a -- sleep 424242`, '/dev/null'],
      { env: kubectlEnv(), stdio: ['pipe', 'ignore', 'ignore'] },
    );
    try {
      await waitFor('the remote sleep', async () => ((await sleepers()).length === 1 ? true : undefined), {
        timeoutMs: 20_000,
        intervalMs: 100,
      });
    } finally {
      const exited = new Promise(r => session.once('exit', r));
      session.kill('SIGKILL');
      await exited;
    }
    // script's death hangs up kubectl's terminal; the kubelet's side then hangs up the pod's.
    await waitFor('the remote sleep gone', async () => ((await sleepers()).length === 0 ? true : undefined), {
      timeoutMs: 20_000,
      intervalMs: 100,
    });
  }, 60_000);

  it('hostname inside a pod is the pod name, or spec.hostname with its subdomain in /etc/hosts', async () => {
    const fromEcho = await kubectl(['exec', 'echo-b', '--', 'hostname']);
    expect(fromEcho.stdout.trim()).toBe('web-0');
    const hosts = await kubectl(['exec', 'echo-b', '--', 'cat', '/etc/hosts']);
    expect(hosts.stdout).toContain(`web-0.web.${NS}.svc.cluster.local\tweb-0`);
    // The container process itself (not only exec) sees it: the echo server reports os.hostname().
    const { bg, local } = await portForward('pod/echo-a', 8080);
    try {
      const body = JSON.parse(await httpGet(local, '/who')) as { pod: string };
      expect(body.pod).toBe('echo-a');
    } finally {
      await bg.stop();
    }
  }, 60_000);

  it('kubectl port-forward reaches a pod port and a Service port', async () => {
    const pod = await portForward('pod/echo-b', 8080);
    try {
      const a = JSON.parse(await httpGet(pod.local, '/one')) as { pod: string; url: string };
      const b = JSON.parse(await httpGet(pod.local, '/two')) as { pod: string; url: string };
      expect([a.pod, a.url, b.url]).toEqual(['web-0', '/one', '/two']);
    } finally {
      await pod.bg.stop();
    }
    const svc = await portForward('svc/echo', 80);
    try {
      const c = JSON.parse(await httpGet(svc.local, '/svc')) as { pod: string; url: string };
      expect(['echo-a', 'web-0']).toContain(c.pod);
      expect(c.url).toBe('/svc');
    } finally {
      await svc.bg.stop();
    }
    // The same over SPDY all the way (kubectl's older transport; the default tunnels it in WebSocket).
    const spdy = await portForward('pod/echo-a', 8080, { KUBECTL_PORT_FORWARD_WEBSOCKETS: 'false' });
    try {
      const d = JSON.parse(await httpGet(spdy.local, '/spdy')) as { pod: string };
      expect(d.pod).toBe('echo-a');
    } finally {
      await spdy.bg.stop();
    }
  }, 60_000);

  it('kubectl cp copies a file into a pod and back (tar over exec with stdin)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stream-cp-'));
    try {
      writeFileSync(join(dir, 'in.txt'), 'copied in\n');
      const up = await kubectl(['cp', join(dir, 'in.txt'), 'echo-a:/tmp/stream-cp-test.txt']);
      expect(up.code).toBe(0);
      // kubectl's WebSocket client now and then logs "Unknown stream id 1, discarding message" for a
      // frame on stdout, which `cp` into a pod does not open (the same with upstream kubelets); it is
      // a client diagnostic, not a failure. Anything else on stderr is.
      const stderr = up.stderr
        .split('\n')
        .filter(l => l !== '' && !/websocket\.go:\d+\] Unknown stream id \d+, discarding message$/.test(l));
      expect(stderr).toEqual([]);
      const down = await kubectl(['cp', 'echo-a:/tmp/stream-cp-test.txt', join(dir, 'out.txt')]);
      expect(down.code).toBe(0);
      expect(readFileSync(join(dir, 'out.txt'), 'utf8')).toBe('copied in\n');
    } finally {
      await kubectl(['exec', 'echo-a', '--', 'rm', '-f', '/tmp/stream-cp-test.txt']);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('kubectl logs -f follows new lines; --tail, --since and --timestamps shape the output', async () => {
    const bg = new Background(['logs', '-f', '--tail', '1', 'ticker']);
    try {
      const ticks = (): number[] => [...bg.out.matchAll(/tick (\d+)/g)].map(m => Number(m[1]));
      await waitFor('three followed lines', () => (ticks().length >= 3 ? true : undefined), {
        timeoutMs: 20_000,
        intervalMs: 100,
      });
      const seen = ticks();
      for (let i = 1; i < seen.length; i++) expect(seen[i]).toBe(seen[i - 1]! + 1);
    } finally {
      await bg.stop();
    }
    const stamped = await kubectl(['logs', '--tail', '2', '--timestamps', 'ticker']);
    const lines = stamped.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    for (const line of lines) expect(line).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z tick \d+$/);
    const recent = await kubectl(['logs', '--since', '2s', 'ticker']);
    const all = await kubectl(['logs', 'ticker']);
    const recentCount = recent.stdout.trim().split('\n').length;
    expect(recentCount).toBeGreaterThan(0);
    expect(recentCount).toBeLessThan(all.stdout.trim().split('\n').length);
  }, 60_000);

  it('kubectl attach streams the running container’s output', async () => {
    const bg = new Background(['attach', 'ticker']);
    try {
      await waitFor('attached output', () => (/tick \d+/.test(bg.out) ? true : undefined), {
        timeoutMs: 20_000,
        intervalMs: 100,
      });
    } finally {
      await bg.stop();
    }
  }, 60_000);

  it('a LoadBalancer Service gets a fabric address that node netns and the host reach', async () => {
    await cluster.client.create(`/api/v1/namespaces/${NS}/services`, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'echo-lb', namespace: NS },
      spec: {
        type: 'LoadBalancer',
        selector: { app: 'echo' },
        ports: [{ name: 'http', port: 80, targetPort: 8080 }],
      },
    });
    const ip = await waitFor(
      'a LoadBalancer address',
      async () => {
        const s = await cluster.client.get<V1Service>(`/api/v1/namespaces/${NS}/services/echo-lb`);
        return s.status?.loadBalancer?.ingress?.[0]?.ip;
      },
      { timeoutMs: 30_000 },
    );
    expect(loadBalancerPool(cluster.layout)).toContain(ip);
    const fetchScript = `fetch('http://${ip}/lb').then(r => r.json()).then(b => console.log(b.pod), e => { console.error(String(e)); process.exit(1); })`;
    for (const n of cluster.nodes) {
      const r = await waitFor(
        `${ip} answering from ${n.name}`,
        async () => {
          const res = await runCommand(
            ['nsenter', `--net=/run/netns/${n.netns}`, '--', process.execPath, '-e', fetchScript],
            {
              allowFailure: true,
              timeoutMs: 10_000,
            },
          );
          return res.code === 0 ? res : undefined;
        },
        { timeoutMs: 30_000 },
      );
      expect(['echo-a', 'web-0']).toContain(r.stdout.trim());
    }
    // The host side: the root netns holds the fabric's 10.211.<slot>.1/24 on the am-<name> link.
    const fromHost = await runCommand([process.execPath, '-e', fetchScript], {
      allowFailure: true,
      timeoutMs: 10_000,
    });
    expect(fromHost.stderr).toBe('');
    expect(['echo-a', 'web-0']).toContain(fromHost.stdout.trim());
    await cluster.client.delete(`/api/v1/namespaces/${NS}/services/echo-lb`);
    const announcer = cluster.nodes[0]!.netns;
    await waitFor(
      'the address withdrawn',
      async () => {
        const r = await runCommand(['ip', '-n', announcer, '-o', 'addr', 'show', 'dev', 'eth0']);
        return r.stdout.includes(`${ip}/32`) ? undefined : true;
      },
      { timeoutMs: 20_000 },
    );
  }, 120_000);
});
