/**
 * Namespaced tier (root): ztunnel's hardening limits on a real in-pod mesh (two pods on a test
 * node, see testing/inpod-mesh.ts). Each test sets one limit low, shows that the offending
 * connection is closed (or refused) and that the mesh keeps serving A → B meanwhile and after.
 * Bounds are generous (a loaded machine); no test asserts how fast anything happened.
 */
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { closeFd, connectInNetns, openNetns } from '@ambient-mesh/netns';
import { captureLogs } from '@ambient-mesh/runtime/testing';
import type { Bound } from '../app.ts';
import { echoFromA, setupInpodMesh, startInpodZtunnel } from '../testing/inpod-mesh.ts';
import type { Cleanups, Setup } from '../testing/inpod-mesh.ts';
import { waitFor } from '../testing/wait.ts';

const cleanups: Cleanups = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Generous bound for "closed by a 1 s limit" on a loaded 2-core machine. */
const CLOSE_BOUND_MS = 20_000;

type Limits = Partial<
  Pick<
    Setup['config'],
    | 'hboneHandshakeTimeoutMs'
    | 'upstreamConnectTimeoutMs'
    | 'connectionIdleTimeoutMs'
    | 'hboneIdleSessionTimeoutMs'
    | 'maxConnectionsPerSource'
  >
>;

async function start(
  label: string,
  limits: Limits,
): Promise<{ s: Setup; bound: Bound; records: Record<string, unknown>[] }> {
  const s = await setupInpodMesh(label, cleanups);
  const { logs, records } = captureLogs();
  const bound = await startInpodZtunnel(s, cleanups, { config: { ...s.config, ...limits }, logs });
  return { s, bound, records };
}

/** An fd of the test node's netns: a client outside every pod (no capture rules apply). */
function nodeNetns(s: Setup): number {
  const fd = openNetns(`/run/netns/${s.node.netns}`);
  cleanups.push(() => {
    closeFd(fd);
  });
  return fd;
}

/** A TCP connection that stays silent; resolves `closed` when the server ends it. */
async function silentConnection(
  netnsFd: number,
  host: string,
  port: number,
): Promise<{ socket: Socket; closed: Promise<void> }> {
  const socket = connectInNetns(netnsFd, { host, port });
  cleanups.push(() => socket.destroy());
  socket.on('error', () => undefined);
  socket.resume();
  const closed = once(socket, 'close').then(() => undefined);
  await once(socket, 'connect');
  return { socket, closed };
}

/** Resolves when `closed` settles; rejects after `boundMs` naming `what`. */
async function within(closed: Promise<void>, boundMs: number, what: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`${what} was not closed within ${boundMs} ms`));
    }, boundMs);
  });
  try {
    await Promise.race([closed, bound]);
  } finally {
    clearTimeout(timer);
  }
}

/** Established TCP connections in `netns` whose local port is `port`. */
function establishedOn(netns: string, port: number): number {
  const out = execFileSync(
    'ip',
    ['netns', 'exec', netns, 'ss', '-Htn', 'state', 'established', `sport = :${port}`],
    {
      encoding: 'utf8',
    },
  );
  return out.split('\n').filter(line => line.trim() !== '').length;
}

/** Drops TCP to `daddr:dport` leaving `netns` (after the capture rules rewrote the app's own SYN). */
function dropOutput(netns: string, daddr: string, dport: number): void {
  const nft = (...args: string[]): void => {
    execFileSync('ip', ['netns', 'exec', netns, 'nft', ...args], { stdio: 'ignore' });
  };
  nft('add', 'table', 'ip', 'hardening_test');
  nft('add', 'chain', 'ip', 'hardening_test', 'out', '{ type filter hook output priority 0 ; }');
  nft(
    'add',
    'rule',
    'ip',
    'hardening_test',
    'out',
    'ip',
    'daddr',
    daddr,
    'tcp',
    'dport',
    String(dport),
    'drop',
  );
}

function messages(records: Record<string, unknown>[]): string {
  return JSON.stringify(records);
}

async function metric(bound: Bound, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${bound.statsAddress.port}/metrics`)).text();
  const line = text.split('\n').find(l => l.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.split(' ')[1]);
}

describe('ztunnel hardening: handshake and connect timeouts (namespaced tier)', () => {
  it('closes a connection to 15008 that never completes its TLS handshake (HBONE_HANDSHAKE_TIMEOUT)', async () => {
    const { s, bound, records } = await start('hstimeout', { hboneHandshakeTimeoutMs: 1_000 });
    const stalled = await silentConnection(nodeNetns(s), s.b.ip, 15008);
    // B's inbound keeps serving A while the stalled client waits.
    expect(await echoFromA(s, 'during the stall')).toBe('during the stall');
    await within(stalled.closed, CLOSE_BOUND_MS, 'the silent 15008 client');
    await waitFor(
      () => messages(records).includes('ERR_TLS_HANDSHAKE_TIMEOUT'),
      'the handshake timeout to be reported',
    );
    expect(await echoFromA(s, 'after the stall')).toBe('after the stall');
    expect(bound.readiness.ready).toBe(true);
  });

  it('closes an outbound (15001) passthrough connection whose destination never answers (UPSTREAM_CONNECT_TIMEOUT)', async () => {
    const { s, records } = await start('ctout', { upstreamConnectTimeoutMs: 1_000 });
    // ztunnel's SYN from A to a passthrough address is dropped: the dial can only time out.
    dropOutput(s.a.netns, '192.0.2.1', 9);
    const app = await silentConnection(s.a.fd, '192.0.2.1', 9);
    await within(app.closed, CLOSE_BOUND_MS, 'the app connection to an unanswering passthrough destination');
    await waitFor(() => /timed out|timeout/i.test(messages(records)), 'the connect timeout to be logged');
    expect(await echoFromA(s, 'others still served')).toBe('others still served');
  });

  it('closes an inbound plaintext (15006) connection whose app port never answers (UPSTREAM_CONNECT_TIMEOUT)', async () => {
    const { s } = await start('ctin', { upstreamConnectTimeoutMs: 1_000 });
    // Delivery from ztunnel in B to B's port 9 is dropped inside B.
    dropOutput(s.b.netns, s.b.ip, 9);
    const client = await silentConnection(nodeNetns(s), s.b.ip, 9);
    await within(client.closed, CLOSE_BOUND_MS, 'the plaintext client of an unanswering app port');
    expect(await echoFromA(s, 'others still served')).toBe('others still served');
  });
});

describe('ztunnel hardening: idle limits (namespaced tier)', () => {
  it('closes a proxied connection idle for CONNECTION_IDLE_TIMEOUT, on both ends', async () => {
    const { s } = await start('idleconn', { connectionIdleTimeoutMs: 1_000 });
    const app = connectInNetns(s.a.fd, { host: s.b.ip, port: 8080 });
    cleanups.push(() => app.destroy());
    app.on('error', () => undefined);
    const closed = once(app, 'close').then(() => undefined);
    let echoed = '';
    app.on('data', chunk => (echoed += String(chunk)));
    await once(app, 'connect');
    app.write('one exchange, then silence');
    await waitFor(() => echoed === 'one exchange, then silence', 'the echo', 10_000);
    await within(closed, CLOSE_BOUND_MS, 'the idle connection');
    // B's app saw its side end too (ztunnel in B closed its delivery socket or the tunnel ended).
    await waitFor(
      () => establishedOn(s.b.netns, 8080) === 0,
      "B's end of the idle connection to close",
      10_000,
    );
    expect(await echoFromA(s, 'a busy one is fine')).toBe('a busy one is fine');
  });

  it('sends GOAWAY on an inbound HBONE connection that carries no tunnel for HBONE_IDLE_SESSION_TIMEOUT', async () => {
    const { s, records } = await start('idlesess', { hboneIdleSessionTimeoutMs: 1_000 });
    // While a tunnel is open the session is not idle.
    const app = connectInNetns(s.a.fd, { host: s.b.ip, port: 8080 });
    cleanups.push(() => app.destroy());
    app.on('error', () => undefined);
    let echoed = '';
    app.on('data', chunk => (echoed += String(chunk)));
    await once(app, 'connect');
    app.write('held open');
    await waitFor(() => echoed === 'held open', 'the echo', 10_000);
    expect(establishedOn(s.b.netns, 15008)).toBeGreaterThan(0);
    // The tunnel ends; the pooled connection from A's proxy is now idle and B closes it.
    app.end();
    await waitFor(
      () => establishedOn(s.b.netns, 15008) === 0,
      'the idle HBONE connection to close',
      CLOSE_BOUND_MS,
    );
    expect(messages(records)).toContain('HBONE_SESSION_IDLE');
    // A's pool opens a fresh connection for the next tunnel.
    expect(await echoFromA(s, 'after GOAWAY')).toBe('after GOAWAY');
  });
});

describe('ztunnel hardening: per-source connection limit (namespaced tier)', () => {
  it('refuses a source at MAX_CONNECTIONS_PER_SOURCE on 15008 and 15006 together, and admits it again below', async () => {
    const { s, bound, records } = await start('srclimit', {
      maxConnectionsPerSource: 3,
      // The silent clients below must outlive the test's checks.
      hboneHandshakeTimeoutMs: 120_000,
    });
    const node = nodeNetns(s);
    const held = [
      await silentConnection(node, s.b.ip, 15008),
      await silentConnection(node, s.b.ip, 15008),
      // Plaintext to B's app counts against the same source (and stays open: it reaches the echo).
      await silentConnection(node, s.b.ip, 8080),
    ];
    const refusedBefore = await metric(bound, 'ztunnel_connections_refused_source_limit_total');
    const fourth = await silentConnection(node, s.b.ip, 15008);
    await within(fourth.closed, CLOSE_BOUND_MS, 'the connection over the limit');
    const fifth = await silentConnection(node, s.b.ip, 8080);
    await within(fifth.closed, CLOSE_BOUND_MS, 'the plaintext connection over the limit');
    expect(await metric(bound, 'ztunnel_connections_refused_source_limit_total')).toBe(refusedBefore + 2);
    // Logged once per episode, with the source.
    expect(records.filter(r => String(r.msg).includes('MAX_CONNECTIONS_PER_SOURCE'))).toHaveLength(1);
    // Another source (A's proxy) is served meanwhile.
    expect(await echoFromA(s, 'other sources unaffected')).toBe('other sources unaffected');

    // One closes (its FIN ends the server side even mid-handshake): the source may open one again, and is at the limit once more after that.
    held[0]?.socket.destroy();
    await held[0]?.closed;
    // A candidate and a probe: exactly one of them is refused once the slot is free again (the
    // server decides in order), and the refused one is closed at once. Until the release, both are.
    let again: { socket: Socket; closed: Promise<void> } | undefined;
    for (let attempt = 0; attempt < 20 && again === undefined; attempt++) {
      const candidate = await silentConnection(node, s.b.ip, 15008);
      const probe = await silentConnection(node, s.b.ip, 15008);
      await within(
        Promise.race([candidate.closed, probe.closed]),
        CLOSE_BOUND_MS,
        'a connection over the limit',
      );
      if (!candidate.socket.destroyed && probe.socket.destroyed) again = candidate;
      else {
        candidate.socket.destroy();
        probe.socket.destroy();
        await Promise.all([candidate.closed, probe.closed]);
      }
    }
    expect(again?.socket.destroyed).toBe(false);
    for (const h of held) h.socket.destroy();
  });
});
