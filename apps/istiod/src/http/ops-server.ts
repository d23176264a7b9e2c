/**
 * istiod's HTTP endpoints: `/ready` (8080), Prometheus `/metrics` (15014) and the debug views
 * (`/debug/syncz`, `/debug/wds`) on a loopback-only listener. The debug handler also refuses
 * any non-loopback peer, so a misconfigured bind cannot expose it (see CVE-2026-31838).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { errorMessage } from '@ambient-mesh/errors';
import type { Registry } from 'prom-client';
import type { ListenAddress } from '../config.ts';
import type { Logger } from '../logger.ts';
import { renderForDebug } from '../wds/debug-view.ts';
import { TypeUrls, type WdsTypeUrl } from '../wds/wds-index.ts';
import type { ConnectionStatus, ResourceSource } from '../xds/delta-server.ts';

export type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

function send(res: ServerResponse, code: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

function pathOf(req: IncomingMessage): URL {
  return new URL(req.url ?? '/', 'http://localhost');
}

export function readinessHandler(isReady: () => boolean): Handler {
  return (req, res) => {
    if (pathOf(req).pathname !== '/ready') {
      send(res, 404, 'not found\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'method not allowed\n');
      return;
    }
    if (isReady()) send(res, 200, 'ready\n');
    else send(res, 503, 'not ready: waiting for the Kubernetes informers to sync\n');
  };
}

export function metricsHandler(registry: Registry): Handler {
  return async (req, res) => {
    const p = pathOf(req).pathname;
    if (p !== '/metrics' && p !== '/stats/prometheus') {
      send(res, 404, 'not found\n');
      return;
    }
    send(res, 200, await registry.metrics(), registry.contentType);
  };
}

export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

export interface DebugSources {
  readonly syncz: () => ConnectionStatus[];
  readonly resources: ResourceSource;
}

export function debugHandler(sources: DebugSources): Handler {
  return (req, res) => {
    if (!isLoopback(req.socket.remoteAddress)) {
      send(res, 403, 'debug endpoints are served to localhost only\n');
      return;
    }
    const url = pathOf(req);
    const json = (v: unknown): void => {
      send(res, 200, `${JSON.stringify(v, null, 2)}\n`, 'application/json');
    };
    switch (url.pathname) {
      case '/debug/syncz': {
        json(sources.syncz());
        return;
      }
      case '/debug/wds': {
        const t = url.searchParams.get('type') ?? 'address';
        const typeUrl: WdsTypeUrl | undefined =
          t === 'address' ? TypeUrls.ADDRESS : t === 'authorization' ? TypeUrls.AUTHORIZATION : undefined;
        if (typeUrl === undefined) {
          send(res, 400, 'type must be "address" or "authorization"\n');
          return;
        }
        const name = url.searchParams.get('name');
        const all = [...sources.resources.resources(typeUrl).values()];
        const picked = name === null ? all : all.filter(r => r.name === name);
        json(picked.map(r => ({ name: r.name, version: r.version, value: renderForDebug(r.value) })));
        return;
      }
      default: {
        send(res, 404, 'debug views: /debug/syncz, /debug/wds?type=address|authorization[&name=]\n');
        return;
      }
    }
  };
}

/** Serves `handler` on `address`; errors in the handler become 500s and are logged. */
export async function startHttpServer(
  address: ListenAddress,
  handler: Handler,
  logger: Logger,
): Promise<Server> {
  const server = createServer((req, res) => {
    Promise.resolve(handler(req, res)).catch((err: unknown) => {
      logger.error({ url: req.url, err: errorMessage(err) }, 'HTTP handler failed');
      if (!res.headersSent) send(res, 500, 'internal error\n');
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(address.port, address.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}
