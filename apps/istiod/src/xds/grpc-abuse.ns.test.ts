/**
 * Namespaced tier (root): abusive clients of istiod's secure gRPC port (15012). istiod's real
 * listener (TLS 1.3, the xDS service, `ISTIO_GPRC_MAXRECVMSGSIZE`) is reached from inside a test
 * network namespace (a byte relay there to istiod's port); the abuser speaks raw TLS and HTTP/2
 * from there, while a well-behaved ztunnel stays subscribed over loopback and must keep getting
 * pushes.
 */
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { connect as h2connect } from 'node:http2';
import type { ClientHttp2Session, ClientHttp2Stream, IncomingHttpHeaders } from 'node:http2';
import { connect as netConnect, createServer } from 'node:net';
import type { Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { TLSSocket } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { closeFd, connectInNetns, listenInNetns, openNetns } from '@ambient-mesh/netns';
import { makeAuthorizationPolicy } from '../testing/fixtures.ts';
import { firstResponses, subscribe, xdsHarness } from '../testing/xds-harness.ts';
import type { Cleanups, Harness } from '../testing/xds-harness.ts';
import { ObjectKinds, TypeUrls } from '../wds/wds-index.ts';

const cleanups: Cleanups = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const LIMIT = 64 * 1024;
const DELTA_ADS = '/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources';
const SERVER_NAME = 'istiod.istio-system.svc';

interface Site {
  readonly h: Harness;
  readonly nsFd: number;
  readonly port: number;
}

/** istiod with a 64 KiB receive limit, also serving 15012 inside a fresh netns. */
async function site(label: string): Promise<Site> {
  const h = await xdsHarness(cleanups, { maxReceiveMessageBytes: LIMIT });
  const netns = `istiod-${label}-${process.pid % 100_000}`;
  execFileSync('ip', ['netns', 'add', netns]);
  cleanups.push(() => {
    execFileSync('ip', ['netns', 'del', netns]);
  });
  execFileSync('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
  const nsFd = openNetns(`/run/netns/${netns}`);
  cleanups.push(() => {
    closeFd(nsFd);
  });
  // The netns port relays each connection, byte for byte, to istiod's own listener.
  const relayed = new Set<Socket>();
  const listener = await listenInNetns(
    nsFd,
    { host: '127.0.0.1', port: 15012 },
    createServer(socket => {
      const upstream = netConnect({ host: '127.0.0.1', port: h.port });
      for (const end of [socket, upstream]) {
        relayed.add(end);
        end.on('error', () => undefined);
        end.on('close', () => {
          relayed.delete(end);
          socket.destroy();
          upstream.destroy();
        });
      }
      socket.pipe(upstream).pipe(socket);
    }),
  );
  cleanups.push(() => {
    for (const end of relayed) end.destroy();
  });
  cleanups.push(
    () =>
      new Promise<void>(resolve => {
        listener.close(() => {
          resolve();
        });
      }),
  );
  return { h, nsFd, port: 15012 };
}

/** A TLS connection to 15012 from inside the netns. */
function tlsFromNetns(s: Site): TLSSocket {
  const tls = tlsConnect({
    socket: connectInNetns(s.nsFd, { host: '127.0.0.1', port: s.port }),
    servername: SERVER_NAME,
    ca: s.h.rootPem,
    ALPNProtocols: ['h2'],
  });
  tls.on('error', () => undefined);
  cleanups.push(() => {
    tls.destroy();
  });
  return tls;
}

function session(s: Site): ClientHttp2Session {
  const client = h2connect(`https://${SERVER_NAME}:15012`, { createConnection: () => tlsFromNetns(s) });
  client.on('error', () => undefined);
  cleanups.push(() => {
    client.destroy();
  });
  return client;
}

interface CallOutcome {
  /** `grpc-status` from the trailers (or a trailers-only response), if the call got one. */
  readonly grpcStatus: string | undefined;
  readonly grpcMessage: string | undefined;
}

/** Opens the delta ADS call with a valid token, writes `body` raw, and waits for its status. */
async function rawCall(client: ClientHttp2Session, body: Buffer, endStream: boolean): Promise<CallOutcome> {
  const stream: ClientHttp2Stream = client.request({
    ':method': 'POST',
    ':path': DELTA_ADS,
    'content-type': 'application/grpc',
    te: 'trailers',
    authorization: 'Bearer istio-system:ztunnel',
  });
  stream.on('error', () => undefined);
  let status: IncomingHttpHeaders = {};
  // Done at the status (the server may answer before the client's side ends) or at close.
  const done = new Promise<void>(resolve => {
    stream.on('response', headers => {
      if (headers['grpc-status'] === undefined) return;
      status = headers;
      resolve();
    });
    stream.on('trailers', trailers => {
      status = trailers;
      resolve();
    });
    stream.on('close', () => {
      resolve();
    });
  });
  stream.resume();
  stream.write(body);
  if (endStream) stream.end();
  const timer = setTimeout(() => {
    stream.close();
  }, 20_000);
  await done;
  clearTimeout(timer);
  const grpcStatus = status['grpc-status'];
  const grpcMessage = status['grpc-message'];
  return {
    grpcStatus: typeof grpcStatus === 'string' ? grpcStatus : undefined,
    grpcMessage: typeof grpcMessage === 'string' ? decodeURIComponent(grpcMessage) : undefined,
  };
}

/** A gRPC length-prefixed message header: compressed flag and 32-bit big-endian length. */
function prefix(compressed: boolean, length: number): Buffer {
  const b = Buffer.alloc(5);
  b.writeUInt8(compressed ? 1 : 0, 0);
  b.writeUInt32BE(length, 1);
  return b;
}

/** A well-behaved ztunnel, subscribed; `pushed()` changes a policy and waits for its push. */
async function healthyZtunnel(h: Harness): Promise<{ pushed(name: string): Promise<boolean> }> {
  const c = h.client();
  subscribe(c);
  await firstResponses(c);
  return {
    pushed: async name => {
      h.index.upsert(
        ObjectKinds.AUTHORIZATION_POLICY,
        makeAuthorizationPolicy(name, 'golden', { selector: { matchLabels: { app: 'web' } } }),
      );
      for (let i = 0; i < 10; i++) {
        const r = await c.next(10_000);
        c.ack(r);
        if (r.typeUrl === TypeUrls.AUTHORIZATION && r.resources.some(x => x.name === `golden/${name}`))
          return true;
      }
      return false;
    },
  };
}

describe('istiod 15012 under abusive clients (namespaced tier)', () => {
  it('fails an oversized message with RESOURCE_EXHAUSTED (ISTIO_GPRC_MAXRECVMSGSIZE) and keeps serving others', async () => {
    const s = await site('big');
    const ztunnel = await healthyZtunnel(s.h);
    const client = session(s);
    // The length prefix alone says too much; the rest of the body never has to arrive.
    const outcome = await rawCall(
      client,
      Buffer.concat([prefix(false, LIMIT + 1), Buffer.alloc(1024)]),
      false,
    );
    expect(outcome.grpcStatus).toBe('8');
    expect(outcome.grpcMessage).toMatch(/larger than max/i);
    expect(await ztunnel.pushed('after-oversized')).toBe(true);
    // The abuser's connection itself may go on: a message within the limit is read (and fails as
    // the garbage it is), not refused for its size.
    const small = await rawCall(
      client,
      Buffer.concat([prefix(false, 3), Buffer.from([0xff, 0xff, 0xff])]),
      true,
    );
    expect(small.grpcStatus).not.toBe('8');
  });

  it('ends malformed calls (bad compression flag, undecodable protobuf, truncated message) without serving them or disturbing others', async () => {
    const s = await site('bad');
    const ztunnel = await healthyZtunnel(s.h);
    const client = session(s);
    // [what, body, the status istiod ends the call with]
    const cases: [string, Buffer, string][] = [
      ['compressed flag without grpc-encoding', Buffer.concat([prefix(true, 4), Buffer.from('abcd')]), '13'],
      ['undecodable protobuf', Buffer.concat([prefix(false, 3), Buffer.from([0xff, 0xff, 0xff])]), '13'],
      // The client ends mid-message: the partial message is dropped, never handed to the service.
      ['truncated message', Buffer.concat([prefix(false, 100), Buffer.from('short')]), '0'],
    ];
    for (const [what, body, expected] of cases) {
      const outcome = await rawCall(client, body, true);
      expect({ what, status: outcome.grpcStatus }).toEqual({ what, status: expected });
    }
    // istiod served no request from any of them: the only stream it knows is the healthy one.
    expect(s.h.server.connectionCount).toBe(1);
    expect(await ztunnel.pushed('after-malformed')).toBe(true);
  });

  it('drops a TLS client that sends bytes that are not HTTP/2, and keeps serving others', async () => {
    const s = await site('noh2');
    const ztunnel = await healthyZtunnel(s.h);
    const tls = tlsFromNetns(s);
    await once(tls, 'secureConnect');
    const closed = once(tls, 'close');
    // Read what istiod answers (a GOAWAY), so its close reaches us.
    tls.resume();
    tls.write('GET / HTTP/1.1\r\nHost: istiod\r\n\r\n'.repeat(8));
    const timer = setTimeout(() => tls.destroy(new Error('not closed by istiod within 20 s')), 20_000);
    await closed;
    clearTimeout(timer);
    expect(tls.destroyed).toBe(true);
    expect(await ztunnel.pushed('after-garbage')).toBe(true);
  });
});
