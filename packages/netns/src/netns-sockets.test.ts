import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidArgumentError, SyscallError } from './errors.ts';
import { closeFd, currentNetnsInode, isNetnsFd, netnsInode, openNetns } from './netns-handle.ts';
import { connectInNetns, createTcpListener, createUdpSocket, listenInNetns } from './netns-sockets.ts';
import { getLocalAddress, getOriginalDst, socketFd } from './socket-options.ts';
import { nextEvent } from './testing/wait-for.ts';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const fn of cleanups.splice(0).reverse()) fn();
});

describe('sockets in the caller namespace (loopback)', () => {
  it('hands a bound listener to net.Server and connects to it with normal connect semantics', async () => {
    const server = await listenInNetns(null, { host: '127.0.0.1', port: 0 });
    cleanups.push(() => server.close());
    const { port } = server.address() as net.AddressInfo;
    const accepted = nextEvent<[net.Socket]>(server, 'connection');

    const client = connectInNetns(null, { host: '127.0.0.1', port });
    cleanups.push(() => client.destroy());
    await nextEvent(client, 'connect');
    const [peer] = await accepted;
    cleanups.push(() => peer.destroy());
    client.write('ping');
    const [data] = await nextEvent<[Buffer]>(peer, 'data');
    expect(data.toString()).toBe('ping');
    expect(getOriginalDst(peer)).toBeNull();
    expect(getLocalAddress(client)?.address).toBe('127.0.0.1');
    expect(socketFd(client)).toBeGreaterThan(2);
  });

  it('reports a refused connect as an error event from connect', async () => {
    const fd = createTcpListener(null, { host: '127.0.0.1', port: 0 });
    const port = getLocalAddress(fd)?.port ?? 0;
    closeFd(fd);
    const client = connectInNetns(null, { host: '127.0.0.1', port });
    cleanups.push(() => client.destroy());
    const [err] = await nextEvent<[NodeJS.ErrnoException]>(client, 'error');
    expect(err.code).toBe('ECONNREFUSED');
    expect(err.syscall).toBe('connect');
  });

  it('binds a UDP socket and exchanges a datagram on loopback', async () => {
    const a = await createUdpSocket(null, { host: '127.0.0.1', port: 0 });
    cleanups.push(() => a.close());
    const b = await createUdpSocket(null, { host: '127.0.0.1', port: 0 });
    cleanups.push(() => b.close());
    const received = nextEvent<[Buffer, { address: string; port: number }]>(b, 'message');
    a.send('dgram', b.address().port, '127.0.0.1');
    const [msg, rinfo] = await received;
    expect(msg.toString()).toBe('dgram');
    expect(rinfo.port).toBe(a.address().port);
    expect(socketFd(a)).toBeGreaterThan(2);
  });

  it('rejects host names, bad ports and mixed families before any syscall', () => {
    expect(() => createTcpListener(null, { host: 'localhost', port: 1 })).toThrow(InvalidArgumentError);
    expect(() => createTcpListener(null, { host: '127.0.0.1', port: 70000 })).toThrow(/outside 0..65535/);
    expect(() => connectInNetns(null, { host: '::1', port: 1, localAddress: '127.0.0.1' })).toThrow(
      /different families/,
    );
  });

  it('shares a port between 0.0.0.0 and an IPV6_V6ONLY listener on ::, each taking its own family', async () => {
    const v4 = await listenInNetns(null, { host: '0.0.0.0', port: 0 });
    cleanups.push(() => v4.close());
    const { port } = v4.address() as net.AddressInfo;
    const v6 = await listenInNetns(null, { host: '::', port, v6Only: true });
    cleanups.push(() => v6.close());
    const accepted6 = nextEvent<[net.Socket]>(v6, 'connection');
    const client = connectInNetns(null, { host: '::1', port });
    cleanups.push(() => client.destroy());
    await nextEvent(client, 'connect');
    const [peer] = await accepted6;
    cleanups.push(() => peer.destroy());
    expect(peer.localAddress).toBe('::1');
    // Without IPV6_V6ONLY the same bind collides with the IPv4 listener (Linux's default is dual-stack).
    expect(() => createTcpListener(null, { host: '::', port, v6Only: false })).toThrow(SyscallError);
  });

  it('reports a port already in use as SyscallError EADDRINUSE and closes the new socket', () => {
    const fd = createTcpListener(null, { host: '127.0.0.1', port: 0 });
    const port = getLocalAddress(fd)?.port ?? 0;
    const server = net.createServer();
    server.listen({ fd }); // the server owns the fd from here
    cleanups.push(() => server.close());
    let caught: unknown;
    try {
      createTcpListener(null, { host: '127.0.0.1', port });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(SyscallError);
    expect((caught as SyscallError).errnoCode).toBe('EADDRINUSE');
  });
});

describe('namespace handles', () => {
  it('opens the own namespace by pid and identifies it by inode', () => {
    const fd = openNetns(process.pid);
    cleanups.push(() => {
      closeFd(fd);
    });
    expect(netnsInode(fd)).toBe(currentNetnsInode());
    expect(isNetnsFd(fd)).toBe(true);
  });

  it('rejects a file that is not a network namespace', () => {
    expect(() => openNetns('/proc/self/ns/uts')).toThrow(/is not a network namespace/);
    expect(() => openNetns('/nonexistent/netns')).toThrow(/ENOENT/);
  });
});
