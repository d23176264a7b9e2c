/**
 * Loopback TCP helpers for tests: an echo server and a hashing sink, each closing itself when the
 * test's cleanup runs. Sockets are half-open capable so each direction ends on its own.
 */
import { createHash } from 'node:crypto';
import { createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';

export interface TestTcpServer {
  readonly server: Server;
  readonly port: number;
  readonly sockets: Set<Socket>;
  close(): Promise<void>;
}

async function listen(onSocket: (socket: Socket) => void): Promise<TestTcpServer> {
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true, noDelay: true }, socket => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    onSocket(socket);
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  return {
    server,
    port: (server.address() as AddressInfo).port,
    sockets,
    close: () =>
      new Promise<void>(resolve => {
        for (const s of sockets) s.destroy();
        server.close(() => {
          resolve();
        });
      }),
  };
}

/** Echoes every byte; ends its side when the client ends. */
export function startEchoServer(): Promise<TestTcpServer> {
  return listen(socket => socket.pipe(socket));
}

/**
 * Reads until the client ends, then writes back the hex SHA-256 and the byte count
 * (`<hex> <count>\n`) and ends.
 */
export function startHashServer(): Promise<TestTcpServer> {
  return listen(socket => {
    const hash = createHash('sha256');
    let count = 0;
    socket.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      count += chunk.length;
    });
    socket.on('end', () => {
      socket.end(`${hash.digest('hex')} ${count}\n`);
    });
  });
}

/**
 * Sends a greeting and ends its side at once, then keeps reading: tests the server → client
 * half-close. What each connection sent after that lands in `received` when it ends.
 */
export async function startGreeterServer(greeting: string): Promise<TestTcpServer & { received: Buffer[] }> {
  const received: Buffer[] = [];
  const server = await listen(socket => {
    const chunks: Buffer[] = [];
    socket.end(greeting);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => received.push(Buffer.concat(chunks)));
  });
  return { ...server, received };
}

/** Collects a readable stream into one buffer. */
export async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/** Polls `condition` every 10 ms until it holds or `timeoutMs` passes. */
export async function waitFor(condition: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise(resolve => setTimeout(resolve, 10));
  }
}

/**
 * A TCP socket bound to 127.0.0.1 but not listening, as a raw fd: what ztunnel gets when it
 * creates a listener inside a pod's network namespace. Node has no public API for this, so the
 * test uses the tcp_wrap binding; `close()` releases the fd.
 */
export function boundSocketFd(): { fd: number; port: number; close(): void } {
  interface TcpHandle {
    bind(address: string, port: number): number;
    getsockname(out: { port?: number }): number;
    close(): void;
    readonly fd: number;
  }
  const binding = (process as unknown as { binding(name: string): unknown }).binding('tcp_wrap') as {
    TCP: new (type: number) => TcpHandle;
    constants: { SERVER: number };
  };
  const handle = new binding.TCP(binding.constants.SERVER);
  const rc = handle.bind('127.0.0.1', 0);
  if (rc !== 0) throw new Error(`bind failed with ${rc}`);
  const out: { port?: number } = {};
  handle.getsockname(out);
  return {
    fd: handle.fd,
    port: out.port!,
    close: () => {
      handle.close();
    },
  };
}
