/**
 * The ops HTTP server every app binds for readiness, `/metrics` and admin views.
 *
 * Routes match on the exact path (a `prefix` route also on the paths under it). An unknown path answers 404, a known path with another method
 * 405 (with `Allow`), and a `loopbackOnly` route 403 to any peer that is not the local host, so a
 * misconfigured bind cannot expose admin views. A handler that throws answers 500 and is logged.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Server as NetServer } from 'node:net';
import { errorMessage } from '@ambient-mesh/errors';
import type { Registry } from 'prom-client';
import { BindError } from './errors.ts';
import type { Logger } from './logger.ts';
import { isLoopbackAddress } from './parsers.ts';
import type { ListenAddress } from './parsers.ts';
import { Readiness } from './readiness.ts';

// Not `import { createServer } from 'node:http'`: an ES import of node:http builds the module's
// namespace, which reads its lazy `WebSocket`, `CloseEvent` and `MessageEvent` exports and so
// loads Node's bundled undici, 3.5 MiB of resident memory in every app that never uses it.
const { createServer } = process.getBuiltinModule('node:http');

export type RouteHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>;

export interface Route {
  /** The exact pathname, e.g. `/healthz/ready`. */
  readonly path: string;
  /** Allowed methods; default GET and HEAD. */
  readonly methods?: readonly string[];
  /** Refuse (403) peers that are not the local host. */
  readonly loopbackOnly?: boolean;
  /** Also match every path under `path/` (e.g. `/scopej/<name>`); exact routes win. */
  readonly prefix?: boolean;
  readonly handler: RouteHandler;
}

export interface OpsServerOptions {
  /** Names the listener in errors and logs (`admin`, `stats`, `readiness`). */
  readonly name: string;
  readonly address: ListenAddress;
  readonly routes: readonly Route[];
  readonly logger?: Logger;
  /** Builds the error a failed bind rejects with; default runtime's `BindError`. */
  readonly bindError?: BindErrorFactory;
}

/**
 * Makes an app's own bind error (its stable code, e.g. `ZTUNNEL_BIND_FAILED`) from the listener's
 * name, the `host:port` it tried and the socket error.
 */
export type BindErrorFactory = (listener: string, address: string, cause: unknown) => Error;

export interface BindOptions {
  /** Names the listener in the error (`admin`, `HBONE`). */
  readonly name: string;
  readonly address: ListenAddress;
  /** Default: runtime's `BindError` (`RUNTIME_BIND_FAILED`). */
  readonly bindError?: BindErrorFactory;
}

const runtimeBindError: BindErrorFactory = (listener, address, cause) =>
  new BindError(listener, address, { cause });

/**
 * Starts `server` (a `net`, `http` or `tls` server) listening on `address`; a failure (a taken
 * port, an address not on this host) rejects with `bindError(name, 'host:port', socketError)`.
 */
export async function bindServer(server: NetServer, options: BindOptions): Promise<AddressInfo> {
  const where = `${options.address.host}:${options.address.port}`;
  const makeError = options.bindError ?? runtimeBindError;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => {
      reject(makeError(options.name, where, err));
    };
    server.once('error', onError);
    server.listen(options.address.port, options.address.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  return server.address() as AddressInfo;
}

export interface OpsServer {
  readonly name: string;
  readonly server: Server;
  readonly address: AddressInfo;
  readonly port: number;
  /** Stops listening and closes open connections. Idempotent. */
  close(): Promise<void>;
}

export const TEXT_PLAIN = 'text/plain; charset=utf-8';

/** Writes a complete response with a length and no caching. */
export function reply(res: ServerResponse, status: number, body: string, contentType = TEXT_PLAIN): void {
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(body);
}

/** Serves a JSON document (pretty-printed, newline-terminated). */
export function replyJson(res: ServerResponse, status: number, value: unknown): void {
  reply(res, status, `${JSON.stringify(value, null, 2)}\n`, 'application/json');
}

const DEFAULT_METHODS = ['GET', 'HEAD'] as const;

/** The request dispatcher of an ops server, usable without a socket. */
export function dispatch(routes: readonly Route[], logger?: Logger): RouteHandler {
  const byPath = new Map<string, Route>();
  for (const route of routes) {
    if (byPath.has(route.path)) throw new Error(`duplicate ops route ${route.path}`);
    byPath.set(route.path, route);
  }
  const prefixed = routes.filter(r => r.prefix === true).sort((a, b) => b.path.length - a.path.length);
  const find = (path: string): Route | undefined =>
    byPath.get(path) ?? prefixed.find(r => path.startsWith(`${r.path}/`));
  return async (req, res, url) => {
    const route = find(url.pathname);
    if (route === undefined) {
      reply(res, 404, 'not found\n');
      return;
    }
    if (route.loopbackOnly === true && !isLoopbackAddress(req.socket.remoteAddress)) {
      reply(res, 403, `${route.path} is served to localhost only\n`);
      return;
    }
    const methods = route.methods ?? DEFAULT_METHODS;
    if (!methods.includes(req.method ?? 'GET')) {
      res.setHeader('allow', methods.join(', '));
      reply(res, 405, 'method not allowed\n');
      return;
    }
    try {
      await route.handler(req, res, url);
    } catch (err) {
      logger?.error({ path: url.pathname, err: errorMessage(err) }, 'ops handler failed');
      if (!res.headersSent) reply(res, 500, `internal error: ${errorMessage(err)}\n`);
      else res.destroy();
    }
  };
}

/**
 * The URL of a request target, with repeated slashes in its path collapsed as Go's ServeMux does
 * (istioctl asks for `//version` and `//debug/syncz`); a `//x` target is a path, never a host.
 */
export function requestUrl(target: string | undefined): URL {
  const raw = target ?? '/';
  const url = new URL(`http://localhost${raw.startsWith('/') ? '' : '/'}${raw}`);
  url.pathname = url.pathname.replace(/\/{2,}/g, '/');
  return url;
}

/**
 * Binds the server; rejects with `BindError` (`RUNTIME_BIND_FAILED`) naming the listener, or with
 * what `options.bindError` makes.
 */
export async function startOpsServer(options: OpsServerOptions): Promise<OpsServer> {
  const handle = dispatch(options.routes, options.logger);
  const server = createServer((req, res) => {
    void handle(req, res, requestUrl(req.url));
  });
  const address = await bindServer(server, options);
  let closing: Promise<void> | undefined;
  return {
    name: options.name,
    server,
    address,
    port: address.port,
    close: () =>
      (closing ??= new Promise(resolve => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      })),
  };
}

export interface ReadinessRouteOptions {
  /** Default `/ready`. */
  readonly path?: string;
  /** Status while not ready; default 503. */
  readonly notReadyStatus?: number;
  /** Body while not ready; default names the pending tasks of a `Readiness`. */
  readonly notReadyBody?: string;
}

/** `GET <path>`: 200 `ready`, or `notReadyStatus` listing what is pending. */
export function readinessRoute(
  readiness: Readiness | (() => boolean),
  options: ReadinessRouteOptions = {},
): Route {
  return {
    path: options.path ?? '/ready',
    handler: (_req, res) => {
      const ready = readiness instanceof Readiness ? readiness.ready : readiness();
      if (ready) {
        reply(res, 200, 'ready\n');
        return;
      }
      const body =
        options.notReadyBody ??
        (readiness instanceof Readiness
          ? `not ready, pending: ${readiness.pending().join(', ')}\n`
          : 'not ready\n');
      reply(res, options.notReadyStatus ?? 503, body);
    },
  };
}

/** `GET <path>`: always 200 `ok` while the process serves HTTP (liveness). */
export function livenessRoute(path = '/healthz'): Route {
  return {
    path,
    handler: (_req, res) => {
      reply(res, 200, 'ok\n');
    },
  };
}

/** Prometheus text of `registry` on each of `paths` (default `/metrics`). */
export function metricsRoutes(registry: Registry, paths: readonly string[] = ['/metrics']): Route[] {
  return paths.map(path => ({
    path,
    handler: async (_req, res) => {
      reply(res, 200, await registry.metrics(), registry.contentType);
    },
  }));
}
