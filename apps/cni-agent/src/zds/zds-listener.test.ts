import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SeqpacketSocket, closeFd, netnsInode, openNetns } from '@ambient-mesh/netns';
import type { SeqpacketMessage } from '@ambient-mesh/netns';
import { WorkloadRequestCodec, WorkloadResponseCodec, ZdsHelloCodec, zds } from '@ambient-mesh/xds-types';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '@ambient-mesh/runtime';
import { listenZds } from './zds-listener.ts';
import { ZdsServer } from './zds-server.ts';
import type { ZdsWorkload } from './zds-server.ts';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

/** A ztunnel stand-in on a real SEQPACKET socket that queues what it receives. */
class FakeZtunnel {
  readonly socket: SeqpacketSocket;
  readonly inbox: SeqpacketMessage[] = [];
  #waiters: (() => void)[] = [];
  closed = false;

  constructor(path: string) {
    this.socket = SeqpacketSocket.connect(path, { maxMessageSize: 1024 });
    this.socket.on('message', m => {
      this.inbox.push(m);
      for (const w of this.#waiters.splice(0)) w();
    });
    this.socket.on('close', () => {
      this.closed = true;
      for (const w of this.#waiters.splice(0)) w();
    });
    cleanups.push(() => {
      this.socket.close();
    });
  }

  /** Resolves on the next message or close event, or after `ms` (the caller's deadline). */
  #event(ms: number): Promise<void> {
    return new Promise<void>(resolve => {
      const timer = setTimeout(resolve, ms);
      this.#waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  async next(): Promise<{ request: zds.WorkloadRequest; fds: readonly number[] }> {
    const deadline = Date.now() + 5_000;
    while (this.inbox.length === 0) {
      if (this.closed) throw new Error('closed');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no message within 5 s');
      await this.#event(left);
    }
    const m = this.inbox.shift()!;
    return { request: WorkloadRequestCodec.decode(m.data), fds: m.fds };
  }

  async untilClosed(): Promise<void> {
    const deadline = Date.now() + 5_000;
    while (!this.closed && Date.now() < deadline) await this.#event(deadline - Date.now());
  }

  hello(): void {
    this.socket.send(ZdsHelloCodec.encode({ version: zds.Version.V1 }));
  }
  ack(): void {
    this.socket.send(WorkloadResponseCodec.encode({ ack: {} }));
  }
}

function setup(): { path: string; server: ZdsServer; workloads: Map<string, ZdsWorkload> } {
  const dir = mkdtempSync(join(tmpdir(), 'cni-zds-'));
  cleanups.push(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const workloads = new Map<string, ZdsWorkload>();
  const server = new ZdsServer({
    workloads: { uids: () => [...workloads.keys()], lookup: uid => workloads.get(uid) },
    logger: silentLogger(),
    closeFd,
  });
  cleanups.push(() => {
    server.close();
  });
  const path = join(dir, 'ztunnel.sock');
  const listener = listenZds(path, server, silentLogger());
  cleanups.push(() => {
    listener.close();
  });
  return { path, server, workloads };
}

describe('ZDS over SOCK_SEQPACKET', () => {
  it('delivers the snapshot Add with a usable netns fd to a real peer', async () => {
    const { path, workloads } = setup();
    const nsFd = openNetns('/proc/self/ns/net');
    cleanups.push(() => {
      closeFd(nsFd);
    });
    workloads.set('pod-uid-1', {
      uid: 'pod-uid-1',
      info: { name: 'a', namespace: 'apps', serviceAccount: 'sa' },
      netnsFd: nsFd,
    });
    const zt = new FakeZtunnel(path);
    zt.hello();
    const add = await zt.next();
    expect(add.request.add?.uid).toBe('pod-uid-1');
    expect(add.fds).toHaveLength(1);
    expect(netnsInode(add.fds[0]!)).toBe(netnsInode(nsFd));
    closeFd(add.fds[0]!);
    zt.ack();
    const sent = await zt.next();
    expect(sent.request.payload).toBe('snapshotSent');
    expect(sent.fds).toHaveLength(0);
  });

  it('disconnects a garbage-speaking ztunnel while a well-behaved one keeps working', async () => {
    const { path, server, workloads } = setup();
    const good = new FakeZtunnel(path);
    good.hello();
    expect((await good.next()).request.payload).toBe('snapshotSent');
    good.ack();
    const bad = new FakeZtunnel(path);
    bad.socket.send(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    await bad.untilClosed();
    expect(bad.closed).toBe(true);
    const nsFd = openNetns('/proc/self/ns/net');
    cleanups.push(() => {
      closeFd(nsFd);
    });
    workloads.set('p2', {
      uid: 'p2',
      info: { name: 'b', namespace: 'apps', serviceAccount: 'sa' },
      netnsFd: nsFd,
    });
    const result = server.add('p2');
    const add = await good.next();
    expect(add.request.add?.uid).toBe('p2');
    for (const fd of add.fds) closeFd(fd);
    good.ack();
    await expect(result).resolves.toMatchObject({ status: 'acked' });
    expect(server.connectionCount).toBe(1);
  });
});
