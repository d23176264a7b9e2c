import { WorkloadRequestCodec, WorkloadResponseCodec, ZdsHelloCodec, zds } from '@ambient-mesh/xds-types';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '@ambient-mesh/runtime';
import { ZDS_MAX_MESSAGE, ZdsServer } from './zds-server.ts';
import type { WorkloadSource, ZdsConnectionHandle, ZdsPeer, ZdsWorkload } from './zds-server.ts';

class FakePeer implements ZdsPeer {
  readonly sent: { request: zds.WorkloadRequest; fds: readonly number[]; size: number }[] = [];
  closed = false;
  handle!: ZdsConnectionHandle;
  failSend = false;

  send(data: Uint8Array, fds: readonly number[]): void {
    if (this.failSend) throw new Error('EPIPE');
    this.sent.push({ request: WorkloadRequestCodec.decode(data), fds: [...fds], size: data.length });
  }
  close(): void {
    this.closed = true;
  }
  hello(version: number = zds.Version.V1): void {
    this.handle.receive({
      data: ZdsHelloCodec.encode({ version: version as zds.Version }),
      fds: [],
      truncated: false,
    });
  }
  ack(error = ''): void {
    this.handle.receive({
      data: WorkloadResponseCodec.encode({ ack: { error } }),
      fds: [],
      truncated: false,
    });
  }
  raw(data: Uint8Array, fds: number[] = [], truncated = false): void {
    this.handle.receive({ data, fds, truncated });
  }
  /** What was sent, as short strings: `add:uid(fd)`, `keep:uid`, `del:uid`, `snapshot`. */
  summary(): string[] {
    return this.sent.map(({ request: r, fds }) => {
      if (r.add) return `add:${r.add.uid}(${fds.join(',')})`;
      if (r.keep) return `keep:${r.keep.uid}`;
      if (r.del) return `del:${r.del.uid}`;
      return 'snapshot';
    });
  }
}

class Registry implements WorkloadSource {
  readonly map = new Map<string, ZdsWorkload>();
  put(uid: string, fd: number | null): void {
    this.map.set(uid, {
      uid,
      info: { name: `pod-${uid}`, namespace: 'apps', serviceAccount: 'sa' },
      netnsFd: fd,
    });
  }
  uids(): string[] {
    return [...this.map.keys()];
  }
  lookup(uid: string): ZdsWorkload | undefined {
    return this.map.get(uid);
  }
}

let registry: Registry;
let server: ZdsServer;
let closedFds: number[];

function connect(): FakePeer {
  const peer = new FakePeer();
  peer.handle = server.accept(peer);
  return peer;
}

/** Acks everything currently in flight until the peer has sent `count` messages (bounded). */
function ackUntil(peer: FakePeer, count: number): void {
  for (let i = 0; i < 100 && peer.sent.length <= count; i++) {
    const before = peer.sent.length;
    peer.ack();
    if (peer.sent.length === before) break;
  }
}

beforeEach(() => {
  vi.useFakeTimers();
  registry = new Registry();
  closedFds = [];
  server = new ZdsServer({
    workloads: registry,
    logger: silentLogger(),
    closeFd: fd => closedFds.push(fd),
  });
});
afterEach(() => {
  server.close();
  vi.useRealTimers();
});

describe('ZdsServer snapshot', () => {
  it('sends Add with the fd for open netns, Keep for the others, then SnapshotSent, one at a time', () => {
    registry.put('a', 11);
    registry.put('b', null);
    registry.put('c', 13);
    const peer = connect();
    expect(peer.sent).toHaveLength(0);
    peer.hello();
    expect(peer.summary()).toEqual(['add:a(11)']);
    peer.ack();
    expect(peer.summary()).toEqual(['add:a(11)', 'keep:b']);
    peer.ack();
    peer.ack();
    expect(peer.summary()).toEqual(['add:a(11)', 'keep:b', 'add:c(13)', 'snapshot']);
    expect(peer.sent[0]!.request.add!.workloadInfo).toEqual({
      name: 'pod-a',
      namespace: 'apps',
      serviceAccount: 'sa',
    });
    expect(server.readyCount).toBe(0);
  });

  it('reports the acked, kept and rejected uids once SnapshotSent is acked', () => {
    registry.put('a', 11);
    registry.put('b', null);
    registry.put('c', 13);
    const reports: unknown[] = [];
    server.on('snapshot', r => reports.push(r));
    const peer = connect();
    peer.hello();
    peer.ack();
    peer.ack();
    peer.ack('bind failed');
    expect(reports).toHaveLength(0);
    peer.ack();
    expect(reports).toEqual([
      {
        connection: peer.handle.id,
        added: ['a'],
        kept: ['b'],
        rejected: [{ uid: 'c', error: 'bind failed' }],
      },
    ]);
    expect(server.readyCount).toBe(1);
  });

  it('sends an empty snapshot as a lone SnapshotSent', () => {
    const peer = connect();
    peer.hello();
    expect(peer.summary()).toEqual(['snapshot']);
  });

  it('skips a workload un-enrolled while the snapshot is going out', () => {
    registry.put('a', 11);
    registry.put('b', 12);
    const peer = connect();
    peer.hello();
    registry.map.delete('b');
    peer.ack();
    expect(peer.summary()).toEqual(['add:a(11)', 'snapshot']);
  });

  it('holds Adds and Dels queued before the hello until after the snapshot', async () => {
    registry.put('a', 11);
    const peer = connect();
    const del = server.del('x');
    registry.put('n', 20);
    const add = server.add('n');
    expect(peer.sent).toHaveLength(0);
    peer.hello();
    ackUntil(peer, 4);
    expect(peer.summary()).toEqual(['add:a(11)', 'add:n(20)', 'snapshot', 'del:x', 'add:n(20)']);
    peer.ack();
    await expect(del).resolves.toEqual([{ status: 'acked', connection: peer.handle.id }]);
    await expect(add).resolves.toEqual({ status: 'acked', connection: peer.handle.id });
  });
});

describe('ZdsServer steady state', () => {
  function ready(peer: FakePeer): void {
    peer.hello();
    ackUntil(peer, Number.MAX_SAFE_INTEGER);
  }

  it('answers no-ztunnel when nobody is connected', async () => {
    registry.put('a', 11);
    await expect(server.add('a')).resolves.toEqual({ status: 'no-ztunnel' });
    await expect(server.del('a')).resolves.toEqual([]);
  });

  it('sends Adds to the newest ztunnel only and Dels to all', async () => {
    const old = connect();
    ready(old);
    const newer = connect();
    ready(newer);
    registry.put('p', 30);
    const add = server.add('p');
    expect(newer.summary()).toEqual(['snapshot', 'add:p(30)']);
    expect(old.summary()).toEqual(['snapshot']);
    newer.ack();
    await expect(add).resolves.toEqual({ status: 'acked', connection: newer.handle.id });
    const del = server.del('p');
    expect(old.summary().at(-1)).toBe('del:p');
    expect(newer.summary().at(-1)).toBe('del:p');
    old.ack();
    newer.ack('unknown uid');
    await expect(del).resolves.toEqual([
      { status: 'acked', connection: old.handle.id },
      { status: 'nacked', connection: newer.handle.id, error: 'unknown uid' },
    ]);
  });

  it('reports a NACK and keeps the connection', async () => {
    const peer = connect();
    ready(peer);
    registry.put('p', 30);
    const add = server.add('p');
    peer.ack('failed to bind 15001');
    await expect(add).resolves.toMatchObject({ status: 'nacked', error: 'failed to bind 15001' });
    expect(peer.closed).toBe(false);
    expect(server.connectionCount).toBe(1);
  });

  it('closes a connection whose Ack does not come within 5 s and fails its request', async () => {
    const peer = connect();
    ready(peer);
    registry.put('p', 30);
    const add = server.add('p');
    vi.advanceTimersByTime(4_999);
    expect(peer.closed).toBe(false);
    vi.advanceTimersByTime(1);
    expect(peer.closed).toBe(true);
    await expect(add).resolves.toMatchObject({ status: 'failed' });
    expect(server.connectionCount).toBe(0);
  });

  it('closes a connection that sends no hello within 5 s', () => {
    const peer = connect();
    vi.advanceTimersByTime(5_000);
    expect(peer.closed).toBe(true);
    expect(server.connectionCount).toBe(0);
  });

  it('fails a workload whose Add would not fit in 1 KiB without sending it', async () => {
    const peer = connect();
    ready(peer);
    registry.map.set('big', {
      uid: 'big',
      info: { name: 'x'.repeat(ZDS_MAX_MESSAGE), namespace: 'apps', serviceAccount: 'sa' },
      netnsFd: 9,
    });
    await expect(server.add('big')).resolves.toMatchObject({
      status: 'failed',
      error: expect.stringMatching(/1024/),
    });
    expect(peer.summary()).toEqual(['snapshot']);
    expect(peer.closed).toBe(false);
  });

  it('fails pending requests when the ztunnel disconnects', async () => {
    const peer = connect();
    ready(peer);
    registry.put('p', 30);
    const add = server.add('p');
    const disconnected: number[] = [];
    server.on('disconnected', id => disconnected.push(id));
    peer.handle.closed('EOF');
    await expect(add).resolves.toMatchObject({ status: 'failed', error: expect.stringMatching(/EOF/) });
    expect(disconnected).toEqual([peer.handle.id]);
  });

  it('keeps every message of a 20-pod snapshot under 1 KiB', () => {
    for (let i = 0; i < 20; i++)
      registry.put(`0b8f2d6e-3c1a-4f5e-9d7c-${String(i).padStart(12, '0')}`, 100 + i);
    const peer = connect();
    ready(peer);
    expect(peer.sent).toHaveLength(21);
    expect(Math.max(...peer.sent.map(s => s.size))).toBeLessThan(ZDS_MAX_MESSAGE);
  });
});

describe('ZdsServer bad ztunnels', () => {
  const garbage: { name: string; send: (p: FakePeer) => void; helloFirst: boolean }[] = [
    {
      name: 'bytes that are not a hello',
      send: p => {
        p.raw(Buffer.from([0xff, 0xff, 0xff]));
      },
      helloFirst: false,
    },
    {
      name: 'a hello with version NOT_USED',
      send: p => {
        p.hello(0);
      },
      helloFirst: false,
    },
    {
      name: 'an unsolicited message after the snapshot',
      send: p => {
        p.ack();
      },
      helloFirst: true,
    },
    {
      name: 'a truncated record',
      send: p => {
        p.raw(Buffer.alloc(8), [], true);
      },
      helloFirst: false,
    },
    {
      name: 'file descriptors',
      send: p => {
        p.raw(WorkloadResponseCodec.encode({ ack: {} }), [77]);
      },
      helloFirst: true,
    },
  ];
  for (const g of garbage) {
    it(`disconnects a ztunnel sending ${g.name} without affecting another`, async () => {
      const good = connect();
      good.hello();
      good.ack();
      const bad = connect();
      if (g.helloFirst) {
        bad.hello();
        bad.ack();
      }
      g.send(bad);
      expect(bad.closed).toBe(true);
      expect(good.closed).toBe(false);
      expect(server.connectionCount).toBe(1);
      registry.put('p', 40);
      const add = server.add('p');
      expect(good.summary().at(-1)).toBe('add:p(40)');
      good.ack();
      await expect(add).resolves.toEqual({ status: 'acked', connection: good.handle.id });
    });
  }

  it('closes fds a ztunnel sends', () => {
    const peer = connect();
    peer.raw(Buffer.from([0x08, 0x01]), [55, 56]);
    expect(closedFds).toEqual([55, 56]);
    expect(peer.closed).toBe(true);
  });

  it('disconnects a ztunnel answering with a response that is not an Ack', () => {
    const peer = connect();
    peer.hello();
    peer.raw(Buffer.from([0x12, 0x00]));
    expect(peer.closed).toBe(true);
  });

  it('disconnects when a send fails', async () => {
    const peer = connect();
    peer.hello();
    peer.ack();
    peer.failSend = true;
    registry.put('p', 40);
    await expect(server.add('p')).resolves.toMatchObject({
      status: 'failed',
      error: expect.stringMatching(/EPIPE/),
    });
    expect(peer.closed).toBe(true);
  });
});
