/**
 * Namespaced tier (root): two pod netns on one test node, the in-pod redirection rules applied
 * (nft-rules), both pods enrolled over ZDS, a test delta-xDS server and a test CA.
 * A → ztunnel:15001 (in A) → HBONE mTLS → ztunnel:15008 (in B) → B, with B seeing A's pod IP.
 */
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { connectInNetns } from '@ambient-mesh/netns';
import { packAny, TypeUrl } from '@ambient-mesh/xds-types';
import type { Bound } from '../app.ts';
import { captureLogs } from '@ambient-mesh/runtime/testing';
import { echoFromA, ip6Bytes, pushWds, setupInpodMesh, startInpodZtunnel } from '../testing/inpod-mesh.ts';
import type { Setup, StartOptions } from '../testing/inpod-mesh.ts';
import { captureOn } from '../testing/node-netns.ts';
import { waitFor } from '../testing/wait.ts';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const setup = (label: string, options: { readonly ipv6?: boolean } = {}): Promise<Setup> =>
  setupInpodMesh(label, cleanups, options);
const startZtunnel = (s: Setup, options?: StartOptions): Promise<Bound> =>
  startInpodZtunnel(s, cleanups, options);

describe('in-pod mesh (namespaced tier)', () => {
  it("carries A → B over HBONE mTLS: B sees A's IP and the veth shows only TLS on 15008", async () => {
    const s = await setup('mtls');
    await startZtunnel(s);
    const marker = `plaintext-marker-${Date.now()}`;
    const capture = await captureOn(s.node.netns, s.b.hostVeth, marker);
    const echoed = await echoFromA(s, marker);
    const summary = await capture.stop();
    expect(echoed).toBe(marker);
    expect(s.peersOfB).toEqual([s.a.ip]);
    expect(summary.plaintext).toBe(0);
    expect(summary.hbone).toBeGreaterThan(0);
    expect(summary.otherTcpPorts).not.toContain(8080);
  });

  it('serves the enrolled pods again after a ztunnel restart', async () => {
    const s = await setup('restart');
    const first = await startZtunnel(s);
    expect(await echoFromA(s, 'before restart')).toBe('before restart');
    await first.shutdown();
    await startZtunnel(s);
    expect(await echoFromA(s, 'after restart')).toBe('after restart');
    expect(s.peersOfB).toEqual([s.a.ip, s.a.ip]);
  });
});

describe('ztunnel shutdown (namespaced tier)', () => {
  it('exits as soon as its drain is done, long before its 25 s drain deadline, when its pods are idle', async () => {
    const s = await setup('exit');
    const { logs, records } = captureLogs();
    const bound = await startZtunnel(s, {
      config: { ...s.config, terminationGracePeriodMs: 30_000, connectionTerminationDeadlineMs: 25_000 },
      logs,
    });
    // A pooled HBONE connection from A's proxy to B's 15008 stays open after the exchange.
    expect(await echoFromA(s, 'idle afterwards')).toBe('idle afterwards');
    const started = Date.now();
    await bound.shutdown();
    console.log(
      `[ztunnel-shutdown] idle ztunnel with 2 enrolled pods: shutdown took ${String(Date.now() - started)} ms`,
    );
    const messages = records.map(r => String(r.msg));
    expect(messages).toContain('shutdown complete');
    expect(messages).not.toContain(
      'the proxies did not finish closing after the drain deadline; exiting anyway',
    );
    expect(messages).not.toContain('drain timed out; closing the remaining connections');
  });
});

describe('in-pod mesh policy (namespaced tier)', () => {
  it('refuses A → B under a DENY policy for B and reports DENY at the destination', async () => {
    const s = await setup('deny');
    const bound = await startZtunnel(s);
    expect(await echoFromA(s, 'allowed')).toBe('allowed');
    const acks = s.xds.requestsFor(TypeUrl.AUTHORIZATION).length;
    s.xds.push({
      typeUrl: TypeUrl.AUTHORIZATION,
      resources: [
        {
          name: 'default/deny-b',
          version: '1',
          resource: packAny(TypeUrl.AUTHORIZATION, {
            name: 'deny-b',
            namespace: 'default',
            scope: 1,
            action: 1,
            rules: [{ clauses: [{ matches: [{ destinationPorts: [8080] }] }] }],
          }),
        },
      ],
    });
    await waitFor(() => s.xds.requestsFor(TypeUrl.AUTHORIZATION).length > acks, 'policy ACK');
    await expect(echoFromA(s, 'denied')).rejects.toThrow(/closed after ""/);
    const metrics = await (await fetch(`http://127.0.0.1:${bound.statsAddress.port}/metrics`)).text();
    expect(metrics).toMatch(
      /^istio_tcp_connections_opened_total\{reporter="destination".*response_flags="DENY".*\} 1$/m,
    );
    expect(s.peersOfB).toEqual([s.a.ip]);
  });
});

describe('calls to ztunnel ports from a pod (namespaced tier)', () => {
  /** Connects from A, sends a byte, and reports what came back before the connection ended. */
  function probe(s: Setup, host: string, port: number): Promise<{ connected: boolean; received: string }> {
    return new Promise(resolve => {
      const socket = connectInNetns(s.a.fd, { host, port });
      let connected = false;
      let received = '';
      const timer = setTimeout(() => {
        socket.destroy();
      }, 5_000);
      socket.on('connect', () => {
        connected = true;
        socket.write('GET / HTTP/1.1\r\n\r\n');
      });
      socket.on('data', chunk => (received += String(chunk)));
      socket.on('error', () => undefined);
      socket.on('close', () => {
        clearTimeout(timer);
        resolve({ connected, received });
      });
    });
  }

  it('rejects the pod calling 15001/15006/15008 on itself, on localhost, or plain TCP to a peer 15008', async () => {
    const s = await setup('selfcall');
    const bound = await startZtunnel(s);
    const targets: [string, number][] = [
      [s.a.ip, 15001],
      [s.a.ip, 15006],
      ['127.0.0.1', 15001],
      ['127.0.0.1', 15006],
      [s.b.ip, 15008],
    ];
    for (const [host, port] of targets) {
      const result = await probe(s, host, port);
      expect({ host, port, received: result.received }).toEqual({ host, port, received: '' });
    }
    expect(s.peersOfB).toEqual([]);
    // The mesh still works afterwards.
    expect(await echoFromA(s, 'still fine')).toBe('still fine');
    expect(bound.readiness.ready).toBe(true);
  });
});

describe('in-pod mesh with pods enrolled before their WDS workloads (namespaced tier)', () => {
  it('ACKs the Adds with listeners bound, and serves a connection made before the workloads arrive', async () => {
    const s = await setup('latewds');
    const replies: string[] = [];
    await startZtunnel(s, { wdsAfterAdd: true, replies });
    expect(replies).toEqual(['', '', '']);

    // The app in A connects to B: captured to ztunnel's 15001 in A, which is already listening.
    const early = connectInNetns(s.a.fd, { host: s.b.ip, port: 8080 });
    cleanups.push(() => early.destroy());
    early.on('error', () => undefined);
    let echoed = '';
    early.on('data', chunk => (echoed += String(chunk)));
    await once(early, 'connect');
    early.write('early bird');

    pushWds(s);
    await waitFor(() => echoed === 'early bird', 'the early connection to be served', 10_000);
    early.end();
    expect(s.peersOfB).toEqual([s.a.ip]);
  });

  it('closes a connection that never gets its workload once the bound passes', async () => {
    const s = await setup('nowds');
    const replies: string[] = [];
    const bound = await startZtunnel(s, { wdsAfterAdd: true, replies, lookupTimeoutMs: 300 });
    expect(replies).toEqual(['', '', '']);
    await expect(echoFromA(s, 'nobody home')).rejects.toThrow(/closed after ""/);
    expect(s.peersOfB).toEqual([]);
    // Served as soon as the workloads arrive.
    pushWds(s);
    await waitFor(
      () => bound.state.workloadByUid('Kubernetes//Pod/default/a') !== undefined,
      'the workloads',
    );
    expect(await echoFromA(s, 'now served')).toBe('now served');
  });
});

describe('in-pod mesh over IPv6 (namespaced tier, dual-stack pods)', () => {
  it("carries A → B's IPv6 address over IPv6 HBONE mTLS: B sees A's IPv6 address, only TLS on 15008", async () => {
    const s = await setup('v6mtls', { ipv6: true });
    const bound = await startZtunnel(s);
    const marker = `plaintext-v6-marker-${Date.now()}`;
    const capture = await captureOn(s.node.netns, s.b.hostVeth, marker);
    const echoed = await echoFromA(s, marker, s.b.ip6);
    const summary = await capture.stop();
    expect(echoed).toBe(marker);
    expect(s.peersOfB).toEqual([s.a.ip6]);
    expect(summary.plaintext).toBe(0);
    expect(summary.hbone).toBeGreaterThan(0);
    expect(summary.v6).toBeGreaterThan(0);
    expect(summary.otherTcpPorts).not.toContain(8080);
    // IPv4 still works next to it.
    expect(await echoFromA(s, 'over v4')).toBe('over v4');
    expect(s.peersOfB).toEqual([s.a.ip6, s.a.ip]);
    const metrics = await (await fetch(`http://127.0.0.1:${bound.statsAddress.port}/metrics`)).text();
    expect(metrics).toMatch(
      /^istio_tcp_connections_opened_total\{reporter="destination".*connection_security_policy="mutual_tls".*\} 2$/m,
    );
  });

  it("enforces a DENY on A's IPv6 address (sourceIps /128) while A's IPv4 connection is allowed", async () => {
    const s = await setup('v6deny', { ipv6: true });
    const bound = await startZtunnel(s);
    expect(await echoFromA(s, 'allowed v6', s.b.ip6)).toBe('allowed v6');
    const acks = s.xds.requestsFor(TypeUrl.AUTHORIZATION).length;
    s.xds.push({
      typeUrl: TypeUrl.AUTHORIZATION,
      resources: [
        {
          name: 'default/deny-a-v6',
          version: '1',
          resource: packAny(TypeUrl.AUTHORIZATION, {
            name: 'deny-a-v6',
            namespace: 'default',
            scope: 1,
            action: 1,
            rules: [
              { clauses: [{ matches: [{ sourceIps: [{ address: ip6Bytes(s.a.ip6!), length: 128 }] }] }] },
            ],
          }),
        },
      ],
    });
    await waitFor(() => s.xds.requestsFor(TypeUrl.AUTHORIZATION).length > acks, 'policy ACK');
    await expect(echoFromA(s, 'denied v6', s.b.ip6)).rejects.toThrow(/closed after ""/);
    expect(await echoFromA(s, 'allowed v4')).toBe('allowed v4');
    const metrics = await (await fetch(`http://127.0.0.1:${bound.statsAddress.port}/metrics`)).text();
    expect(metrics).toMatch(
      /^istio_tcp_connections_opened_total\{reporter="destination".*response_flags="DENY".*\} 1$/m,
    );
    expect(s.peersOfB).toEqual([s.a.ip6, s.a.ip]);
  });
});
