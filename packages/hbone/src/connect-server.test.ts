import { once } from 'node:events';
import { createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { HboneClient } from './connect-client.ts';
import { HboneServer } from './connect-server.ts';
import type { ConnectHook } from './connect-server.ts';
import { HboneConnectFailedError, HboneListenerError, HbonePeerRejectedError } from './errors.ts';
import { createTestPki } from './testing/certs.ts';
import { dialAuthority, startTestServer } from './testing/harness.ts';
import type { TestServer, TestServerOptions } from './testing/harness.ts';
import { rawSession, statusOf } from './testing/raw-client.ts';
import { boundSocketFd, readAll, startEchoServer, waitFor } from './testing/tcp.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function server(options: TestServerOptions = {}): Promise<TestServer> {
  const s = await startTestServer(options);
  cleanups.push(() => s.close());
  return s;
}

async function session(s: TestServer) {
  const h2 = await rawSession(s.port, s.clientIdentity);
  cleanups.push(() => {
    h2.destroy();
  });
  return h2;
}

describe('HboneServer CONNECT handling', () => {
  it('answers 400 to a method other than CONNECT', async () => {
    const s = await server();
    const h2 = await session(s);
    expect(
      await statusOf(h2, {
        ':method': 'GET',
        ':path': '/',
        ':scheme': 'https',
        ':authority': '127.0.0.1:80',
      }),
    ).toBe(400);
    expect(
      await statusOf(h2, { ':method': 'POST', ':path': '/x', ':scheme': 'https', ':authority': 'a:1' }),
    ).toBe(400);
    expect(s.requests).toHaveLength(0);
    expect(s.server.counters.streamsRejected).toBe(2);
  });

  it.each(['127.0.0.1', 'nope', '[::1]', '127.0.0.1:0', `${'a'.repeat(300)}:80`, '1.2.3.4:99999'])(
    'answers 400 to the bad authority %j without asking the hook',
    async authority => {
      const s = await server();
      const h2 = await session(s);
      expect(await statusOf(h2, { ':method': 'CONNECT', ':authority': authority })).toBe(400);
      expect(s.requests).toHaveLength(0);
    },
  );

  it.each([400, 401, 503] as const)('answers %i when the hook decides so', async status => {
    const s = await server({ hook: () => ({ status }) });
    const h2 = await session(s);
    expect(await statusOf(h2, { ':method': 'CONNECT', ':authority': '10.0.0.1:8080' })).toBe(status);
    expect(s.requests[0]?.authority).toEqual({ kind: 'ip', ip: '10.0.0.1', family: 4, port: 8080 });
  });

  it('answers 503 when the hook throws or the upstream dial fails', async () => {
    let mode: 'throw' | 'dial' = 'throw';
    const hook: ConnectHook = request => {
      if (mode === 'throw') throw new Error('policy store unavailable');
      return dialAuthority(request);
    };
    const s = await server({ hook });
    const h2 = await session(s);
    expect(await statusOf(h2, { ':method': 'CONNECT', ':authority': '127.0.0.1:1' })).toBe(503);
    mode = 'dial';
    // A port nobody listens on: grab a free one and close it again.
    const probe = createServer();
    await new Promise<void>(r => probe.listen(0, '127.0.0.1', r));
    const { port } = probe.address() as AddressInfo;
    await new Promise<void>(r =>
      probe.close(() => {
        r();
      }),
    );
    expect(await statusOf(h2, { ':method': 'CONNECT', ':authority': `127.0.0.1:${port}` })).toBe(503);
    expect(s.errors.map(e => e.message).join('\n')).toMatch(/policy store unavailable[\s\S]*ECONNREFUSED/);
  });

  it('sends the 200 only after the upstream connected, and forwards no byte before that', async () => {
    let release!: (socket: Socket) => void;
    const upstreamReady = new Promise<Socket>(r => (release = r));
    const echo = await startEchoServer();
    cleanups.push(() => echo.close());
    const s = await server({
      hook: () => ({ status: 200, connect: () => upstreamReady }),
    });
    const h2 = await session(s);
    const stream = h2.request(
      { ':method': 'CONNECT', ':authority': `127.0.0.1:${echo.port}` },
      { endStream: false },
    );
    let responded = false;
    stream.on('response', () => (responded = true));
    // Early data, sent before the tunnel is accepted (CVE-2025-64763 shape).
    stream.write('early');
    await waitFor(() => s.requests.length === 1, 5000, 'hook call');
    // Give the server a chance to misbehave: a full round trip on the session.
    await new Promise<void>(r =>
      h2.ping(() => {
        r();
      }),
    );
    expect(responded).toBe(false);
    const { Socket: NetSocket } = await import('node:net');
    const upstream = new NetSocket({ allowHalfOpen: true });
    const received: Buffer[] = [];
    const upstreamConnected = once(upstream, 'connect');
    upstream.connect(echo.port, '127.0.0.1');
    await upstreamConnected;
    upstream.on('data', (c: Buffer) => received.push(c));
    expect(received).toHaveLength(0);
    release(upstream);
    await waitFor(() => responded, 5000, '200 response');
    stream.end('-late');
    expect((await readAll(stream)).toString()).toBe('early-late');
  });

  it('reports each relayed chunk and the end of the relay to the decision’s observer', async () => {
    const echo = await startEchoServer();
    cleanups.push(() => echo.close());
    let fromClient = 0;
    let toClient = 0;
    const closed: { sent: number; received: number; error?: Error }[] = [];
    const s = await server({
      hook: request => {
        const d = dialAuthority(request);
        return d instanceof Promise || d.status !== 200
          ? d
          : {
              ...d,
              observe: {
                fromClient: n => (fromClient += n),
                toClient: n => (toClient += n),
                closed: r => closed.push(r),
              },
            };
      },
    });
    const h2 = await session(s);
    const stream = h2.request(
      { ':method': 'CONNECT', ':authority': `127.0.0.1:${echo.port}` },
      { endStream: false },
    );
    stream.write('hello ');
    stream.end('observer');
    expect((await readAll(stream)).toString()).toBe('hello observer');
    await waitFor(() => closed.length === 1, 5000, 'the relay end');
    expect({ fromClient, toClient }).toEqual({ fromClient: 14, toClient: 14 });
    expect(closed[0]).toEqual({ sent: 14, received: 14 });
  });

  it('drops an upstream that connects after the client went away, without crashing', async () => {
    let release!: () => void;
    const gate = new Promise<void>(r => (release = r));
    const echo = await startEchoServer();
    cleanups.push(() => echo.close());
    let upstreamDestroyed = false;
    const s = await server({
      hook: request => ({
        status: 200,
        connect: async signal => {
          await gate;
          const sock = await dialAuthority(request);
          if (sock.status !== 200) throw new Error('unexpected');
          const up = await sock.connect(new AbortController().signal);
          up.on('close', () => (upstreamDestroyed = true));
          expect(signal.aborted).toBe(true);
          return up;
        },
      }),
    });
    const h2 = await session(s);
    const stream = h2.request(
      { ':method': 'CONNECT', ':authority': `127.0.0.1:${echo.port}` },
      { endStream: false },
    );
    stream.on('error', () => undefined);
    await waitFor(() => s.requests.length === 1, 5000, 'hook call');
    h2.destroy();
    await waitFor(() => s.server.sessionCount === 0, 5000, 'session gone');
    release();
    await waitFor(() => upstreamDestroyed, 5000, 'upstream destroyed');
    expect(s.server.counters.streamsOpened).toBe(0);
  });

  it('refuses a client from another trust domain', async () => {
    const s = await server();
    const foreign = await s.pki.identity('intruder', { uri: 'spiffe://evil.example/ns/x/sa/intruder' });
    const client = new HboneClient();
    cleanups.push(() => {
      client.destroy();
    });
    await expect(
      client.connect({
        target: '127.0.0.1:1',
        nextHop: s.nextHop,
        identity: foreign,
        expectedIdentities: [s.serverIdentity.id],
      }),
    ).rejects.toBeInstanceOf(HboneConnectFailedError);
    await waitFor(() => s.errors.length > 0, 5000, 'refusal report');
    expect(s.errors[0]).toBeInstanceOf(HbonePeerRejectedError);
    expect(s.errors[0]!.message).toContain('trust domain cluster.local');
    expect(s.requests).toHaveLength(0);
  });

  it('refuses a client whose certificate comes from another CA', async () => {
    const s = await server();
    const otherPki = await createTestPki();
    const stranger = await otherPki.identity('client', { namespace: 'frontend' });
    const client = new HboneClient();
    cleanups.push(() => {
      client.destroy();
    });
    await expect(
      client.connect({
        target: '127.0.0.1:1',
        nextHop: s.nextHop,
        // Trust the real server's roots so that only the server's check can fail.
        identity: { ...stranger, roots: s.serverIdentity.roots },
        expectedIdentities: [s.serverIdentity.id],
      }),
    ).rejects.toBeInstanceOf(HboneConnectFailedError);
    await waitFor(() => s.errors.length > 0, 5000, 'refusal report');
    expect(s.errors[0]).toBeInstanceOf(HbonePeerRejectedError);
  });

  it('serves on a listening file descriptor and closes gracefully', async () => {
    const pki = await createTestPki();
    const serverIdentity = await pki.identity('server');
    const clientIdentity = await pki.identity('client');
    const bound = boundSocketFd();
    const { fd } = bound;
    const hbone = new HboneServer({ identity: serverIdentity, listener: { fd }, onConnect: dialAuthority });
    cleanups.push(() => {
      hbone.destroy();
    });
    const echo = await startEchoServer();
    cleanups.push(() => echo.close());
    const client = new HboneClient();
    cleanups.push(() => {
      client.destroy();
    });
    const tunnel = await client.connect({
      target: `127.0.0.1:${echo.port}`,
      nextHop: `127.0.0.1:${bound.port}`,
      identity: clientIdentity,
      expectedIdentities: [serverIdentity.id],
    });
    // Graceful close: GOAWAY, and the open tunnel still finishes.
    const closed = hbone.close();
    tunnel.end('after GOAWAY');
    expect((await readAll(tunnel)).toString()).toBe('after GOAWAY');
    await closed;
    expect(hbone.sessionCount).toBe(0);
  });

  it('sends GOAWAY on a session without streams for idleSessionTimeoutMs, never while a tunnel is open', async () => {
    const echo = await startEchoServer();
    cleanups.push(() => echo.close());
    const s = await server({ idleSessionTimeoutMs: 300 });
    const h2 = await session(s);
    const goaway = once(h2, 'goaway');
    // A tunnel held open well past the timeout keeps the session.
    const tunnel = h2.request({ ':method': 'CONNECT', ':authority': `127.0.0.1:${echo.port}` });
    await once(tunnel, 'response');
    const started = Date.now();
    for (let i = 0; i < 100_000 && Date.now() - started < 1_000; i++) {
      tunnel.write(`ping ${i}`);
      await once(tunnel, 'data');
    }
    expect(h2.closed || h2.destroyed).toBe(false);
    tunnel.end();
    await once(tunnel, 'close');
    await goaway;
    await waitFor(() => s.errors.some(e => (e as { code?: string }).code === 'HBONE_SESSION_IDLE'), 5000);
    expect(s.server.sessionCount).toBeLessThanOrEqual(1);
  });

  it('refuses a listener that is neither a net.Server nor an fd', async () => {
    const pki = await createTestPki();
    const identity = await pki.identity('server');
    expect(() => new HboneServer({ identity, listener: { fd: -1 }, onConnect: dialAuthority })).toThrow(
      HboneListenerError,
    );
  });

  it('sends no SNI and negotiates TLS 1.3 with ALPN h2', async () => {
    const s = await server();
    const echo = await startEchoServer();
    cleanups.push(() => echo.close());
    const client = new HboneClient();
    cleanups.push(() => {
      client.destroy();
    });
    const tunnel = await client.connect({
      target: `127.0.0.1:${echo.port}`,
      nextHop: s.nextHop,
      identity: s.clientIdentity,
      expectedIdentities: [s.serverIdentity.id],
    });
    const tls = (tunnel as unknown as { session: { socket: TLSSocket } }).session.socket;
    expect({ servername: tls.servername, protocol: tls.getProtocol(), alpn: tls.alpnProtocol }).toEqual({
      servername: false,
      protocol: 'TLSv1.3',
      alpn: 'h2',
    });
    expect(tls.getCipher().name).toMatch(/^TLS_AES_(256|128)_GCM_SHA(384|256)$/);
    tunnel.end();
    await readAll(tunnel);
  });
});
