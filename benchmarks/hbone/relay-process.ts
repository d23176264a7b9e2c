// The middle hop of the hbone benchmark, in its own process: either a plain Node TCP relay (the
// baseline) or an HBONE server relaying each CONNECT to its authority. Driven by run.ts:
//   stdin:  one JSON line of config, then commands: "mem" (reply: memory after GC), "cpu"
//          (reply: CPU ms used so far), "quit"
//   stdout: one JSON line {"port": N} once listening, then one JSON line per command reply
import { createServer, connect } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { HboneServer, connectUpstream } from '@ambient-mesh/hbone';
import type { HboneIdentity } from '@ambient-mesh/hbone';

interface Config {
  readonly mode: 'tcp' | 'hbone';
  /** Where the TCP relay forwards to. */
  readonly upstreamPort?: number;
  readonly identity?: HboneIdentity & { id: string };
}

const lines = createInterface({ input: process.stdin });
const iterator = lines[Symbol.asyncIterator]();
const first = await iterator.next();
const config = JSON.parse(String(first.value)) as Config;

const listener = createServer({ allowHalfOpen: true, noDelay: true });
const sockets = new Set<Socket>();
if (config.mode === 'tcp') {
  listener.on('connection', (client: Socket) => {
    const upstream = connect({
      port: config.upstreamPort!,
      host: '127.0.0.1',
      allowHalfOpen: true,
      noDelay: true,
    });
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
} else {
  const server = new HboneServer({
    identity: config.identity!,
    listener,
    onConnect: request =>
      request.authority.kind === 'ip'
        ? {
            status: 200,
            connect: signal => connectUpstream({ host: '127.0.0.1', port: request.authority.port, signal }),
          }
        : { status: 400 },
  });
  process.on('exit', () => {
    server.destroy();
  });
}
await new Promise<void>(resolve => listener.listen(0, '127.0.0.1', resolve));
process.stdout.write(`${JSON.stringify({ port: (listener.address() as AddressInfo).port })}\n`);

for (;;) {
  const next = await iterator.next();
  if (next.done === true || next.value === 'quit') break;
  if (next.value === 'cpu') {
    const c = process.cpuUsage();
    process.stdout.write(`${JSON.stringify({ cpuMs: (c.user + c.system) / 1000 })}\n`);
  }
  if (next.value === 'mem') {
    for (let i = 0; i < 3; i++) (globalThis as { gc?: () => void }).gc?.();
    const m = process.memoryUsage();
    process.stdout.write(`${JSON.stringify({ rss: m.rss, heapUsed: m.heapUsed, external: m.external })}\n`);
  }
}
for (const s of sockets) s.destroy();
process.exit(0);
