import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../errors.ts';
import type { PodForward } from '../cluster.ts';
import { runCli } from '../testing.ts';
import { startFakeApiserver, type FakeApiserver } from '../testing-apiserver.ts';
import { dashboardUrl, pickPod, type DashboardPod } from './dashboard.ts';

const pod = (name: string, phase: string, labels: Record<string, string>): DashboardPod => ({
  metadata: { name, namespace: 'istio-system', labels },
  spec: { nodeName: 'node-0' },
  status: { phase },
});

describe('dashboard', () => {
  it('builds the URL to open (IPv6 in brackets) and picks the first Running pod', () => {
    expect(dashboardUrl('127.0.0.1', 20001, '/kiali')).toBe('http://127.0.0.1:20001/kiali');
    expect(dashboardUrl('::1', 9090, '/')).toBe('http://[::1]:9090/');
    expect(
      pickPod([pod('b', 'Running', {}), pod('a', 'Pending', {}), pod('c', 'Running', {})])?.metadata?.name,
    ).toBe('b');
    expect(pickPod([pod('a', 'Failed', {})])).toBeUndefined();
  });
});

describe('dashboard against a cluster', () => {
  let api: FakeApiserver;
  const forwards: string[] = [];
  let closed = 0;
  let refuse = false;
  const forward: PodForward = (p, port, local) => {
    if (refuse) return Promise.reject(new Error('listen EADDRINUSE'));
    forwards.push(`${p.namespace}/${p.name}:${port} <- ${local.address}:${local.port}`);
    return Promise.resolve({
      address: local.address,
      port: local.port === 0 ? 40123 : local.port,
      close: () => {
        closed++;
        return Promise.resolve();
      },
    });
  };
  beforeAll(async () => {
    api = await startFakeApiserver();
    api.put('/api/v1/namespaces/observability', { metadata: { name: 'observability' } });
    api.put('/api/v1/namespaces/istio-system/pods/kiali-1', pod('kiali-1', 'Running', { app: 'kiali' }));
    api.put(
      '/api/v1/namespaces/istio-system/pods/prometheus-1',
      pod('prometheus-1', 'Running', { app: 'prometheus' }),
    );
  });
  afterAll(async () => {
    await api.close();
  });
  const opened: string[] = [];
  let browserHere = true;
  const run = (...argv: string[]): ReturnType<typeof runCli> =>
    runCli(['--kubeconfig', api.kubeconfig, ...argv], {
      cluster: api.cluster(undefined, forward),
      openUrl: url => {
        if (browserHere) opened.push(url);
        return Promise.resolve(browserHere);
      },
    });

  it('forwards to the console pod, prints its URL, and closes the forward when interrupted', async () => {
    const r = await run('dashboard', 'console');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('http://127.0.0.1:20001/kiali\n');
    expect(forwards.pop()).toBe('istio-system/kiali-1:20001 <- 127.0.0.1:20001');
    expect(closed).toBe(1);
  });

  it('finds Prometheus by either label and takes --port 0 for any free port', async () => {
    const r = await run('d', 'prometheus', '--port', '0');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('http://127.0.0.1:40123/\n');
    expect(forwards.pop()).toBe('istio-system/prometheus-1:9090 <- 127.0.0.1:0');
  });

  it('says what to check when no pod runs, the port is taken or invalid', async () => {
    const missing = await run('dashboard', 'console', '-n', 'observability');
    expect(missing.code).toBe(ExitCode.NotFound);
    expect(missing.stderr).toMatch(
      /no running pod of the mesh console \(Kiali\) \(app=kiali\) in observability; check it is installed, or pass -n/,
    );
    refuse = true;
    const taken = await run('dashboard', 'prometheus');
    expect(taken.code).toBe(ExitCode.Failure);
    expect(taken.stderr).toMatch(
      /cannot listen on 127.0.0.1:9090 \(listen EADDRINUSE\); pass another --port/,
    );
    expect((await run('dashboard', 'prometheus', '--port', '70000')).code).toBe(ExitCode.Usage);
  });

  it('opens the URL in a browser when one is available, not with --no-browser, and warns when --browser finds none', async () => {
    opened.length = 0;
    browserHere = true;
    refuse = false;
    expect((await run('dashboard', 'console')).code).toBe(0);
    expect(opened).toEqual(['http://127.0.0.1:20001/kiali']);
    const quiet = await run('dashboard', 'console', '--no-browser');
    expect(quiet.code).toBe(0);
    expect(quiet.stdout).toBe('http://127.0.0.1:20001/kiali\n');
    expect(opened).toHaveLength(1);
    browserHere = false;
    const headless = await run('dashboard', 'prometheus');
    expect(headless.code).toBe(0);
    expect(headless.stderr).not.toMatch(/no browser/);
    const insist = await run('dashboard', 'prometheus', '--browser');
    expect(insist.code).toBe(0);
    expect(insist.stdout).toBe('http://127.0.0.1:9090/\n');
    expect(insist.stderr).toMatch(
      /^no browser to open here \(set \$BROWSER, or run where xdg-open has a display\); open the URL above yourself/,
    );
    browserHere = true;
  });
});
