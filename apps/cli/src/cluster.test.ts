import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeApiServer } from '@ambient-mesh/kube/testing';
import { connectCluster, type Cluster } from './cluster.ts';

// The cluster's pod ports go through @ambient-mesh/kube's PortForwarder; the apiserver here speaks
// the real port-forward WebSocket protocol and connects pod port 15000 to a loopback server.
describe('connectCluster pod ports through the apiserver port-forward', () => {
  let api: FakeApiServer;
  let admin: Server;
  let dir: string;
  let cluster: Cluster;
  const pod = { namespace: 'istio-system', name: 'ztunnel-a', node: 'n', uid: 'u', ip: '10.0.0.1' };

  beforeAll(async () => {
    api = await FakeApiServer.start();
    admin = createServer((req, res) => {
      if (req.url === '/config_dump') res.writeHead(200).end('{"workloads":[]}');
      else res.writeHead(404).end('no such page\n');
    });
    await new Promise<void>(resolve => admin.listen(0, '127.0.0.1', resolve));
    api.forwardPod(pod.namespace, pod.name, { 15000: (admin.address() as AddressInfo).port });
    dir = mkdtempSync(join(tmpdir(), 'ambientctl-cluster-'));
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      `apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: ${api.url}\n    insecure-skip-tls-verify: true\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: t\n`,
    );
    cluster = connectCluster({ kubeconfig }, '');
  });

  afterAll(async () => {
    await api.close();
    await new Promise<void>(resolve =>
      admin.close(() => {
        resolve();
      }),
    );
    rmSync(dir, { recursive: true, force: true });
  });

  it('podGet answers a 200 body, and undefined for another status or a port nothing listens on', async () => {
    expect(await cluster.podGet(pod, 15000, '/config_dump')).toBe('{"workloads":[]}');
    expect(await cluster.podGet(pod, 15000, '/missing')).toBeUndefined();
    expect(await cluster.podGet(pod, 15020, '/stats')).toBeUndefined();
  });

  it('podRequest answers any status, and undefined for a missing pod', async () => {
    expect(await cluster.podRequest(pod, 15000, 'GET', '/missing')).toEqual({
      status: 404,
      body: 'no such page\n',
    });
    expect(await cluster.podRequest({ ...pod, name: 'gone' }, 15000, 'GET', '/config_dump')).toBeUndefined();
  });

  it('forward listens locally until closed', async () => {
    const fwd = await cluster.forward(pod, 15000, { address: '127.0.0.1', port: 0 });
    try {
      const res = await fetch(`http://127.0.0.1:${fwd.port}/config_dump`);
      expect(await res.text()).toBe('{"workloads":[]}');
    } finally {
      await fwd.close();
    }
  });
});
