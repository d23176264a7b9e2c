import type { TLSSocket } from 'node:tls';
import { isMeshError } from '@ambient-mesh/errors';
import { afterEach, describe, expect, it } from 'vitest';
import { HboneClient } from './connect-client.ts';
import {
  FrameType,
  PREFACE,
  connectHeaders,
  fragmentedHeaders,
  frame,
  headerBlock,
  ping,
  rstStream,
  settings,
} from './testing/h2-frames.ts';
import { startTestServer } from './testing/harness.ts';
import type { TestServer } from './testing/harness.ts';
import { rawTls } from './testing/raw-client.ts';
import { readAll, startEchoServer, waitFor } from './testing/tcp.ts';
import type { TestTcpServer } from './testing/tcp.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Frame {
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
  readonly payload: Buffer;
}

/** A raw TLS connection speaking hand-written HTTP/2, recording the frames the server sends. */
interface Abuser {
  readonly socket: TLSSocket;
  readonly frames: Frame[];
  closed: boolean;
  goaway(): Frame | undefined;
  resets(): Frame[];
  /** Writes, resolving when the data was flushed or the socket died. */
  send(data: Buffer): Promise<void>;
}

async function abuser(s: TestServer): Promise<Abuser> {
  const socket = await rawTls(s.port, s.clientIdentity);
  cleanups.push(() => {
    socket.destroy();
  });
  const frames: Frame[] = [];
  let pending = Buffer.alloc(0);
  const state: Abuser = {
    socket,
    frames,
    closed: false,
    goaway: () => frames.find(f => f.type === FrameType.GoAway),
    resets: () => frames.filter(f => f.type === FrameType.RstStream),
    send: data =>
      new Promise(resolve => {
        if (socket.destroyed) {
          resolve();
          return;
        }
        socket.write(data, () => {
          resolve();
        });
      }),
  };
  socket.on('data', (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 9) {
      const length = pending.readUIntBE(0, 3);
      if (pending.length < 9 + length) break;
      frames.push({
        type: pending[3]!,
        flags: pending[4]!,
        streamId: pending.readUInt32BE(5) & 0x7fffffff,
        payload: pending.subarray(9, 9 + length),
      });
      pending = pending.subarray(9 + length);
    }
  });
  socket.on('error', () => undefined);
  socket.on('close', () => {
    state.closed = true;
  });
  await state.send(Buffer.concat([PREFACE, settings()]));
  return state;
}

/** A well-behaved tunnel through the same server: it must keep working during and after abuse. */
async function healthyRoundTrip(
  s: TestServer,
  client: HboneClient,
  echo: TestTcpServer,
  text: string,
): Promise<string> {
  const tunnel = await client.connect({
    target: `127.0.0.1:${echo.port}`,
    nextHop: s.nextHop,
    identity: s.clientIdentity,
    expectedIdentities: [s.serverIdentity.id],
  });
  tunnel.end(text);
  return (await readAll(tunnel)).toString();
}

async function setup(
  options: { keepaliveIntervalMs?: number; keepaliveTimeoutMs?: number } = {},
): Promise<{ s: TestServer; client: HboneClient; echo: TestTcpServer }> {
  const s = await startTestServer(options);
  cleanups.push(() => s.close());
  const echo = await startEchoServer();
  cleanups.push(() => echo.close());
  const client = new HboneClient();
  cleanups.push(() => {
    client.destroy();
  });
  // The healthy session exists before the abuse starts.
  expect(await healthyRoundTrip(s, client, echo, 'before')).toBe('before');
  return { s, client, echo };
}

describe('HboneServer under HTTP/2 abuse', () => {
  it('refuses an oversized header list and keeps serving other sessions', async () => {
    const { s, client, echo } = await setup();
    const bad = await abuser(s);
    const block = headerBlock([
      [':method', 'CONNECT'],
      [':authority', `127.0.0.1:${echo.port}`],
      ['x-padding', 'a'.repeat(70 * 1024)],
    ]);
    await bad.send(Buffer.concat(fragmentedHeaders(1, block, 16 * 1024)));
    await waitFor(
      () => bad.closed || bad.goaway() !== undefined || bad.resets().length > 0,
      10_000,
      'refusal',
    );
    // nghttp2 answers with GOAWAY (COMPRESSION_ERROR) and closes; a RST_STREAM would also do.
    expect(bad.closed || bad.goaway() !== undefined || bad.resets().some(f => f.streamId === 1)).toBe(true);
    expect(s.requests.some(r => 'x-padding' in r.headers)).toBe(false);
    expect(await healthyRoundTrip(s, client, echo, 'after')).toBe('after');
  });

  it('closes a session that floods CONTINUATION frames', async () => {
    const { s, client, echo } = await setup();
    const bad = await abuser(s);
    await bad.send(frame(FrameType.Headers, 0, 1, headerBlock([[':method', 'CONNECT']])));
    const piece = frame(FrameType.Continuation, 0, 1, headerBlock([['x-a', 'b']]));
    for (let i = 0; i < 200 && !bad.closed; i++) {
      await bad.send(Buffer.concat(Array.from({ length: 100 }, () => piece)));
    }
    await waitFor(() => bad.closed || bad.goaway() !== undefined, 10_000, 'session close');
    expect(bad.closed || bad.goaway() !== undefined).toBe(true);
    // Only the healthy request reached the hook.
    expect(s.requests).toHaveLength(1);
    expect(await healthyRoundTrip(s, client, echo, 'after')).toBe('after');
  });

  it('survives a PING flood from a peer that does not read', async () => {
    const { s, client, echo } = await setup();
    const bad = await abuser(s);
    bad.socket.pause();
    const burst = Buffer.concat(Array.from({ length: 1000 }, (_, i) => ping(i)));
    let rounds = 0;
    for (; rounds < 200 && !bad.closed; rounds++) await bad.send(burst);
    bad.socket.resume();
    // The queued PING ACKs exceed nghttp2's outbound limit: the session is torn down.
    await waitFor(() => bad.closed || bad.goaway() !== undefined, 10_000, 'session close');
    expect(rounds).toBeGreaterThan(0);
    expect(await healthyRoundTrip(s, client, echo, 'after')).toBe('after');
  });

  it('survives a SETTINGS flood from a peer that does not read', async () => {
    const { s, client, echo } = await setup();
    const bad = await abuser(s);
    bad.socket.pause();
    const burst = Buffer.concat(Array.from({ length: 1000 }, () => settings([[0x4, 65535]])));
    let rounds = 0;
    for (; rounds < 200 && !bad.closed; rounds++) await bad.send(burst);
    bad.socket.resume();
    await waitFor(() => bad.closed || bad.goaway() !== undefined, 10_000, 'session close');
    expect(rounds).toBeGreaterThan(0);
    expect(await healthyRoundTrip(s, client, echo, 'after')).toBe('after');
  });

  it('survives rapid resets: HEADERS then RST_STREAM, thousands of times', async () => {
    const { s, client, echo } = await setup();
    const bad = await abuser(s);
    let id = 1;
    for (let round = 0; round < 40 && !bad.closed; round++) {
      const burst: Buffer[] = [];
      for (let i = 0; i < 100; i++, id += 2)
        burst.push(connectHeaders(id, `127.0.0.1:${echo.port}`), rstStream(id));
      await bad.send(Buffer.concat(burst));
    }
    await waitFor(() => bad.closed || bad.goaway() !== undefined, 10_000, 'session close');
    // nghttp2's rapid-reset limiter (burst ~1000) ends the session before all 4000 streams ran.
    expect(s.requests.length).toBeLessThan((id - 1) / 2);
    await waitFor(() => s.server.sessionCount === 1, 10_000, 'abusive session gone');
    expect(await healthyRoundTrip(s, client, echo, 'after')).toBe('after');
  });

  it('drops a session that never answers PING, while a responsive one stays', async () => {
    const { s, client, echo } = await setup({ keepaliveIntervalMs: 50, keepaliveTimeoutMs: 150 });
    const silent = await abuser(s); // hand-written frames: it never sends a PING ACK
    await waitFor(() => silent.frames.some(f => f.type === FrameType.Ping), 5000, 'server PING');
    await waitFor(() => silent.closed, 5000, 'silent session dropped');
    expect(s.errors.some(e => isMeshError(e, 'HBONE_KEEPALIVE_TIMEOUT'))).toBe(true);
    // node:http2 answers PINGs by itself, so the healthy client's pooled session survived.
    expect(await healthyRoundTrip(s, client, echo, 'alive')).toBe('alive');
    expect(client.counters.connectionsOpened).toBe(1);
  });
});
