import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { FakeApiServer, until } from '@ambient-mesh/kube/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { KubeClient, toPodView } from './kube-client.ts';
import type { KubeEventHandlers } from './kube-client.ts';
import { silentLogger } from '@ambient-mesh/runtime';
import { systemTimers } from '@ambient-mesh/runtime';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Seen {
  method: string;
  url: string;
  contentType: string | undefined;
  body: string;
}

/** A loopback stand-in for the API server: canned lists, hanging watches, recorded requests. */
async function fakeApiServer(
  routes: (req: IncomingMessage, body: string, res: ServerResponse) => boolean,
): Promise<{ kc: KubeConfig; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        contentType: req.headers['content-type'],
        body,
      });
      if (req.url?.includes('watch=true') === true) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.flushHeaders();
        return; // a watch with no events; closed at cleanup
      }
      if (!routes(req, body, res))
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"kind":"Status","code":404}');
    });
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>(resolve => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  );
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [
      {
        name: 'c',
        server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        skipTLSVerify: true,
      },
    ],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return { kc, seen };
}

const podJson = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'a', namespace: 'apps', uid: 'uid-a', labels: { app: 'web' }, resourceVersion: '5' },
  spec: { nodeName: 'node-a', serviceAccountName: 'web', containers: [{ name: 'c', image: 'x' }] },
  status: { phase: 'Running', podIP: '10.244.1.5', podIPs: [{ ip: '10.244.1.5' }, { ip: 'fd00::5' }] },
};

describe('KubeClient', () => {
  it('converts a Pod into the agent view', () => {
    expect(toPodView(podJson as never)).toEqual({
      uid: 'uid-a',
      name: 'a',
      namespace: 'apps',
      nodeName: 'node-a',
      serviceAccount: 'web',
      labels: { app: 'web' },
      annotations: {},
      ips: ['10.244.1.5', 'fd00::5'],
      phase: 'Running',
      deleting: false,
      hostNetwork: false,
    });
  });

  it('lists only this node’s pods, caches them, and merge-patches pods/status', async () => {
    const { kc, seen } = await fakeApiServer((req, _body, res) => {
      const json = (v: unknown): boolean => {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(v));
        return true;
      };
      if (req.method === 'GET' && req.url?.startsWith('/api/v1/pods') === true) {
        return json({
          kind: 'PodList',
          apiVersion: 'v1',
          metadata: { resourceVersion: '10' },
          items: [podJson],
        });
      }
      if (req.method === 'GET' && /^\/api\/v1\/namespaces(\?|$)/.test(req.url ?? '')) {
        return json({
          kind: 'NamespaceList',
          apiVersion: 'v1',
          metadata: { resourceVersion: '10' },
          items: [{ metadata: { name: 'apps', labels: { 'istio.io/dataplane-mode': 'ambient' } } }],
        });
      }
      if (req.method === 'PATCH' && req.url === '/api/v1/namespaces/apps/pods/a/status') return json(podJson);
      return false;
    });
    const client = new KubeClient(kc, 'node-a', silentLogger());
    const changed: string[] = [];
    const handlers: KubeEventHandlers = {
      podChanged: p => changed.push(p.name),
      podDeleted: () => undefined,
      namespaceChanged: ns => changed.push(`ns:${ns.name}`),
    };
    await client.start(handlers);
    cleanups.push(() => client.stop());
    const podList = seen.find(
      s => s.method === 'GET' && s.url.startsWith('/api/v1/pods') && !s.url.includes('watch=true'),
    );
    expect(decodeURIComponent(podList!.url)).toContain('fieldSelector=spec.nodeName=node-a');
    expect(client.listPods().map(p => p.uid)).toEqual(['uid-a']);
    expect(client.getNamespace('apps')?.labels).toEqual({ 'istio.io/dataplane-mode': 'ambient' });
    expect(changed.sort()).toEqual(['a', 'ns:apps']);

    await client.patchRedirection('apps', 'a', 'enabled');
    await client.patchRedirection('apps', 'a', null);
    const patches = seen.filter(s => s.method === 'PATCH');
    expect(patches.map(p => p.contentType)).toEqual([
      'application/merge-patch+json',
      'application/merge-patch+json',
    ]);
    expect(patches.map(p => JSON.parse(p.body) as unknown)).toEqual([
      { metadata: { annotations: { 'ambient.istio.io/redirection': 'enabled' } } },
      { metadata: { annotations: { 'ambient.istio.io/redirection': null } } },
    ]);
    await expect(client.fetchPod('apps', 'missing')).resolves.toBeUndefined();
  });

  it('retries a transient patch failure and gives up with the API status on a permanent one', async () => {
    let failures = 1;
    const { kc, seen } = await fakeApiServer((req, _body, res) => {
      if (req.method !== 'PATCH') return false;
      if (req.url === '/api/v1/namespaces/apps/pods/a/status' && failures > 0) {
        failures--;
        res
          .writeHead(503, { 'content-type': 'application/json' })
          .end(JSON.stringify({ kind: 'Status', code: 503, message: 'etcd is busy' }));
        return true;
      }
      if (req.url === '/api/v1/namespaces/apps/pods/a/status') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(podJson));
        return true;
      }
      res
        .writeHead(403, { 'content-type': 'application/json' })
        .end(JSON.stringify({ kind: 'Status', code: 403, message: 'pods "b" is forbidden' }));
      return true;
    });
    const delays: number[] = [];
    const timers = {
      ...systemTimers,
      setTimeout: (callback: () => void, ms: number) => {
        delays.push(ms);
        return systemTimers.setTimeout(callback, 0);
      },
    };
    const client = new KubeClient(kc, 'node-a', silentLogger(), timers);
    await client.patchRedirection('apps', 'a', 'enabled');
    expect(seen.filter(s => s.url === '/api/v1/namespaces/apps/pods/a/status')).toHaveLength(2);
    expect(delays).toEqual([200]);
    await expect(client.patchRedirection('apps', 'b', 'enabled')).rejects.toThrow(
      /'patch pods\/status apps\/b' failed \(HTTP 403: pods "b" is forbidden\)/,
    );
    expect(seen.filter(s => s.url === '/api/v1/namespaces/apps/pods/b/status')).toHaveLength(1);
  });

  it("keeps this node's pod cache current across a dropped watch, without relisting", async () => {
    const server = await FakeApiServer.start();
    cleanups.push(() => server.close());
    server.put('/api/v1/pods', podJson);
    const client = new KubeClient(server.kubeConfig(), 'node-a', silentLogger());
    const changed: string[] = [];
    await client.start({
      podChanged: p => changed.push(p.name),
      podDeleted: p => changed.push(`-${p.name}`),
      namespaceChanged: () => undefined,
    });
    cleanups.push(() => client.stop());
    await until('both watches open', () => server.openWatches === 2);
    server.dropWatches();
    // Written while no watch is open: the resumed watch delivers it.
    server.put('/api/v1/pods', { ...podJson, metadata: { ...podJson.metadata, name: 'b', uid: 'uid-b' } });
    await until('pod b seen', () => changed.includes('b'));
    expect(client.getPod('apps', 'b')?.uid).toBe('uid-b');
    expect(server.count('GET', '/api/v1/pods', r => r.query.watch === undefined)).toBe(1);
    const podWatches = server.requests.filter(r => r.path === '/api/v1/pods' && r.query.watch === 'true');
    expect(podWatches.every(r => r.query.fieldSelector === 'spec.nodeName=node-a')).toBe(true);
  });

  it("tells a restart from an uninstall by the agent pod's DaemonSet (present, deleting, gone, unreadable)", async () => {
    let ds: 'present' | 'deleting' | 'gone' | 'forbidden' = 'present';
    const { kc } = await fakeApiServer((req, _body, res) => {
      const json = (status: number, v: unknown): boolean => {
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(v));
        return true;
      };
      if (req.url === '/api/v1/namespaces/istio-system/pods/istio-cni-node-x') {
        return json(200, {
          metadata: {
            name: 'istio-cni-node-x',
            namespace: 'istio-system',
            ownerReferences: [
              {
                apiVersion: 'apps/v1',
                kind: 'DaemonSet',
                name: 'istio-cni-node',
                uid: 'ds',
                controller: true,
              },
            ],
          },
        });
      }
      if (req.url === '/api/v1/namespaces/istio-system/pods/bare') {
        return json(200, { metadata: { name: 'bare', namespace: 'istio-system' } });
      }
      if (req.url === '/apis/apps/v1/namespaces/istio-system/daemonsets/istio-cni-node') {
        if (ds === 'gone') return false;
        if (ds === 'forbidden') return json(403, { kind: 'Status', code: 403, message: 'forbidden' });
        return json(200, {
          metadata: {
            name: 'istio-cni-node',
            ...(ds === 'deleting' ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}),
          },
        });
      }
      return false;
    });
    const client = new KubeClient(kc, 'node-a', silentLogger());
    const ask = (pod: string | null) => client.shutdownVerdict('istio-system', pod);
    expect(await ask('istio-cni-node-x')).toEqual({
      uninstall: false,
      reason: 'DaemonSet istio-cni-node is still present: a restart or upgrade',
    });
    ds = 'deleting';
    expect((await ask('istio-cni-node-x')).uninstall).toBe(true);
    ds = 'gone';
    expect(await ask('istio-cni-node-x')).toEqual({
      uninstall: true,
      reason: 'DaemonSet istio-cni-node is gone',
    });
    ds = 'forbidden';
    const forbidden = await ask('istio-cni-node-x');
    expect(forbidden.uninstall).toBe(true);
    expect(forbidden.reason).toContain('cannot tell a restart from an uninstall');
    expect((await ask('bare')).uninstall).toBe(true);
    expect((await ask('missing')).uninstall).toBe(true);
    expect(await ask(null)).toEqual({
      uninstall: true,
      reason: 'cannot tell a restart from an uninstall: POD_NAME is not set',
    });
  });
});
