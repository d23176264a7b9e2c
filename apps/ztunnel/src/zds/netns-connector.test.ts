import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { currentNetnsInode, openNetns, SeqpacketServer } from '@ambient-mesh/netns';
import type { SeqpacketSocket } from '@ambient-mesh/netns';
import { WorkloadRequestCodec, WorkloadResponseCodec } from '@ambient-mesh/xds-types';
import { captureLogs } from '@ambient-mesh/runtime/testing';
import { waitFor } from '../testing/wait.ts';
import { netnsZdsConnector } from './netns-connector.ts';
import { WorkloadStateManager } from './state-manager.ts';
import type { NetnsHandle, WorkloadInfo } from './state-manager.ts';
import { ZDS_MAX_MESSAGE, ZdsClient } from './zds-client.ts';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function cniServer(): Promise<{ path: string; peers: SeqpacketSocket[]; received: Buffer[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'ztunnel-zds-'));
  cleanups.push(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const path = join(dir, 'ztunnel.sock');
  const server = SeqpacketServer.listen(path);
  cleanups.push(() => {
    server.close();
  });
  const peers: SeqpacketSocket[] = [];
  const received: Buffer[] = [];
  server.on('connection', socket => {
    peers.push(socket);
    socket.on('message', message => received.push(message.data));
    cleanups.push(() => {
      socket.close();
    });
  });
  return Promise.resolve({ path, peers, received });
}

function client(path: string, inodes: string[]): ZdsClient {
  const manager = new WorkloadStateManager({
    start: (_uid: string, _info: WorkloadInfo, netns: NetnsHandle) => {
      inodes.push(netns.inode);
      return Promise.resolve({ drain: () => Promise.resolve() });
    },
  });
  const zds = new ZdsClient({
    path,
    connector: netnsZdsConnector,
    manager,
    logger: captureLogs().logs.for('zds'),
  });
  zds.start();
  cleanups.push(() => manager.drainAll());
  cleanups.push(() => {
    zds.stop();
  });
  return zds;
}

const INFO = { name: 'pod-a', namespace: 'default', serviceAccount: 'sa-a' };

describe('ZDS over a real SOCK_SEQPACKET socket', () => {
  it('sends the hello, receives an Add with a netns fd and identifies the namespace by inode', async () => {
    const cni = await cniServer();
    const inodes: string[] = [];
    client(cni.path, inodes);
    await waitFor(() => cni.received.length === 1, 'hello');
    expect(cni.received[0]?.toString('hex')).toBe('0801');
    const fd = openNetns('/proc/self/ns/net');
    cni.peers[0]?.send(WorkloadRequestCodec.encode({ add: { uid: 'u1', workloadInfo: INFO } }), [fd]);
    await waitFor(() => cni.received.length === 2, 'ack');
    expect(cni.received[1]?.toString('hex')).toBe('0a00');
    expect(inodes).toEqual([String(currentNetnsInode())]);
  });

  it('NACKs a message over 1 KiB and reconnects', async () => {
    const cni = await cniServer();
    client(cni.path, []);
    await waitFor(() => cni.received.length === 1, 'hello');
    const big = WorkloadRequestCodec.encode({ del: { uid: 'x'.repeat(ZDS_MAX_MESSAGE + 10) } });
    cni.peers[0]?.send(big);
    await waitFor(() => cni.received.length === 2, 'nack');
    expect(WorkloadResponseCodec.decode(cni.received[1]!).ack?.error).toMatch(/longer than 1024 bytes/);
    await waitFor(() => cni.peers.length === 2 && cni.received.length === 3, 'reconnect with a new hello');
    expect(cni.received[2]?.toString('hex')).toBe('0801');
  });
});
