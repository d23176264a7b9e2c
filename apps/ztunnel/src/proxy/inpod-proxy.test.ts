/**
 * Direct tier: the in-pod proxy as a whole (loopback pods, see testing/loopback-mesh.ts).
 * Traffic: app A → A's 15001 → HBONE mTLS → B's 15008 → app B; and pods enrolled over ZDS before
 * istiod sent their workloads.
 */
import { once } from 'node:events';
import { connect as netConnect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { exchange, mesh, metricsText } from '../testing/loopback-mesh.ts';
import type { Cleanups } from '../testing/loopback-mesh.ts';
import { waitFor } from '../testing/wait.ts';

const cleanups: Cleanups = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('in-pod proxy (direct tier, loopback pods)', () => {
  it("carries A → 15001 → HBONE mTLS → 15008 → B, and B sees A's pod IP", async () => {
    const m = await mesh(cleanups);
    const { echoed, socket } = await exchange(m, 'hello over hbone');
    socket.end();
    expect(echoed).toBe('hello over hbone');
    expect(m.appB.peers).toEqual([m.a.ip]);

    await waitFor(() => m.records.filter(r => r.msg === 'connection complete').length >= 2, 'access logs');
    const complete = m.records.filter(r => r.msg === 'connection complete' && r.component === 'access');
    expect(complete.find(r => r.direction === 'outbound')).toMatchObject({
      'src.workload': 'pod-a',
      'dst.addr': `${m.b.ip}:15008`,
      'dst.hbone_addr': `${m.b.ip}:8080`,
      'dst.identity': 'spiffe://cluster.local/ns/default/sa/sa-b',
      bytes_sent: 16,
      bytes_recv: 16,
    });
    expect(complete.find(r => r.direction === 'inbound')).toMatchObject({
      'src.identity': 'spiffe://cluster.local/ns/default/sa/sa-a',
      'src.workload': 'pod-a',
      'dst.workload': 'pod-b',
    });

    const text = await metricsText(m.bound);
    const opened = text.split('\n').filter(l => l.startsWith('istio_tcp_connections_opened_total{'));
    const source = opened.find(l => l.includes('reporter="source"'));
    const destination = opened.find(l => l.includes('reporter="destination"'));
    for (const line of [source, destination]) {
      expect(line).toContain('source_workload="pod-a"');
      expect(line).toContain('source_principal="spiffe://cluster.local/ns/default/sa/sa-a"');
      expect(line).toContain('destination_workload="pod-b"');
      expect(line).toContain('destination_principal="spiffe://cluster.local/ns/default/sa/sa-b"');
      expect(line).toContain('connection_security_policy="mutual_tls"');
      expect(line).toContain('response_flags="-"');
    }
    expect(text).toMatch(/^istio_tcp_received_bytes_total\{reporter="source".*\} 16$/m);
  });
});

describe('in-pod proxy enrolled before its WDS workload (direct tier)', () => {
  const uidA = 'Kubernetes//Pod/default/pod-a';

  it('ACKs the Add with the listeners bound, and serves a connection made before the workload arrives', async () => {
    const m = await mesh(cleanups, { wdsAfterAdd: true });
    expect(m.zdsReplies()).toEqual(['', '', '']);
    expect(m.bound.state.workloadByUid(uidA)).toBeUndefined();
    expect(await metricsText(m.bound)).toMatch(/^workload_manager_active_proxy_count 2$/m);

    m.a.dial = { address: m.b.ip, port: 8080 };
    const early = netConnect({ host: m.a.ip, port: 15001, localAddress: m.a.ip, allowHalfOpen: true });
    cleanups.push(() => early.destroy());
    early.on('error', () => undefined);
    let echoed = '';
    early.on('data', chunk => (echoed += String(chunk)));
    await once(early, 'connect');
    early.write('early bird');
    expect(m.bound.state.workloadByUid(uidA)).toBeUndefined();

    m.pushWds();
    await waitFor(() => echoed === 'early bird', 'the early connection to be served', 10_000);
    early.end();
    expect(m.appB.peers).toEqual([m.a.ip]);
    await waitFor(() => m.bound.readiness.ready, 'ztunnel ready once WDS synced');
  });

  it('closes a connection that never gets its workload after the bound, with an access-log line', async () => {
    const m = await mesh(cleanups, { wdsAfterAdd: true, lookupTimeoutMs: 300 });
    await expect(exchange(m, 'nobody home')).rejects.toThrow(/closed after ""/);
    const failed = (direction: string, pod: string) =>
      m.records.find(
        r =>
          r.msg === 'connection failed' &&
          r.direction === direction &&
          String(r.error).startsWith(`no WDS workload for default/${pod} (service account sa-`),
      );
    await waitFor(() => failed('outbound', 'pod-a') !== undefined, 'the outbound failure log');
    expect(failed('outbound', 'pod-a')).toMatchObject({ 'dst.addr': `${m.b.ip}:8080`, component: 'access' });

    // B's HBONE port is bound, and a connection to it is closed the same way.
    const raw = netConnect({ host: m.b.ip, port: 15008, localAddress: m.a.ip });
    cleanups.push(() => raw.destroy());
    raw.on('error', () => undefined);
    await once(raw, 'close');
    await waitFor(() => failed('inbound', 'pod-b') !== undefined, 'the inbound failure log');
    expect(m.appB.peers).toEqual([]);

    // The pods are served as soon as the workloads arrive.
    m.pushWds();
    await waitFor(() => m.bound.state.workloadByUid(uidA) !== undefined, 'the workloads');
    const { echoed, socket } = await exchange(m, 'now served');
    socket.end();
    expect(echoed).toBe('now served');
  });
});

describe('ztunnel shutdown with a connection still open (direct tier)', () => {
  it('closes it at the drain deadline and completes the shutdown, instead of waiting for the connection', async () => {
    const m = await mesh(cleanups);
    const { socket } = await exchange(m, 'still open');
    // The app's socket is half-open capable: ztunnel closing its side shows as the end of input.
    const ended = once(socket, 'end');
    await m.bound.shutdown();
    await ended;
    socket.destroy();
    const messages = m.records.map(r => String(r.msg));
    expect(messages).toContain('drain timed out; closing the remaining connections');
    expect(messages).toContain('shutdown complete');
  });
});
