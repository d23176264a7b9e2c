/**
 * Namespaced tier (root): the production PodSockets inside a real network namespace created for
 * this test. Checks that sockets live in the pod netns, carry mark 0x539, and that inbound
 * delivery can bind the client's address.
 */
import { execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import type { Server, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { closeFd, getMark, isTransparent, netnsInode, openNetns } from '@ambient-mesh/netns';
import { waitFor } from '../testing/wait.ts';
import { netnsPodSockets } from './netns-pod-sockets.ts';
import { whenConnected } from './pod-sockets.ts';

const cleanups: (() => unknown)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: 'pipe' });
}

function podNetns(): { name: string; fd: number; addresses: [string, string]; v6: [string, string] } {
  const name = `zt-podsock-${process.pid}-${randomInt(1_000_000)}`;
  ip('netns', 'add', name);
  cleanups.push(() => {
    ip('netns', 'del', name);
  });
  const net = `10.${randomInt(1, 250)}.${randomInt(1, 250)}`;
  ip('-n', name, 'link', 'set', 'lo', 'up');
  ip('-n', name, 'addr', 'add', `${net}.2/32`, 'dev', 'lo');
  ip('-n', name, 'addr', 'add', `${net}.3/32`, 'dev', 'lo');
  const v6 = `fd00:7a:${randomInt(1, 0xffff).toString(16)}::`;
  ip('-n', name, 'addr', 'add', `${v6}2/128`, 'dev', 'lo', 'nodad');
  ip('-n', name, 'addr', 'add', `${v6}3/128`, 'dev', 'lo', 'nodad');
  const fd = openNetns(`/run/netns/${name}`);
  cleanups.push(() => {
    closeFd(fd);
  });
  return { name, fd, addresses: [`${net}.2`, `${net}.3`], v6: [`${v6}2`, `${v6}3`] };
}

describe('netnsPodSockets (namespaced tier)', () => {
  it('listens and connects inside the pod netns with mark 0x539, binding a spoofed source', async () => {
    const pod = podNetns();
    const sockets = netnsPodSockets({
      netns: { inode: String(netnsInode(pod.fd)), fd: pod.fd, close: () => undefined },
      mark: 0x539,
      origSrc: 'try',
    });
    const servers = await sockets.listen(15008, { transparent: true });
    const server: Server = servers[0]!;
    for (const s of servers) cleanups.push(() => s.close());
    expect(isTransparent(server)).toBe(true);
    const accepted: Socket[] = [];
    server.on('connection', socket => {
      accepted.push(socket);
      socket.on('error', () => undefined);
      socket.end('hi');
    });

    const [podIp, otherIp] = pod.addresses;
    const plain = await whenConnected(sockets.connect({ host: podIp, port: 15008 }), 5_000);
    plain.on('error', () => undefined);
    cleanups.push(() => plain.destroy());
    expect(getMark(plain)).toBe(0x539);
    await waitFor(() => accepted.length === 1, 'first accept');
    expect(sockets.originalDestination(accepted[0]!)).toEqual({ address: podIp, port: 15008 });

    const spoofed = await whenConnected(
      sockets.connect({ host: podIp, port: 15008, sourceIp: otherIp }),
      5_000,
    );
    spoofed.on('error', () => undefined);
    cleanups.push(() => spoofed.destroy());
    await waitFor(() => accepted.length === 2, 'second accept');
    expect(accepted[1]?.remoteAddress).toBe(otherIp);
    expect(getMark(spoofed)).toBe(0x539);
  });

  it('serves each port on IPv4 and IPv6 (two listeners, IPv6-only), keeping an IPv6 client source', async () => {
    const pod = podNetns();
    const sockets = netnsPodSockets({
      netns: { inode: String(netnsInode(pod.fd)), fd: pod.fd, close: () => undefined },
      mark: 0x539,
      origSrc: 'try',
    });
    const servers = await sockets.listen(15006, { transparent: true });
    for (const s of servers) cleanups.push(() => s.close());
    expect(servers.map(s => (s.address() as { address: string }).address)).toEqual(['0.0.0.0', '::']);
    const accepted: Socket[] = [];
    for (const s of servers) {
      s.on('connection', socket => {
        accepted.push(socket);
        socket.on('error', () => undefined);
        socket.end();
      });
    }
    const [podV6, otherV6] = pod.v6;
    const v4 = await whenConnected(sockets.connect({ host: pod.addresses[0], port: 15006 }), 5_000);
    v4.on('error', () => undefined);
    cleanups.push(() => v4.destroy());
    await waitFor(() => accepted.length === 1, 'IPv4 accept');
    expect(accepted[0]?.localAddress).toBe(pod.addresses[0]);
    const spoofed = await whenConnected(
      sockets.connect({ host: podV6, port: 15006, sourceIp: otherV6 }),
      5_000,
    );
    spoofed.on('error', () => undefined);
    cleanups.push(() => spoofed.destroy());
    await waitFor(() => accepted.length === 2, 'IPv6 accept');
    expect(accepted[1]?.remoteAddress).toBe(otherV6);
    expect(sockets.originalDestination(accepted[1]!)).toEqual({ address: podV6, port: 15006 });
    expect(isTransparent(servers[1]!)).toBe(true);
  });
});
