import { describe, expect, it } from 'vitest';
import { WorkloadStateManager } from './state-manager.ts';
import type { NetnsHandle, RunningProxy, WorkloadInfo, WorkloadProxyFactory } from './state-manager.ts';

interface FakeNetns extends NetnsHandle {
  closed: boolean;
}

function netns(inode: string): FakeNetns {
  const handle = {
    inode,
    fd: -1,
    closed: false,
    close() {
      handle.closed = true;
    },
  };
  return handle;
}

const INFO: WorkloadInfo = { name: 'pod-a', namespace: 'default', serviceAccount: 'sa-a' };

class FakeFactory implements WorkloadProxyFactory {
  readonly started: string[] = [];
  readonly drained: string[] = [];
  failuresLeft = 0;

  start(uid: string, _info: WorkloadInfo, ns: NetnsHandle): Promise<RunningProxy> {
    if (this.failuresLeft > 0) {
      this.failuresLeft -= 1;
      return Promise.reject(new Error('bind failed'));
    }
    this.started.push(`${uid}@${ns.inode}`);
    return Promise.resolve({
      drain: () => {
        this.drained.push(`${uid}@${ns.inode}`);
        return Promise.resolve();
      },
    });
  }
}

function setup(): { manager: WorkloadStateManager; factory: FakeFactory; readiness: boolean[] } {
  const factory = new FakeFactory();
  const readiness: boolean[] = [];
  const manager = new WorkloadStateManager(factory, { readinessChanged: ready => readiness.push(ready) });
  manager.connectionOpened();
  return { manager, factory, readiness };
}

describe('WorkloadStateManager', () => {
  it('becomes ready only after SnapshotSent with nothing pending, and unready on disconnect', async () => {
    const { manager, readiness } = setup();
    expect(await manager.handle({ kind: 'add', uid: 'u1', info: INFO, netns: netns('1') })).toEqual({
      ack: true,
    });
    expect(manager.ready).toBe(false);
    expect(await manager.handle({ kind: 'snapshot-sent' })).toEqual({ ack: true });
    expect(manager.ready).toBe(true);
    manager.connectionClosed();
    expect(readiness).toEqual([true, false]);
  });

  it('treats an Add with the same netns inode as a no-op and closes the duplicate handle', async () => {
    const { manager, factory } = setup();
    const first = netns('42');
    const second = netns('42');
    await manager.handle({ kind: 'add', uid: 'u1', info: INFO, netns: first });
    expect(await manager.handle({ kind: 'add', uid: 'u1', info: INFO, netns: second })).toEqual({
      ack: true,
    });
    expect(factory.started).toEqual(['u1@42']);
    expect(second.closed).toBe(true);
    expect(first.closed).toBe(false);
  });

  it('drains the old proxy and starts a new one when the netns inode changes', async () => {
    const { manager, factory } = setup();
    const old = netns('1');
    await manager.handle({ kind: 'add', uid: 'u1', info: INFO, netns: old });
    await manager.handle({ kind: 'add', uid: 'u1', info: INFO, netns: netns('2') });
    expect(factory.drained).toEqual(['u1@1']);
    expect(factory.started).toEqual(['u1@1', 'u1@2']);
    expect(old.closed).toBe(true);
  });

  it('drains proxies not named by Add or Keep in the snapshot', async () => {
    const { manager, factory } = setup();
    await manager.handle({ kind: 'add', uid: 'gone', info: INFO, netns: netns('1') });
    await manager.handle({ kind: 'add', uid: 'kept', info: INFO, netns: netns('2') });
    await manager.handle({ kind: 'snapshot-sent' });
    // CNI restarts: a new connection whose snapshot only keeps one pod.
    manager.connectionOpened();
    expect(manager.ready).toBe(false);
    await manager.handle({ kind: 'keep', uid: 'kept' });
    await manager.handle({ kind: 'snapshot-sent' });
    expect(factory.drained).toEqual(['gone@1']);
    expect(Object.keys(manager.workloadState())).toEqual(['kept']);
    expect(manager.ready).toBe(true);
  });

  it('removes a pod deleted before the snapshot completes from the snapshot set', async () => {
    const { manager, factory } = setup();
    await manager.handle({ kind: 'add', uid: 'u1', info: INFO, netns: netns('1') });
    await manager.handle({ kind: 'del', uid: 'u1' });
    await manager.handle({ kind: 'snapshot-sent' });
    expect(factory.drained).toEqual(['u1@1']);
    expect(manager.workloadState()).toEqual({});
  });

  it('answers protocol errors with a fatal NACK', async () => {
    const { manager } = setup();
    const orphan = netns('9');
    expect(await manager.handle({ kind: 'add', uid: 'u1', info: undefined, netns: orphan })).toMatchObject({
      ack: false,
      fatal: true,
    });
    expect(orphan.closed).toBe(true);
    await manager.handle({ kind: 'snapshot-sent' });
    expect(await manager.handle({ kind: 'keep', uid: 'u1' })).toMatchObject({ ack: false, fatal: true });
    expect(await manager.handle({ kind: 'snapshot-sent' })).toMatchObject({
      ack: false,
      fatal: true,
      error: 'a second SnapshotSent on one connection',
    });
  });

  it('NACKs a failed start without dropping the connection, then retries the pending proxy', async () => {
    const { manager, factory } = setup();
    factory.failuresLeft = 1;
    const reply = await manager.handle({ kind: 'add', uid: 'u1', info: INFO, netns: netns('1') });
    expect(reply).toEqual({
      ack: false,
      fatal: false,
      error: 'failed to start the proxy for default/pod-a: bind failed',
    });
    await manager.handle({ kind: 'snapshot-sent' });
    expect(manager.pendingCount).toBe(1);
    expect(manager.ready).toBe(false);
    expect(manager.workloadState().u1?.state).toBe('Pending');
    expect(await manager.retryPending()).toBe(0);
    expect(manager.workloadState().u1).toEqual({ info: INFO, state: 'Up' });
    expect(manager.ready).toBe(true);
    expect(manager.activeCount).toBe(1);
  });

  it('drains everything on shutdown and closes the netns handles', async () => {
    const { manager, factory } = setup();
    const handle = netns('1');
    await manager.handle({ kind: 'add', uid: 'u1', info: INFO, netns: handle });
    await manager.drainAll();
    expect(factory.drained).toEqual(['u1@1']);
    expect(handle.closed).toBe(true);
  });
});
