import type dgram from 'node:dgram';
import type net from 'node:net';
import {
  closeFd,
  connectInNetns,
  createUdpSocket,
  getOriginalDst,
  listenInNetns,
  openNetns,
} from '@ambient-mesh/netns';
import { createPodNetns, nextEvent } from '@ambient-mesh/netns/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { netnsExecutor } from './command-executor.ts';
import { Mark, Port } from './constants.ts';
import { InpodRedirection } from './redirection.ts';
import type { InpodRuleOptions } from './redirection-options.ts';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const fn of cleanups.splice(0).reverse()) fn();
});

interface Pod {
  podFd: number;
  peerFd: number;
  podIp: string;
  peerIp: string;
  podIp6: string;
  peerIp6: string;
}

/** A pod netns with the redirection applied, and a peer netns across a veth. */
async function meshedPod(label: string, options: InpodRuleOptions = {}): Promise<Pod> {
  const p = createPodNetns(label);
  cleanups.push(() => {
    p.remove();
  });
  await new InpodRedirection(netnsExecutor({ name: p.pod }), options).apply();
  const podFd = openNetns(p.podPath);
  cleanups.push(() => {
    closeFd(podFd);
  });
  const peerFd = openNetns(p.peerPath);
  cleanups.push(() => {
    closeFd(peerFd);
  });
  return { podFd, peerFd, podIp: p.podIp, peerIp: p.peerIp, podIp6: p.podIp6, peerIp6: p.peerIp6 };
}

/** A listener in `nsFd`; ztunnel-style listeners carry mark 0x539. */
async function listener(nsFd: number, host: string, port: number, mark?: number): Promise<net.Server> {
  const server = await listenInNetns(nsFd, mark === undefined ? { host, port } : { host, port, mark });
  cleanups.push(() => server.close());
  return server;
}

function track<T extends net.Socket | dgram.Socket>(socket: T): T {
  cleanups.push(() => {
    if ('destroy' in socket) socket.destroy();
    else socket.close();
  });
  return socket;
}

async function accepted(server: net.Server): Promise<net.Socket> {
  const [conn] = await nextEvent<[net.Socket]>(server, 'connection');
  return track(conn);
}

describe('traffic in a pod netns with the redirection applied', () => {
  it('redirects an outbound connect to 10.x:80 to the 15001 listener, and SO_ORIGINAL_DST gives it back', async () => {
    const pod = await meshedPod('trout');
    const outbound = await listener(pod.podFd, '0.0.0.0', Port.outbound, Mark.ztunnel);
    const conn = accepted(outbound);
    track(connectInNetns(pod.podFd, { host: pod.peerIp, port: 80 }));
    const socket = await conn;
    expect(socket.localPort).toBe(Port.outbound);
    expect(getOriginalDst(socket)).toEqual({ address: pod.peerIp, port: 80, family: 'IPv4' });
  });

  it('redirects IPv6 outbound and inbound TCP on a dual-stack listener, with IPv6 SO_ORIGINAL_DST', async () => {
    const pod = await meshedPod('trv6');
    const outbound = await listener(pod.podFd, '::', Port.outbound, Mark.ztunnel);
    const out = accepted(outbound);
    track(connectInNetns(pod.podFd, { host: pod.peerIp6, port: 80 }));
    expect(getOriginalDst(await out)).toEqual({ address: pod.peerIp6, port: 80, family: 'IPv6' });

    const inbound = await listener(pod.podFd, '::', Port.inboundPlaintext, Mark.ztunnel);
    const inc = accepted(inbound);
    track(connectInNetns(pod.peerFd, { host: pod.podIp6, port: 8080 }));
    expect(getOriginalDst(await inc)).toEqual({ address: pod.podIp6, port: 8080, family: 'IPv6' });
  });

  it('redirects inbound TCP to the pod to 15006, keeping the original destination', async () => {
    const pod = await meshedPod('trin');
    const inbound = await listener(pod.podFd, '0.0.0.0', Port.inboundPlaintext, Mark.ztunnel);
    const conn = accepted(inbound);
    track(connectInNetns(pod.peerFd, { host: pod.podIp, port: 8080 }));
    const socket = await conn;
    expect(socket.remoteAddress).toBe(pod.peerIp);
    expect(getOriginalDst(socket)).toEqual({ address: pod.podIp, port: 8080, family: 'IPv4' });
  });

  it('does not redirect inbound traffic to 15008', async () => {
    const pod = await meshedPod('trhb');
    const inbound = await listener(pod.podFd, '0.0.0.0', Port.inboundPlaintext, Mark.ztunnel);
    let redirected = 0;
    inbound.on('connection', c => {
      redirected += 1;
      c.destroy();
    });
    const hbone = await listener(pod.podFd, '0.0.0.0', Port.hbone, Mark.ztunnel);
    const conn = accepted(hbone);
    track(connectInNetns(pod.peerFd, { host: pod.podIp, port: Port.hbone }));
    const socket = await conn;
    expect(socket.localPort).toBe(Port.hbone);
    // Conntrack knows the connection but NAT did not rewrite it: the dialled port is 15008.
    expect(getOriginalDst(socket)).toEqual({ address: pod.podIp, port: Port.hbone, family: 'IPv4' });
    expect(redirected).toBe(0);
  });

  it('does not redirect a socket marked 0x539, and does redirect the same connect unmarked', async () => {
    const pod = await meshedPod('trmk');
    const outbound = await listener(pod.podFd, '0.0.0.0', Port.outbound, Mark.ztunnel);
    const upstream = await listener(pod.peerFd, pod.peerIp, 9090);

    const direct = accepted(upstream);
    track(connectInNetns(pod.podFd, { host: pod.peerIp, port: 9090, mark: Mark.ztunnel }));
    expect((await direct).remoteAddress).toBe(pod.podIp);

    const captured = accepted(outbound);
    track(connectInNetns(pod.podFd, { host: pod.peerIp, port: 9090 }));
    expect(getOriginalDst(await captured)).toEqual({ address: pod.peerIp, port: 9090, family: 'IPv4' });
  });

  it('sends DNS on UDP port 53 to 15053 when DNS capture is on', async () => {
    const pod = await meshedPod('trdns', { dnsCapture: true });
    const dns = track(
      await createUdpSocket(pod.podFd, { host: '127.0.0.1', port: Port.dns, mark: Mark.ztunnel }),
    );
    const app = track(await createUdpSocket(pod.podFd, { host: '0.0.0.0', port: 0 }));
    const query = nextEvent<[Buffer, dgram.RemoteInfo]>(dns, 'message');
    app.send(Buffer.from('dns-query'), 53, pod.peerIp);
    const [msg, from] = await query;
    expect(msg.toString()).toBe('dns-query');
    expect(from.port).toBe(app.address().port);

    const dnsTcp = await listener(pod.podFd, '0.0.0.0', Port.dns, Mark.ztunnel);
    const tcpQuery = accepted(dnsTcp);
    track(connectInNetns(pod.podFd, { host: pod.peerIp, port: 53 }));
    expect(getOriginalDst(await tcpQuery)).toEqual({ address: pod.peerIp, port: 53, family: 'IPv4' });
  });

  it('lets ztunnel spoof the client source inbound: the app sees the real client IP and replies return', async () => {
    const pod = await meshedPod('trspf');
    const app = await listener(pod.podFd, pod.podIp, 8080);
    app.on('connection', c => {
      c.once('data', (d: Buffer) => c.end(`app saw ${c.remoteAddress ?? '?'}: ${d.toString()}`));
    });

    // The in-pod proxy: accept on 15006, dial the app from the client's address with mark 0x539.
    const inbound = await listener(pod.podFd, '0.0.0.0', Port.inboundPlaintext, Mark.ztunnel);
    inbound.on('connection', (down: net.Socket) => {
      track(down);
      const target = getOriginalDst(down);
      if (target === null || down.remoteAddress === undefined) {
        down.destroy();
        return;
      }
      const up = track(
        connectInNetns(pod.podFd, {
          host: target.address,
          port: target.port,
          localAddress: down.remoteAddress,
          mark: Mark.ztunnel,
          transparent: true,
          freebind: true,
        }),
      );
      up.on('error', () => down.destroy());
      down.on('error', () => up.destroy());
      down.pipe(up).pipe(down);
    });

    const client = track(connectInNetns(pod.peerFd, { host: pod.podIp, port: 8080 }));
    let reply = '';
    client.on('data', (d: Buffer) => (reply += d.toString()));
    client.write('hello');
    await nextEvent(client, 'end');
    expect(reply).toBe(`app saw ${pod.peerIp}: hello`);
  });
});
