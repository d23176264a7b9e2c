import { execFileSync, spawn } from 'node:child_process';
import { closeSync, readdirSync } from 'node:fs';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { closeFd, currentNetnsInode, netnsInode, openNetns } from './netns-handle.ts';
import { connectInNetns, createTcpListener, listenInNetns } from './netns-sockets.ts';
import { SeqpacketServer } from './seqpacket.ts';
import type { SeqpacketMessage, SeqpacketSocket } from './seqpacket.ts';
import { getLocalAddress, getMark, isTransparent, setMark } from './socket-options.ts';
import { createPodNetns } from './testing/pod-netns.ts';
import type { PodNetns } from './testing/pod-netns.ts';
import { nextEvent } from './testing/wait-for.ts';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const fn of cleanups.splice(0).reverse()) fn();
});

function pods(label: string): PodNetns & { podFd: number; peerFd: number } {
  const p = createPodNetns(label);
  cleanups.push(() => {
    p.remove();
  });
  const podFd = openNetns(p.podPath);
  cleanups.push(() => {
    closeFd(podFd);
  });
  const peerFd = openNetns(p.peerPath);
  cleanups.push(() => {
    closeFd(peerFd);
  });
  return { ...p, podFd, peerFd };
}

const child = (name: string): string => fileURLToPath(new URL(`testing/${name}`, import.meta.url));

async function readAll(socket: net.Socket): Promise<string> {
  let text = '';
  socket.on('data', (d: Buffer) => (text += d.toString()));
  await nextEvent(socket, 'end');
  return text;
}

describe('sockets inside another network namespace', () => {
  it('listens and connects inside the pod netns while the process stays in its own', async () => {
    const p = pods('nsock');
    const before = currentNetnsInode();
    const server = await listenInNetns(p.podFd, { host: p.podIp, port: 8080 });
    cleanups.push(() => server.close());
    expect(server.address()).toMatchObject({ address: p.podIp, port: 8080 });
    server.on('connection', c => c.end(`seen ${c.remoteAddress ?? ''}`));

    // From the peer netns across the veth: proves the listener really lives in the pod.
    const client = connectInNetns(p.peerFd, { host: p.podIp, port: 8080 });
    cleanups.push(() => client.destroy());
    expect(await readAll(client)).toBe(`seen ${p.peerIp}`);
    expect(currentNetnsInode()).toBe(before);
    expect(netnsInode(p.podFd)).not.toBe(before);
  });

  it('makes each of many sockets in the namespace asked for, returns home every time, and keeps no descriptor', async () => {
    const p = pods('nmany');
    const home = currentNetnsInode();
    const server = await listenInNetns(p.podFd, { host: p.podIp, port: 8081 });
    cleanups.push(() => server.close());
    server.on('connection', c => c.end('ok'));
    const descriptors = (): number => readdirSync('/proc/self/fd').length;
    const before = descriptors();
    // Alternating namespaces, each socket bound to an address only its own namespace has: one made
    // in the other namespace would fail to bind (EADDRNOTAVAIL).
    for (let i = 0; i < 500; i++) {
      const [fd, host] = i % 2 === 0 ? [p.podFd, p.podIp] : [p.peerFd, p.peerIp];
      closeSync(createTcpListener(fd, { host, port: 0 }));
    }
    expect(currentNetnsInode()).toBe(home);
    expect(descriptors()).toBe(before);
    const client = connectInNetns(p.peerFd, { host: p.podIp, port: 8081 });
    cleanups.push(() => client.destroy());
    expect(await readAll(client)).toBe('ok');
    expect(currentNetnsInode()).toBe(home);
  });

  it('sets SO_MARK and IP_TRANSPARENT before bind and reads them back', async () => {
    const p = pods('nmark');
    const server = await listenInNetns(p.podFd, {
      host: '0.0.0.0',
      port: 15001,
      mark: 0x539,
      transparent: true,
      reusePort: true,
    });
    cleanups.push(() => server.close());
    expect(getMark(server)).toBe(0x539);
    expect(isTransparent(server)).toBe(true);
    setMark(server, 0x111);
    expect(getMark(server)).toBe(0x111);
    // A second listener on the same port is allowed by SO_REUSEPORT (old and new ztunnel).
    const second = await listenInNetns(p.podFd, { host: '0.0.0.0', port: 15001, reusePort: true });
    cleanups.push(() => second.close());
    expect(getLocalAddress(second)?.port).toBe(15001);
  });

  it('binds a foreign source address only with IP_TRANSPARENT and IP_FREEBIND', () => {
    const p = pods('nfree');
    // 10.250.x.77 is on no interface. The bind happens before the SYN, so the address is visible
    // at once; the full spoofed round trip needs the pod's policy routing (see nft-rules tests).
    const spoofed = p.podIp.replace(/\.2$/, '.77');
    const client = connectInNetns(p.podFd, {
      host: p.peerIp,
      port: 9,
      transparent: true,
      freebind: true,
      localAddress: spoofed,
    });
    cleanups.push(() => client.destroy());
    client.on('error', () => {
      // Nobody answers for .77; the connect outcome is not what this test is about.
    });
    expect(getLocalAddress(client)?.address).toBe(spoofed);
    expect(() => connectInNetns(p.podFd, { host: p.peerIp, port: 9, localAddress: spoofed })).toThrow(
      /EADDRNOTAVAIL/,
    );
  });

  it('lets another process open a listener in a netns whose fd it received over SEQPACKET', async () => {
    const p = pods('nzds');
    const path = join(tmpdir(), `ambient-zds-${process.pid}-${Date.now()}.sock`);
    const server = SeqpacketServer.listen(path);
    cleanups.push(() => {
      server.close();
    });
    const accepted = nextEvent<[SeqpacketSocket]>(server, 'connection');
    const proc = spawn(
      process.execPath,
      ['--conditions=@ambient-mesh/source', child('seqpacket-child.ts'), 'listen', path, p.podIp],
      {
        stdio: ['ignore', 'inherit', 'inherit'],
      },
    );
    cleanups.push(() => proc.kill());
    const [conn] = await accepted;
    cleanups.push(() => {
      conn.close();
    });
    await nextEvent<[SeqpacketMessage]>(conn, 'message', 15_000); // "ready"
    const reply = nextEvent<[SeqpacketMessage]>(conn, 'message', 15_000);
    conn.send(Buffer.from('add pod'), [p.podFd]);
    const [{ data }] = await reply;
    const report = JSON.parse(data.toString()) as { inode: number; address: string; port: number };
    expect(report.inode).toBe(netnsInode(p.podFd));
    expect(report.address).toBe(p.podIp);

    const client = connectInNetns(p.podFd, { host: p.podIp, port: report.port });
    cleanups.push(() => client.destroy());
    expect(await readAll(client)).toBe('hello-from-child');
    await nextEvent(proc, 'exit', 15_000);
  });

  it('names CAP_NET_ADMIN when a process without it sets SO_MARK or IP_TRANSPARENT', () => {
    const out = execFileSync(
      'setpriv',
      [
        '--bounding-set=-net_admin,-net_raw',
        '--inh-caps=-net_admin,-net_raw',
        '--',
        process.execPath,
        '--conditions=@ambient-mesh/source',
        child('capability-child.ts'),
      ],
      { encoding: 'utf8' },
    );
    const results = out
      .trim()
      .split('\n')
      .map(line => JSON.parse(line) as Record<string, unknown>);
    expect(results).toEqual([
      expect.objectContaining({
        name: 'mark',
        ok: false,
        code: 'NETNS_MISSING_CAPABILITY',
        capability: 'CAP_NET_ADMIN',
      }),
      expect.objectContaining({
        name: 'transparent',
        ok: false,
        code: 'NETNS_MISSING_CAPABILITY',
        capability: 'CAP_NET_ADMIN',
      }),
    ]);
  });
});
