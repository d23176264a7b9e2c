// A CONNECT the peer never processed (RST_STREAM REFUSED_STREAM, or a GOAWAY whose last stream id
// is below it) is sent once more; anything else is not. The peer is a plain node:http2 server
// with the test PKI, so each refusal is exactly the frame the test names.
import { once } from 'node:events';
import { constants as h2, createSecureServer } from 'node:http2';
import type { Http2SecureServer, ServerHttp2Session, ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HboneClient } from './connect-client.ts';
import { HboneConnectRejectedError, HboneStreamRefusedError } from './errors.ts';
import { tlsContextOptions } from './identity.ts';
import type { HboneIdentity } from './identity.ts';
import { createTestPki } from './testing/certs.ts';
import { readAll } from './testing/tcp.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Peer {
  nextHop: string;
  readonly serverId: string;
  readonly clientIdentity: HboneIdentity;
  /** CONNECT streams seen, with the index of the session each came on. */
  readonly streams: { session: number }[];
  sessions: number;
}

/** An HTTP/2 server; `decide` answers each CONNECT: 'echo' (200, echoes), 'refuse', 'goaway', or a status. */
async function startPeer(
  decide: (streamIndex: number, sessionIndex: number) => 'echo' | 'refuse' | 'goaway' | number,
): Promise<Peer> {
  const pki = await createTestPki();
  const serverIdentity = await pki.identity('server', { namespace: 'backend' });
  const clientIdentity = await pki.identity('client', { namespace: 'frontend' });
  const server: Http2SecureServer = createSecureServer({
    ...tlsContextOptions(serverIdentity),
    ALPNProtocols: ['h2'],
  });
  const open = new Set<ServerHttp2Session>();
  const peer: Peer = {
    nextHop: '',
    serverId: serverIdentity.id,
    clientIdentity,
    streams: [],
    sessions: 0,
  };
  const sessionIndex = new WeakMap<ServerHttp2Session, number>();
  server.on('session', (session: ServerHttp2Session) => {
    sessionIndex.set(session, peer.sessions++);
    open.add(session);
    session.once('close', () => open.delete(session));
  });
  server.on('stream', (stream: ServerHttp2Stream) => {
    const index = sessionIndex.get(stream.session as ServerHttp2Session) ?? -1;
    peer.streams.push({ session: index });
    const answer = decide(peer.streams.length - 1, index);
    stream.on('error', () => undefined);
    if (answer === 'echo') {
      stream.respond({ ':status': 200 });
      stream.pipe(stream);
    } else if (answer === 'refuse') {
      stream.close(h2.NGHTTP2_REFUSED_STREAM);
    } else if (answer === 'goaway') {
      // Last stream id 0: this stream was never processed; the session closes gracefully.
      stream.session?.goaway(h2.NGHTTP2_NO_ERROR, 0);
      stream.close(h2.NGHTTP2_REFUSED_STREAM);
    } else {
      stream.respond({ ':status': answer }, { endStream: true });
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(async () => {
    for (const s of open) s.destroy();
    await new Promise<void>(resolve => {
      server.close(() => {
        resolve();
      });
    });
  });
  peer.nextHop = `127.0.0.1:${String((server.address() as AddressInfo).port)}`;
  return peer;
}

function client(): HboneClient {
  const c = new HboneClient();
  cleanups.push(() => {
    c.destroy();
  });
  return c;
}

async function roundTrip(c: HboneClient, peer: Peer): Promise<string> {
  const tunnel = await c.connect({
    target: '127.0.0.1:9',
    nextHop: peer.nextHop,
    identity: peer.clientIdentity,
    expectedIdentities: [peer.serverId],
  });
  tunnel.end('ping');
  return (await readAll(tunnel)).toString('utf8');
}

describe('CONNECTs the peer did not process', () => {
  it('sends a CONNECT refused with RST_STREAM REFUSED_STREAM once more, and the tunnel works', async () => {
    const peer = await startPeer(i => (i === 0 ? 'refuse' : 'echo'));
    const c = client();
    expect(await roundTrip(c, peer)).toBe('ping');
    expect(peer.streams).toHaveLength(2);
    expect(c.counters.streamsRetried).toBe(1);
    expect(c.counters.streamsOpened).toBe(1);
  });

  it('sends a CONNECT above a GOAWAY`s last stream id again on a new connection', async () => {
    const peer = await startPeer((_, session) => (session === 0 ? 'goaway' : 'echo'));
    const c = client();
    expect(await roundTrip(c, peer)).toBe('ping');
    expect(peer.streams.map(s => s.session)).toEqual([0, 1]);
    expect(peer.sessions).toBe(2);
    expect(c.counters.streamsRetried).toBe(1);
  });

  it('gives up with HBONE_STREAM_REFUSED when the second attempt is refused too', async () => {
    const peer = await startPeer(() => 'refuse');
    const c = client();
    const error = await roundTrip(c, peer).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HboneStreamRefusedError);
    expect((error as HboneStreamRefusedError).code).toBe('HBONE_STREAM_REFUSED');
    expect(peer.streams).toHaveLength(2);
    expect(c.stats().leases).toBe(0);
  });

  it('does not send a CONNECT again when the peer answered it (503)', async () => {
    const peer = await startPeer(() => 503);
    const c = client();
    const error = await roundTrip(c, peer).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HboneConnectRejectedError);
    expect(peer.streams).toHaveLength(1);
    expect(c.counters.streamsRetried).toBe(0);
  });
});
