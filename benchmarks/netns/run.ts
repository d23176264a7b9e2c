// Cost of entering pods: in-pod rule apply/diff (nft + ip, in a namespace this run creates), socket
// creation inside a pod netns via @ambient-mesh/netns, connects captured by the REDIRECT rules,
// and SOCK_SEQPACKET round trips (ZDS transport). Baselines measured in the same run: an empty
// `nft -f` in the same namespace (process start cost), sockets made in the caller's own namespace,
// plain loopback connects, and a Unix stream socket pair. Needs root.
// Run: npx node --conditions=@ambient-mesh/source benchmarks/netns/run.ts
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  SeqpacketSocket,
  closeFd,
  connectInNetns,
  createTcpListener,
  getOriginalDst,
  listenInNetns,
  openNetns,
} from '@ambient-mesh/netns';
import { InpodRedirection, netnsExecutor } from '@ambient-mesh/nft-rules';

const base = `bench-netns-${process.pid}`;
const pod = `${base}-pod`;
const peer = `${base}-peer`;
const ip = (...args: string[]): void => {
  execFileSync('ip', args, { stdio: 'ignore' });
};

function cleanup(): void {
  for (const ns of [pod, peer]) {
    try {
      ip('netns', 'del', ns);
    } catch {
      // not created
    }
  }
}

interface Row {
  name: string;
  n: number;
  ms: number;
}
const rows: Row[] = [];
async function measure(name: string, n: number, fn: (i: number) => unknown): Promise<void> {
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await fn(i);
  rows.push({ name, n, ms: Number(process.hrtime.bigint() - start) / 1e6 });
}

async function connectLoop(
  n: number,
  connect: () => net.Socket,
  server: net.Server,
  expectPort?: number,
): Promise<void> {
  for (let i = 0; i < n; i++) {
    const accepted = once(server, 'connection') as Promise<[net.Socket]>;
    const client = connect();
    const [conn] = await accepted;
    const dst = getOriginalDst(conn);
    if (expectPort !== undefined && dst?.port !== expectPort) throw new Error('connect was not redirected');
    conn.destroy();
    client.destroy();
  }
}

try {
  ip('netns', 'add', pod);
  ip('netns', 'add', peer);
  for (const ns of [pod, peer]) ip('-n', ns, 'link', 'set', 'lo', 'up');
  ip('-n', pod, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', peer);
  ip('-n', pod, 'addr', 'add', '10.250.200.2/24', 'dev', 'eth0', 'nodad');
  ip('-n', peer, 'addr', 'add', '10.250.200.1/24', 'dev', 'eth0', 'nodad');
  ip('-n', pod, 'link', 'set', 'eth0', 'up');
  ip('-n', peer, 'link', 'set', 'eth0', 'up');
  for (const ns of [pod, peer]) {
    ip(
      'netns',
      'exec',
      ns,
      'sysctl',
      '-q',
      'net.ipv4.tcp_tw_reuse=1',
      'net.ipv4.ip_local_port_range=1024 65000',
    );
  }

  const executor = netnsExecutor({ name: pod });
  const redirection = new InpodRedirection(executor, {});
  await measure('baseline: empty `nft -f` in the pod netns', 20, () => executor.run('nft', ['-f', '-'], ''));
  await measure('apply in-pod rules (nft transaction + ip rule/route, v4+v6)', 20, () => redirection.apply());
  await measure('diff (nft -j list + ip -j rule/route)', 20, () => redirection.diff());

  const podFd = openNetns(`/var/run/netns/${pod}`);
  await measure('baseline: TCP listener in own netns (socket+bind+close)', 5000, () => {
    closeFd(createTcpListener(null, { host: '127.0.0.1', port: 0 }));
  });
  await measure('TCP listener in pod netns (setns, socket, setns back, bind, close)', 5000, () => {
    closeFd(createTcpListener(podFd, { host: '127.0.0.1', port: 0, mark: 0x539 }));
  });

  const loopback = net.createServer();
  loopback.listen(0, '127.0.0.1');
  await once(loopback, 'listening');
  const loopPort = (loopback.address() as net.AddressInfo).port;
  await measure('baseline: sequential loopback connects in own netns (net.connect)', 1, () =>
    connectLoop(1000, () => net.connect(loopPort, '127.0.0.1'), loopback),
  );
  rows[rows.length - 1]!.n = 1000;
  const outbound = await listenInNetns(podFd, { host: '0.0.0.0', port: 15001, mark: 0x539 });
  await measure('sequential connects from the pod captured by REDIRECT to 15001 (+SO_ORIGINAL_DST)', 1, () =>
    connectLoop(1000, () => connectInNetns(podFd, { host: '10.250.200.1', port: 80 }), outbound, 80),
  );
  rows[rows.length - 1]!.n = 1000;
  loopback.close();
  outbound.close();
  closeFd(podFd);

  const [a, b] = SeqpacketSocket.pair();
  b.on('message', m => {
    b.send(m.data);
  });
  const N_MSG = 20_000;
  await measure('SEQPACKET round trips (64 B, uv_poll + recvmsg)', 1, async () => {
    for (let i = 0; i < N_MSG; i++) {
      const reply = once(a, 'message');
      a.send(Buffer.alloc(64));
      await reply;
    }
  });
  rows[rows.length - 1]!.n = N_MSG;
  a.close();
  b.close();

  const path = join(tmpdir(), `bench-netns-${process.pid}.sock`);
  const unix = net.createServer(c => c.on('data', d => c.write(d)));
  unix.listen(path);
  await once(unix, 'listening');
  const client = net.connect(path);
  await once(client, 'connect');
  await measure('baseline: Unix stream round trips (64 B, net.Socket)', 1, async () => {
    for (let i = 0; i < N_MSG; i++) {
      const reply = once(client, 'data');
      client.write(Buffer.alloc(64));
      await reply;
    }
  });
  rows[rows.length - 1]!.n = N_MSG;
  client.destroy();
  unix.close();
} finally {
  cleanup();
}

console.log('| measurement | n | total ms | per op µs | ops/s |');
console.log('|---|---|---|---|---|');
for (const r of rows) {
  const per = (r.ms * 1000) / r.n;
  console.log(
    `| ${r.name} | ${r.n} | ${r.ms.toFixed(0)} | ${per.toFixed(1)} | ${Math.round((r.n * 1000) / r.ms)} |`,
  );
}
