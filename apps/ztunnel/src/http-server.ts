/** Small helpers shared by the admin, stats and readiness HTTP servers. */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BindError } from './errors.ts';
import type { ListenAddress } from './config.ts';

export type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>;

export function reply(
  res: ServerResponse,
  status: number,
  body: string,
  contentType = 'text/plain; charset=utf-8',
): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export interface BoundServer {
  readonly server: Server;
  readonly address: AddressInfo;
  close(): Promise<void>;
}

/** Binds an HTTP server; rejects with `BindError` naming `what` and the address. */
export async function serveHttp(
  what: string,
  address: ListenAddress,
  handler: Handler,
): Promise<BoundServer> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    Promise.resolve(handler(req, res, url)).catch((err: unknown) => {
      if (!res.headersSent) reply(res, 500, `internal error: ${String(err)}\n`);
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', err => {
      reject(new BindError(what, `${address.host}:${address.port}`, { cause: err }));
    });
    server.listen(address.port, address.host, () => {
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  return {
    server,
    address: bound,
    close: () =>
      new Promise(resolve => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}
