import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { HboneClient } from './connect-client.ts';
import { HboneConnectFailedError, HboneConnectRejectedError, HbonePeerIdentityError } from './errors.ts';
import { startTestServer } from './testing/harness.ts';
import type { TestServer } from './testing/harness.ts';
import { readAll, startEchoServer, startGreeterServer, startHashServer, waitFor } from './testing/tcp.ts';
import type { TestTcpServer } from './testing/tcp.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(): Promise<{ hbone: TestServer; client: HboneClient }> {
  const hbone = await startTestServer();
  cleanups.push(() => hbone.close());
  const client = new HboneClient();
  cleanups.push(() => {
    client.destroy();
  });
  return { hbone, client };
}

async function tcp(start: () => Promise<TestTcpServer>): Promise<TestTcpServer> {
  const server = await start();
  cleanups.push(() => server.close());
  return server;
}

describe('HBONE tunnel over real sockets', () => {
  it('carries bytes both ways and reports the peer identity and headers to the hook', async () => {
    const { hbone, client } = await setup();
    const echo = await tcp(startEchoServer);
    const tunnel = await client.connect({
      target: `127.0.0.1:${echo.port}`,
      nextHop: hbone.nextHop,
      identity: hbone.clientIdentity,
      expectedIdentities: [hbone.serverIdentity.id],
      headers: { baggage: 'k8s.namespace.name=frontend' },
    });
    tunnel.end('hello through HBONE');
    expect((await readAll(tunnel)).toString()).toBe('hello through HBONE');
    const request = hbone.requests[0]!;
    expect(request.peerIdentity).toBe(hbone.clientIdentity.id);
    expect(request.rawAuthority).toBe(`127.0.0.1:${echo.port}`);
    expect(request.headers.baggage).toBe('k8s.namespace.name=frontend');
    expect(request.headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    expect(request.localAddress).toEqual({ address: '127.0.0.1', port: hbone.port });
    await waitFor(() => hbone.server.counters.streamsClosed === 1, 5000, 'server stream close');
    expect(hbone.server.counters).toMatchObject({ streamsOpened: 1, bytesReceived: 19, bytesSent: 19 });
    await waitFor(() => client.counters.streamsClosed === 1, 5000, 'client stream close');
    expect(client.counters).toMatchObject({ connectionsOpened: 1, streamsOpened: 1 });
  });

  it('transfers 256 MiB through one CONNECT with equal SHA-256 at both ends', async () => {
    const { hbone, client } = await setup();
    const sink = await tcp(startHashServer);
    const tunnel = await client.connect({
      target: `127.0.0.1:${sink.port}`,
      nextHop: hbone.nextHop,
      identity: hbone.clientIdentity,
      expectedIdentities: [hbone.serverIdentity.id],
    });
    const total = 256 * 1024 * 1024;
    const block = randomBytes(1024 * 1024);
    const hash = createHash('sha256');
    let sent = 0;
    const source = Readable.from(
      (function* () {
        for (let i = 0; sent < total && i < 1024; i++) {
          // Vary each block so a dropped or repeated chunk changes the hash.
          const chunk = Buffer.from(block);
          chunk.writeUInt32BE(i, 0);
          hash.update(chunk);
          sent += chunk.length;
          yield chunk;
        }
      })(),
    );
    source.pipe(tunnel);
    const reply = (await readAll(tunnel)).toString().trim();
    expect(reply).toBe(`${hash.digest('hex')} ${total}`);
  }, 120_000);

  it('runs 1000 sequential pooled streams on one connection without GOAWAY', async () => {
    const { hbone, client } = await setup();
    const echo = await tcp(startEchoServer);
    let goaways = 0;
    for (let i = 0; i < 1000; i++) {
      const tunnel = await client.connect({
        target: `127.0.0.1:${echo.port}`,
        nextHop: hbone.nextHop,
        identity: hbone.clientIdentity,
        expectedIdentities: [hbone.serverIdentity.id],
      });
      if (i === 0) {
        // Observe the session the pool uses for every stream.
        (tunnel as unknown as { session: NodeJS.EventEmitter }).session.on('goaway', () => goaways++);
      }
      tunnel.end(`m${i}`);
      expect((await readAll(tunnel)).toString()).toBe(`m${i}`);
    }
    expect(goaways).toBe(0);
    expect(client.counters.connectionsOpened).toBe(1);
    expect(hbone.server.counters.connectionsOpened).toBe(1);
    await waitFor(() => hbone.server.counters.streamsClosed === 1000, 10_000, 'all streams closed');
    expect(hbone.server.counters.connectionErrors).toBe(0);
  }, 120_000);

  it('runs 200 concurrent streams on one connection (server limit 200)', async () => {
    const { hbone } = await setup();
    const client = new HboneClient({ maxStreamsPerConnection: 200 });
    cleanups.push(() => {
      client.destroy();
    });
    const echo = await tcp(startEchoServer);
    const tunnels = await Promise.all(
      Array.from({ length: 200 }, () =>
        client.connect({
          target: `127.0.0.1:${echo.port}`,
          nextHop: hbone.nextHop,
          identity: hbone.clientIdentity,
          expectedIdentities: [hbone.serverIdentity.id],
        }),
      ),
    );
    expect(client.stats()).toEqual({ keys: 1, connections: 1, leases: 200 });
    const replies = await Promise.all(
      tunnels.map(async (t, i) => {
        t.end(randomBytes(16 * 1024).fill(i % 256));
        return readAll(t);
      }),
    );
    replies.forEach((r, i) => {
      expect(r.length).toBe(16 * 1024);
      expect(r.every(b => b === i % 256)).toBe(true);
    });
    expect(client.counters.connectionsOpened).toBe(1);
  }, 60_000);

  it('opens a second pooled connection when 100 streams fill the first', async () => {
    const { hbone, client } = await setup();
    const echo = await tcp(startEchoServer);
    const tunnels = await Promise.all(
      Array.from({ length: 150 }, () =>
        client.connect({
          target: `127.0.0.1:${echo.port}`,
          nextHop: hbone.nextHop,
          identity: hbone.clientIdentity,
          expectedIdentities: [hbone.serverIdentity.id],
        }),
      ),
    );
    expect(client.stats()).toEqual({ keys: 1, connections: 2, leases: 150 });
    await Promise.all(
      tunnels.map(async t => {
        t.end('x');
        return readAll(t);
      }),
    );
    await waitFor(() => client.stats().leases === 0, 5000, 'leases released');
  }, 60_000);

  it('half-closes client → server: the server still answers after the client ended', async () => {
    const { hbone, client } = await setup();
    const sink = await tcp(startHashServer);
    const tunnel = await client.connect({
      target: `127.0.0.1:${sink.port}`,
      nextHop: hbone.nextHop,
      identity: hbone.clientIdentity,
      expectedIdentities: [hbone.serverIdentity.id],
    });
    tunnel.end('abc');
    // The sink only answers after it saw our FIN: proof that END_STREAM became a TCP half-close.
    const reply = (await readAll(tunnel)).toString();
    expect(reply).toBe(`${createHash('sha256').update('abc').digest('hex')} 3\n`);
  });

  it('half-closes server → client: the client still sends after the server ended', async () => {
    const { hbone, client } = await setup();
    const greeter = await startGreeterServer('welcome');
    cleanups.push(() => greeter.close());
    const tunnel = await client.connect({
      target: `127.0.0.1:${greeter.port}`,
      nextHop: hbone.nextHop,
      identity: hbone.clientIdentity,
      expectedIdentities: [hbone.serverIdentity.id],
    });
    const greeting = await readAll(tunnel);
    expect(greeting.toString()).toBe('welcome');
    tunnel.end('still talking after your FIN');
    await waitFor(() => greeter.received.length === 1, 5000, 'upstream to receive');
    expect(greeter.received[0]!.toString()).toBe('still talking after your FIN');
  });

  it('fails on the client side when the server presents the wrong identity', async () => {
    const { hbone, client } = await setup();
    await expect(
      client.connect({
        target: '127.0.0.1:1',
        nextHop: hbone.nextHop,
        identity: hbone.clientIdentity,
        expectedIdentities: ['spiffe://cluster.local/ns/backend/sa/someone-else'],
      }),
    ).rejects.toBeInstanceOf(HbonePeerIdentityError);
    expect(hbone.requests).toHaveLength(0);
  });

  it('fails the handshake when the server certificate expired', async () => {
    const pki = await (await import('./testing/certs.ts')).createTestPki();
    const expired = await pki.identity('server', { namespace: 'backend', expired: true });
    const hbone = await startTestServer({ pki, serverIdentity: expired });
    cleanups.push(() => hbone.close());
    const client = new HboneClient();
    cleanups.push(() => {
      client.destroy();
    });
    const error = await client
      .connect({
        target: '127.0.0.1:1',
        nextHop: hbone.nextHop,
        identity: hbone.clientIdentity,
        expectedIdentities: [expired.id],
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HboneConnectFailedError);
    expect((error as Error).message).toMatch(/expired/i);
  });

  it('fails the handshake when the client certificate expired, and the server counts it', async () => {
    const { hbone, client } = await setup();
    const expired = await hbone.pki.identity('client', { namespace: 'frontend', expired: true });
    await expect(
      client.connect({
        target: '127.0.0.1:1',
        nextHop: hbone.nextHop,
        identity: expired,
        expectedIdentities: [hbone.serverIdentity.id],
      }),
    ).rejects.toBeInstanceOf(HboneConnectFailedError);
    await waitFor(() => hbone.errors.length > 0, 5000, 'server-side handshake error');
    expect(hbone.errors.map(e => e.message).join(' ')).toMatch(/expired/i);
    expect(hbone.server.counters.connectionsOpened).toBe(0);
    expect(hbone.requests).toHaveLength(0);
  });

  it('rejects a 503 from the server with the status on the error', async () => {
    const hbone = await startTestServer({ hook: () => ({ status: 503 }) });
    cleanups.push(() => hbone.close());
    const client = new HboneClient();
    cleanups.push(() => {
      client.destroy();
    });
    const error = await client
      .connect({
        target: '127.0.0.1:9',
        nextHop: hbone.nextHop,
        identity: hbone.clientIdentity,
        expectedIdentities: [hbone.serverIdentity.id],
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HboneConnectRejectedError);
    expect((error as HboneConnectRejectedError).status).toBe(503);
    await waitFor(() => client.stats().leases === 0, 5000, 'lease released');
  });
});
