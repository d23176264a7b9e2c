import { afterEach, describe, expect, it } from 'vitest';
import { WorkloadRequestCodec, WorkloadResponseCodec } from '@ambient-mesh/xds-types';
import type { zds } from '@ambient-mesh/xds-types';
import { captureLogs } from '@ambient-mesh/runtime/testing';
import { waitFor } from '../testing/wait.ts';
import { WorkloadStateManager } from './state-manager.ts';
import type { NetnsHandle, WorkloadInfo } from './state-manager.ts';
import { ZdsClient } from './zds-client.ts';
import type { ZdsConnection, ZdsConnector, ZdsMessage } from './zds-client.ts';

const cleanups: (() => unknown)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

/** An in-memory connector: the test plays the CNI agent. */
class FakeConnector implements ZdsConnector {
  readonly connections: FakeConnection[] = [];
  readonly closedFds: number[] = [];

  connect(): ZdsConnection {
    const connection = new FakeConnection();
    this.connections.push(connection);
    return connection;
  }

  netns(fd: number): NetnsHandle {
    return { inode: `ino-${fd}`, fd, close: () => this.closedFds.push(fd) };
  }

  closeFd(fd: number): void {
    this.closedFds.push(fd);
  }
}

class FakeConnection implements ZdsConnection {
  readonly sent: Uint8Array[] = [];
  closed = false;
  #onMessage: ((message: ZdsMessage) => void) | undefined;
  #onClose: ((err?: Error) => void) | undefined;

  send(data: Uint8Array): void {
    this.sent.push(data);
  }
  onMessage(listener: (message: ZdsMessage) => void): void {
    this.#onMessage = listener;
  }
  onClose(listener: (err?: Error) => void): void {
    this.#onClose = listener;
  }
  close(): void {
    this.closed = true;
  }
  deliver(request: zds.WorkloadRequestInit, fds: number[] = [], data?: Buffer): void {
    this.#onMessage?.({
      data: data ?? Buffer.from(WorkloadRequestCodec.encode(request)),
      fds,
      truncated: false,
    });
  }
  hangUp(): void {
    this.#onClose?.();
  }
  replies(): string[] {
    return this.sent.slice(1).map(bytes => WorkloadResponseCodec.decode(bytes).ack?.error ?? '<none>');
  }
}

const INFO: zds.WorkloadInfoInit = { name: 'pod-a', namespace: 'default', serviceAccount: 'sa-a' };

function setup(): {
  connector: FakeConnector;
  manager: WorkloadStateManager;
  started: string[];
  client: ZdsClient;
} {
  const connector = new FakeConnector();
  const started: string[] = [];
  const manager = new WorkloadStateManager({
    start: (uid: string, _info: WorkloadInfo, netns: NetnsHandle) => {
      started.push(`${uid}@${netns.inode}`);
      return Promise.resolve({ drain: () => Promise.resolve() });
    },
  });
  const client = new ZdsClient({
    path: '/unused',
    connector,
    manager,
    logger: captureLogs().logs.for('zds'),
  });
  cleanups.push(() => {
    client.stop();
  });
  client.start();
  return { connector, manager, started, client };
}

describe('ZdsClient', () => {
  it('sends the bare hello 08 01 first', () => {
    const { connector } = setup();
    expect(Buffer.from(connector.connections[0]?.sent[0] ?? []).toString('hex')).toBe('0801');
  });

  it('answers each request with one Ack in order and becomes ready after the snapshot', async () => {
    const { connector, manager, started } = setup();
    const conn = connector.connections[0]!;
    conn.deliver({ add: { uid: 'u1', workloadInfo: INFO } }, [7]);
    conn.deliver({ keep: { uid: 'u2' } });
    conn.deliver({ snapshotSent: {} });
    await waitFor(() => conn.sent.length === 4, 'three replies');
    expect(conn.replies()).toEqual(['', '', '']);
    expect(Buffer.from(conn.sent[1] ?? []).toString('hex')).toBe('0a00');
    expect(started).toEqual(['u1@ino-7']);
    expect(manager.ready).toBe(true);
  });

  it('NACKs and drops the connection on an Add without a netns fd, then reconnects', async () => {
    const { connector, manager } = setup();
    const conn = connector.connections[0]!;
    conn.deliver({ add: { uid: 'u1', workloadInfo: INFO } }, []);
    await waitFor(() => conn.closed, 'connection dropped');
    expect(conn.replies()[0]).toMatch(/exactly one netns fd, got 0/);
    expect(manager.ready).toBe(false);
    await waitFor(() => connector.connections.length === 2, 'reconnect');
  });

  it('NACKs a non-Add message carrying an fd and closes that fd', async () => {
    const { connector } = setup();
    const conn = connector.connections[0]!;
    conn.deliver({ del: { uid: 'u1' } }, [9]);
    await waitFor(() => conn.closed, 'connection dropped');
    expect(conn.replies()[0]).toBe('only an add may carry a file descriptor');
    expect(connector.closedFds).toEqual([9]);
  });

  it('NACKs undecodable bytes', async () => {
    const { connector } = setup();
    const conn = connector.connections[0]!;
    conn.deliver({}, [], Buffer.from([0xff, 0xff, 0xff]));
    await waitFor(() => conn.closed, 'connection dropped');
    expect(conn.replies()[0]).toMatch(/^cannot decode WorkloadRequest/);
  });

  it('becomes unready when the CNI agent hangs up and serves the new snapshot after reconnect', async () => {
    const { connector, manager } = setup();
    const first = connector.connections[0]!;
    first.deliver({ snapshotSent: {} });
    await waitFor(() => manager.ready, 'ready');
    first.hangUp();
    expect(manager.ready).toBe(false);
    await waitFor(() => connector.connections.length === 2, 'reconnect');
    const second = connector.connections[1]!;
    second.deliver({ snapshotSent: {} });
    await waitFor(() => manager.ready, 'ready again');
  });
});
