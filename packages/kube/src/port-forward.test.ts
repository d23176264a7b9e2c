import { createServer, request, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KubeApiError, KubeError, KubeErrorCode } from './errors.ts';
import type { KubeConfigHandle } from './kube-config.ts';
import { PortForwarder } from './port-forward.ts';
import { FakeApiServer } from './testing/fake-apiserver.ts';
import { until } from './testing/until.ts';

/** A pod's loopback-only HTTP port, played by a real server on 127.0.0.1. */
async function startPodServer(): Promise<{ server: Server; port: number; seen: string[] }> {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(`${req.method ?? ''} ${req.url ?? ''}`);
    if (req.url === '/config_dump') res.writeHead(200).end('{"workloads":[]}');
    else if (req.url?.startsWith('/logging')) res.writeHead(200).end(`level ${req.method ?? ''}\n`);
    else res.writeHead(503).end('not ready\n');
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, seen };
}

/** Only the two members of `KubeConfigHandle`, not a client-node KubeConfig. */
function narrow(kc: KubeConfigHandle): KubeConfigHandle {
  return {
    getCurrentCluster: () => kc.getCurrentCluster(),
    applyToHTTPSOptions: o => kc.applyToHTTPSOptions(o),
  };
}

async function rejection(p: Promise<unknown>): Promise<KubeError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(KubeError);
  return err as KubeError;
}

const pod = { namespace: 'istio-system', name: 'ztunnel-abc' };

describe('PortForwarder', () => {
  let api: FakeApiServer;
  let target: Awaited<ReturnType<typeof startPodServer>>;
  let forwarder: PortForwarder;

  beforeEach(async () => {
    api = await FakeApiServer.start();
    target = await startPodServer();
    api.forwardPod(pod.namespace, pod.name, { 15000: target.port });
    forwarder = new PortForwarder(narrow(api.kubeConfig()), { timeoutMs: 20_000 });
  });

  afterEach(async () => {
    await api.close();
    await new Promise<void>(resolve =>
      target.server.close(() => {
        resolve();
      }),
    );
  });

  it('requests a pod port through the apiserver port-forward of that pod and port', async () => {
    const answer = await forwarder.request(pod, 15000, { path: '/config_dump' });
    expect(answer).toEqual({ status: 200, body: '{"workloads":[]}' });
    expect(target.seen).toEqual(['GET /config_dump']);
    expect(api.requests.map(r => [r.path, r.query.ports])).toEqual([
      ['/api/v1/namespaces/istio-system/pods/ztunnel-abc/portforward', '15000'],
    ]);
    await until('the stream closed', () => api.openStreams === 0, 20_000);
  });

  it('passes the method and query on and answers any status', async () => {
    expect(await forwarder.request(pod, 15000, { method: 'POST', path: '/logging?level=debug' })).toEqual({
      status: 200,
      body: 'level POST\n',
    });
    expect(await forwarder.request(pod, 15000, { path: '/healthz/ready' })).toEqual({
      status: 503,
      body: 'not ready\n',
    });
  });

  it('get returns a 200 body and rejects any other status with KUBE_PORT_FORWARD_STATUS', async () => {
    expect(await forwarder.get(pod, 15000, '/config_dump')).toBe('{"workloads":[]}');
    const err = await rejection(forwarder.get(pod, 15000, '/healthz/ready'));
    expect(err.code).toBe(KubeErrorCode.PortForwardStatus);
    expect(err.message).toContain('HTTP 503: not ready');
  });

  it('a port nothing listens on fails with KUBE_PORT_FORWARD and the kubelet text', async () => {
    const err = await rejection(forwarder.request(pod, 15014, { path: '/debug' }));
    expect(err.code).toBe(KubeErrorCode.PortForward);
    expect(err.message).toContain('error forwarding port 15014');
    expect(err.message).toContain('listens on port 15014');
  });

  it('a missing pod is a KubeApiError 404', async () => {
    const err = await rejection(forwarder.request({ ...pod, name: 'gone' }, 15000, { path: '/' }));
    expect(err).toBeInstanceOf(KubeApiError);
    expect(err.code).toBe(KubeErrorCode.NotFound);
    expect(err.message).toContain('istio-system/gone');
  });

  it('an RBAC refusal is KUBE_FORBIDDEN naming pods/portforward', async () => {
    api.failNext(1, 403, r => r.path.endsWith('/portforward'));
    const err = await rejection(forwarder.request(pod, 15000, { path: '/config_dump' }));
    expect(err.code).toBe(KubeErrorCode.Forbidden);
    expect(err.message).toContain('pods/portforward');
  });

  it('no apiserver is KUBE_UNREACHABLE', async () => {
    const kc = api.kubeConfig();
    await api.close();
    const err = await rejection(new PortForwarder(kc).request(pod, 15000, { path: '/config_dump' }));
    expect(err.code).toBe(KubeErrorCode.Unreachable);
  });

  it('a kubeconfig client-node cannot connect with is KUBE_CONFIG', async () => {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'plain', server: api.url }], // http:// without insecure-skip-tls-verify
      users: [{ name: 'u', token: 't' }],
      contexts: [{ name: 'c', cluster: 'plain', user: 'u' }],
      currentContext: 'c',
    });
    const err = await rejection(new PortForwarder(kc).request(pod, 15000, { path: '/config_dump' }));
    expect(err.code).toBe(KubeErrorCode.Config);
    expect(err.message).toContain('insecure-skip-tls-verify');
  });

  it('a pod that never answers is KUBE_PORT_FORWARD_TIMEOUT', async () => {
    const held: Socket[] = [];
    const silent = createTcpServer(s => held.push(s));
    await new Promise<void>(resolve => silent.listen(0, '127.0.0.1', resolve));
    api.forwardPod(pod.namespace, pod.name, { 15000: (silent.address() as AddressInfo).port });
    try {
      const err = await rejection(forwarder.request(pod, 15000, { path: '/config_dump', timeoutMs: 300 }));
      expect(err.code).toBe(KubeErrorCode.PortForwardTimeout);
      expect(err.message).toContain('no answer within 300 ms');
    } finally {
      for (const s of held) s.destroy();
      await new Promise<void>(resolve =>
        silent.close(() => {
          resolve();
        }),
      );
    }
  });

  it('listen keeps a local port whose every connection is forwarded, until close', async () => {
    const fwd = await forwarder.listen(pod, 15000, { address: '127.0.0.1', port: 0 });
    const get = (path: string): Promise<{ status: number; body: string }> =>
      new Promise((resolve, reject) => {
        const req = request({ host: fwd.address, port: fwd.port, path, agent: false }, res => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() });
          });
        });
        req.on('error', reject);
        req.end();
      });
    expect(fwd.address).toBe('127.0.0.1');
    expect(await get('/config_dump')).toEqual({ status: 200, body: '{"workloads":[]}' });
    expect(await get('/config_dump')).toEqual({ status: 200, body: '{"workloads":[]}' });
    expect(api.count('GET', '/api/v1/namespaces/istio-system/pods/ztunnel-abc/portforward')).toBe(2);
    await fwd.close();
    await expect(get('/config_dump')).rejects.toThrow(/ECONNREFUSED/);
    await until('the streams closed', () => api.openStreams === 0, 20_000);
  });
});
