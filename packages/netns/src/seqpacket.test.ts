import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { SocketClosedError, SyscallError } from './errors.ts';
import { closeFd, netnsInode, openNetns } from './netns-handle.ts';
import { SeqpacketServer, SeqpacketSocket } from './seqpacket.ts';
import type { SeqpacketMessage } from './seqpacket.ts';
import { nextEvent } from './testing/wait-for.ts';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const fn of cleanups.splice(0).reverse()) fn();
});

function pair(maxMessageSize?: number): [SeqpacketSocket, SeqpacketSocket] {
  const sockets = SeqpacketSocket.pair(maxMessageSize === undefined ? {} : { maxMessageSize });
  cleanups.push(() => {
    sockets[0].close();
    sockets[1].close();
  });
  return sockets;
}

/** Collects `n` messages, bounded by a deadline. */
async function collect(socket: SeqpacketSocket, n: number): Promise<SeqpacketMessage[]> {
  const got: SeqpacketMessage[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`only ${got.length}/${n} messages arrived`));
    }, 5_000);
    socket.on('message', m => {
      got.push(m);
      if (got.length === n) {
        clearTimeout(timer);
        resolve(got);
      }
    });
  });
}

describe('SeqpacketSocket', () => {
  it('keeps record boundaries and carries an fd with SCM_RIGHTS', async () => {
    const [a, b] = pair();
    const nsFd = openNetns(process.pid);
    cleanups.push(() => {
      closeFd(nsFd);
    });
    const messages = collect(b, 3);
    a.send(Buffer.from('add'), [nsFd]);
    a.send(Buffer.from('keep'));
    a.send(new Uint8Array([1, 2, 3]));
    const [first, second, third] = await messages;
    expect(first?.data.toString()).toBe('add');
    expect(first?.fds).toHaveLength(1);
    expect(netnsInode(first!.fds[0]!)).toBe(netnsInode(nsFd));
    closeFd(first!.fds[0]!);
    expect(second?.data.toString()).toBe('keep');
    expect(second?.fds).toEqual([]);
    expect([...third!.data]).toEqual([1, 2, 3]);
  });

  it('drains every queued record in one wake-up and flags a record longer than the buffer', async () => {
    const [a, b] = pair(1024);
    for (let i = 0; i < 50; i++) a.send(Buffer.from(`m${i}`));
    a.send(Buffer.alloc(3000, 7));
    const got = await collect(b, 51);
    expect(got.slice(0, 50).map(m => m.data.toString())).toEqual(
      Array.from({ length: 50 }, (_, i) => `m${i}`),
    );
    expect(got[50]).toMatchObject({ truncated: true, size: 3000 });
    expect(got[50]?.data).toHaveLength(1024);
  });

  it('closes received fds when nobody listens for messages', async () => {
    const [a, b] = pair();
    // Pass one end of another pair; once every copy of it is closed, its peer sees end of stream.
    const [carried, witness] = pair();
    a.send(Buffer.from('x'), [carried.fd]);
    carried.close();
    expect(b.listenerCount('message')).toBe(0);
    await nextEvent(witness, 'close');
    expect(witness.closed).toBe(true);
  });

  it('reports the peer process as the kernel recorded it (SO_PEERCRED), and refuses after close', () => {
    const [a, b] = SeqpacketSocket.pair();
    const creds = a.peerCredentials();
    expect(creds).toEqual({ pid: process.pid, uid: process.getuid?.(), gid: process.getgid?.() });
    a.close();
    b.close();
    expect(() => a.peerCredentials()).toThrow(SocketClosedError);
  });

  it('emits close on the peer at end of stream and refuses to send afterwards', async () => {
    const [a, b] = pair();
    const closed = nextEvent(b, 'close');
    a.close();
    await closed;
    expect(b.closed).toBe(true);
    expect(() => {
      b.send(Buffer.from('late'));
    }).toThrow(SocketClosedError);
  });

  it('reports a send to a vanished peer as SyscallError', () => {
    const [a, b] = pair();
    b.close();
    let caught: unknown;
    try {
      a.send(Buffer.from('x'));
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(SyscallError);
    expect(['EPIPE', 'ECONNRESET', 'ENOTCONN']).toContain((caught as SyscallError).errnoCode);
  });
});

describe('SeqpacketServer', () => {
  it('accepts clients on a path and exchanges records both ways', async () => {
    const path = join(tmpdir(), `ambient-seqpacket-${process.pid}-${Date.now()}.sock`);
    const server = SeqpacketServer.listen(path);
    cleanups.push(() => {
      server.close();
    });
    const accepted = nextEvent<[SeqpacketSocket]>(server, 'connection');
    const client = SeqpacketSocket.connect(path);
    cleanups.push(() => {
      client.close();
    });
    const [conn] = await accepted;
    cleanups.push(() => {
      conn.close();
    });
    const fromClient = collect(conn, 1);
    client.send(Buffer.from([0x08, 0x01]));
    expect([...(await fromClient)[0]!.data]).toEqual([0x08, 0x01]);
    const fromServer = collect(client, 1);
    conn.send(Buffer.from([0x0a, 0x00]));
    expect([...(await fromServer)[0]!.data]).toEqual([0x0a, 0x00]);
  });

  it('surfaces an exception thrown by a message listener as an uncaught exception', async () => {
    const path = join(tmpdir(), `ambient-seqpacket-throw-${process.pid}-${Date.now()}.sock`);
    const server = SeqpacketServer.listen(path);
    cleanups.push(() => {
      server.close();
    });
    const accepted = nextEvent<[SeqpacketSocket]>(server, 'connection');
    const child = spawn(
      process.execPath,
      [
        '--conditions=@ambient-mesh/source',
        fileURLToPath(new URL('testing/seqpacket-child.ts', import.meta.url)),
        'throw',
        path,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    cleanups.push(() => child.kill());
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const [conn] = await accepted;
    cleanups.push(() => {
      conn.close();
    });
    await collect(conn, 1);
    conn.send(Buffer.from('boom'));
    const [code] = await nextEvent<[number]>(child, 'exit', 15_000);
    expect(stdout).toContain('surfaced:handler failed');
    expect(code).toBe(0);
  });
});
