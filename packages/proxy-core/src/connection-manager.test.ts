import { once } from 'node:events';
import { createServer, connect as netConnect } from 'node:net';
import type { Server, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ConnectionManager, idleClosure } from './connection-manager.ts';
import type { ConnectionAddresses, ConnectionOutcome, ConnectionSink } from './connection-sink.ts';
import type { PolicyVerdict } from './policy-check.ts';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Conn {
  readonly name: string;
}

/** Records every sink call in order. */
function recordingSink(): ConnectionSink<Conn> & {
  readonly events: (
    | { kind: 'opened'; name: string }
    | { kind: 'completed'; name: string; outcome: ConnectionOutcome }
    | { kind: 'failed'; addresses: ConnectionAddresses; error: string }
  )[];
  completed(conn: Conn, outcome: ConnectionOutcome): void;
} {
  const events: ReturnType<typeof recordingSink>['events'] = [];
  return {
    events,
    opened: conn => events.push({ kind: 'opened', name: conn.name }),
    completed: (conn, outcome) => events.push({ kind: 'completed', name: conn.name, outcome }),
    failed: (addresses, error) => events.push({ kind: 'failed', addresses, error }),
  };
}

async function waitFor(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise(resolve => setImmediate(resolve));
  }
}

/** A connected TCP pair on loopback (both half-open), cleaned up after the test. */
async function socketPair(): Promise<[Socket, Socket]> {
  const server: Server = createServer({ allowHalfOpen: true });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise(resolve => server.close(resolve)));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const client = netConnect({ host: '127.0.0.1', port: address.port, allowHalfOpen: true });
  await once(client, 'connect');
  const [peer] = await accepted;
  for (const s of [client, peer]) {
    s.on('error', () => undefined);
    cleanups.push(() => s.destroy());
  }
  return [client, peer];
}

function manager(options: { authorize?: (ctx: string) => PolicyVerdict; idleTimeoutMs?: number } = {}) {
  const sink = recordingSink();
  let clock = 1_000;
  const connections = new ConnectionManager<Conn, string>({
    sink,
    now: () => clock,
    ...(options.authorize === undefined ? {} : { authorize: options.authorize }),
    ...(options.idleTimeoutMs === undefined ? {} : { idleTimeoutMs: options.idleTimeoutMs }),
  });
  return {
    sink,
    connections,
    advance: (ms: number) => {
      clock += ms;
    },
  };
}

describe('ConnectionManager: one completion path', () => {
  it('reports a relayed connection opened once and completed once, with bytes from the client side', async () => {
    const { sink, connections, advance } = manager();
    const [client, peer] = await socketPair();
    const [upstream, app] = await socketPair();
    const done = connections.relay({ name: 'a' }, { client: peer, upstream, started: 1_000 });
    expect(connections.size).toBe(1);
    expect(sink.events).toEqual([{ kind: 'opened', name: 'a' }]);
    let request = '';
    app.on('data', chunk => {
      request += String(chunk);
      if (request === 'hello') app.end('hi!');
    });
    client.resume();
    client.end('hello'); // 5 bytes from the client; 3 come back
    advance(250);
    await done;
    expect(connections.size).toBe(0);
    const completed = sink.events.filter(e => e.kind === 'completed');
    expect(completed).toHaveLength(1);
    expect(completed[0]).toMatchObject({
      name: 'a',
      outcome: { durationMs: 250, error: undefined, refused: undefined },
    });
    expect(completed[0]).toMatchObject({ outcome: { fromClient: 5, toClient: 3 } });
  });

  it('closes a relayed and an adopted connection idle for idleTimeoutMs, reporting why', async () => {
    const { sink, connections } = manager({ idleTimeoutMs: 200 });
    const [client, peer] = await socketPair();
    const [upstream] = await socketPair();
    const relayed = connections.relay({ name: 'relayed' }, { client: peer, upstream, started: 1_000 });
    const [, adoptedUpstream] = await socketPair();
    connections.adopt({ name: 'adopted' }, { upstream: adoptedUpstream, started: 1_000 });
    client.resume();
    await relayed;
    await waitFor(() => connections.size === 0, 'both idle connections to end');
    const errors = sink.events.flatMap(e => (e.kind === 'completed' ? [[e.name, e.outcome.error]] : []));
    expect(errors.sort()).toEqual([
      ['adopted', idleClosure(200)],
      ['relayed', idleClosure(200)],
    ]);
  });

  it('reports a refused connection once, as completed with its flag and no bytes, never as opened', () => {
    const { sink, connections, advance } = manager();
    advance(40);
    connections.refuse({ name: 'r' }, 1_000, 'DENY', 'policy rejection: denied (ns/deny)');
    expect(sink.events).toEqual([
      {
        kind: 'completed',
        name: 'r',
        outcome: {
          fromClient: 0,
          toClient: 0,
          durationMs: 40,
          error: 'policy rejection: denied (ns/deny)',
          refused: 'DENY',
        },
      },
    ]);
    expect(connections.size).toBe(0);
  });

  it('reports an adopted upstream socket when it closes, counting its bytes, exactly once', async () => {
    const { sink, connections } = manager();
    const [upstream, app] = await socketPair();
    connections.adopt({ name: 'h' }, { upstream, started: 1_000 });
    expect(sink.events).toEqual([{ kind: 'opened', name: 'h' }]);
    upstream.write('request!'); // 8 bytes to the app (from the client)
    let got = '';
    app.on('data', chunk => {
      got += String(chunk);
      if (got === 'request!') app.end('resp'); // 4 bytes back
    });
    upstream.on('data', () => upstream.end());
    upstream.resume();
    await waitFor(() => sink.events.some(e => e.kind === 'completed'), 'completion');
    upstream.destroy();
    await new Promise(resolve => setImmediate(resolve));
    const completed = sink.events.filter(e => e.kind === 'completed');
    expect(completed).toEqual([
      {
        kind: 'completed',
        name: 'h',
        outcome: { fromClient: 8, toClient: 4, durationMs: 0, error: undefined, refused: undefined },
      },
    ]);
  });

  it('passes early failures to the sink unchanged', () => {
    const { sink, connections } = manager();
    connections.failed(
      { src: '10.0.0.1:1', dst: 'unknown', direction: 'outbound' },
      'no original destination',
    );
    expect(sink.events).toEqual([
      {
        kind: 'failed',
        addresses: { src: '10.0.0.1:1', dst: 'unknown', direction: 'outbound' },
        error: 'no original destination',
      },
    ]);
  });
});

describe('ConnectionManager: policy re-evaluation', () => {
  it('closes the tracked connections a policy now denies, with the policy in the error', async () => {
    const deny: { port?: string } = {};
    const { sink, connections } = manager({
      authorize: ctx =>
        ctx === deny.port
          ? { allowed: false, reason: 'denied', policy: 'default/deny-8080' }
          : { allowed: true, reason: 'no-policies' },
    });
    const [, peerA] = await socketPair();
    const [upA] = await socketPair();
    const [, peerB] = await socketPair();
    const [upB] = await socketPair();
    const [, peerC] = await socketPair();
    const [upC] = await socketPair();
    const relayA = connections.relay(
      { name: 'a' },
      { client: peerA, upstream: upA, started: 1_000, policy: '8080' },
    );
    const relayB = connections.relay(
      { name: 'b' },
      { client: peerB, upstream: upB, started: 1_000, policy: '9090' },
    );
    // Without a policy context (outbound): never re-checked.
    const relayC = connections.relay({ name: 'c' }, { client: peerC, upstream: upC, started: 1_000 });
    expect(connections.reevaluate()).toBe(0);
    deny.port = '8080';
    expect(connections.reevaluate()).toBe(1);
    await relayA;
    expect(connections.size).toBe(2);
    const completed = sink.events.filter(e => e.kind === 'completed');
    expect(completed).toEqual([
      expect.objectContaining({
        name: 'a',
        outcome: expect.objectContaining({
          error: 'connection closed due to policy change (default/deny-8080)',
        }) as unknown,
      }),
    ]);
    connections.closeAll('test over');
    await Promise.all([relayB, relayC]);
    expect(sink.events.filter(e => e.kind === 'completed')).toHaveLength(3);
  });

  it('allows everything without a policy check', () => {
    const { connections } = manager();
    expect(connections.authorize('anything').allowed).toBe(true);
  });
});

describe('ConnectionManager: drain', () => {
  it('resolves drained once every tracked connection ended before the deadline', async () => {
    const { sink, connections } = manager();
    const [client, peer] = await socketPair();
    const [upstream, app] = await socketPair();
    const relayed = connections.relay({ name: 'a' }, { client: peer, upstream, started: 1_000 });
    const drained = connections.drain({ deadline: new Promise(() => undefined), reason: 'shutting down' });
    client.end();
    app.on('end', () => app.end());
    app.resume();
    client.resume();
    expect(await drained).toBe('drained');
    await relayed;
    const completed = sink.events.filter(e => e.kind === 'completed');
    expect(completed).toHaveLength(1);
    expect(completed[0]).toMatchObject({ outcome: { error: undefined } });
  });

  it('closes the tracked connections still open at the deadline, reporting the reason once each', async () => {
    const { sink, connections } = manager();
    const [, peerA] = await socketPair();
    const [upA] = await socketPair();
    const relayed = connections.relay({ name: 'a' }, { client: peerA, upstream: upA, started: 1_000 });
    const [upB] = await socketPair();
    connections.adopt({ name: 'b' }, { upstream: upB, started: 1_000 });
    let expire: () => void = () => undefined;
    const deadline = new Promise<void>(resolve => (expire = resolve));
    const drained = connections.drain({ deadline, reason: 'ztunnel is shutting down' });
    expect(connections.size).toBe(2);
    expire();
    expect(await drained).toBe('timeout');
    await relayed;
    await waitFor(() => connections.size === 0, 'both connections to end');
    const completed = sink.events.filter(e => e.kind === 'completed');
    expect(completed.map(e => e.name).sort()).toEqual(['a', 'b']);
    for (const event of completed)
      expect(event).toMatchObject({ outcome: { error: 'ztunnel is shutting down' } });
  });

  it('aborts pending waits when it begins, and fails later ones at once', async () => {
    const { sink, connections } = manager();
    const [client] = await socketPair();
    const addresses = { src: '10.0.0.1:1', dst: '10.0.0.2:80', direction: 'inbound' } as const;
    const waiting = connections.pending(
      client,
      addresses,
      signal =>
        new Promise<string>((_, reject) => {
          signal.addEventListener(
            'abort',
            () => {
              reject(signal.reason as Error);
            },
            { once: true },
          );
        }),
    );
    const drained = connections.drain({ deadline: new Promise(() => undefined), reason: 'x' });
    expect(await waiting).toBeUndefined();
    expect(client.destroyed).toBe(true);
    expect(await drained).toBe('drained');
    const [late] = await socketPair();
    expect(await connections.pending(late, addresses, () => Promise.resolve('never'))).toBeUndefined();
    expect(sink.events).toEqual([
      { kind: 'failed', addresses, error: 'the proxy is draining' },
      { kind: 'failed', addresses, error: 'the proxy is draining' },
    ]);
  });

  it('gives a pending wait its value, and fails it when the client leaves', async () => {
    const { sink, connections } = manager();
    const [client] = await socketPair();
    const addresses = { src: 'a', dst: 'b', direction: 'outbound' } as const;
    expect(await connections.pending(client, addresses, () => Promise.resolve(42))).toBe(42);
    const waiting = connections.pending(
      client,
      addresses,
      signal =>
        new Promise<number>((_, reject) => {
          signal.addEventListener(
            'abort',
            () => {
              reject(signal.reason as Error);
            },
            { once: true },
          );
        }),
    );
    client.destroy();
    expect(await waiting).toBeUndefined();
    expect(sink.events).toEqual([
      { kind: 'failed', addresses, error: 'the client closed while waiting for the workload state' },
    ]);
  });
});
