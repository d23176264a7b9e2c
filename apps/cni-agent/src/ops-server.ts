/**
 * Health and metrics over HTTP: `/healthz` (alive), `/readyz` (start-up reconcile done and both
 * sockets listening), and `/metrics` (Prometheus text). Bind to port 0 in tests.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { errorMessage } from '@ambient-mesh/errors';
import type { Registry } from 'prom-client';

export interface OpsServer {
  readonly port: number;
  close(): Promise<void>;
}

export async function startOpsServer(options: {
  readonly host?: string;
  readonly port: number;
  readonly ready: () => boolean;
  readonly registry: Registry | null;
}): Promise<OpsServer> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET') {
      res.writeHead(405).end();
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (path === '/readyz') {
      const ready = options.ready();
      res
        .writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' })
        .end(ready ? 'ready\n' : 'not ready\n');
    } else if (path === '/metrics' && options.registry !== null) {
      const registry = options.registry;
      registry.metrics().then(
        text => {
          res.writeHead(200, { 'content-type': registry.contentType }).end(text);
        },
        (err: unknown) => {
          res.writeHead(500).end(errorMessage(err));
        },
      );
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '0.0.0.0', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>(resolve => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}
