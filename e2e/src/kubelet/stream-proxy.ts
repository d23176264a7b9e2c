// Forwards the kubelet API's streaming requests (exec, attach, portForward, run) from the TLS
// endpoint to the streaming server's unix socket, adding the target the kubelet resolved.
// Upgrades (SPDY/3.1, WebSocket) are relayed as bytes after the request head: the protocol is the
// streaming server's business, this file only picks the target and copies.
import type { IncomingMessage, ServerResponse } from 'node:http';
import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';

/** The paths the streaming server serves: /exec/…, /attach/…, /portForward/…, /run/…. */
export const STREAM_PATH = /^\/(exec|attach|portForward|run)\/([^/]+)\/([^/]+)(?:\/([^/]+))?(?:\/([^/]+))?$/;

/** What the kubelet knows about the target of a streaming request. */
export interface StreamTarget {
  /** The container's main process (exec, attach, run). */
  readonly pid?: number;
  /** The container's log file (attach). */
  readonly logFile?: string;
  /** The pod's network namespace file (portForward). */
  readonly netnsPath?: string;
}

export interface ParsedStreamPath {
  readonly verb: 'exec' | 'attach' | 'portForward' | 'run';
  readonly namespace: string;
  readonly pod: string;
  /** undefined for portForward. */
  readonly container: string | undefined;
}

/** Parses `/exec/<ns>/<pod>[/<uid>]/<container>` and `/portForward/<ns>/<pod>[/<uid>]`. */
export function parseStreamPath(pathname: string): ParsedStreamPath | undefined {
  const m = STREAM_PATH.exec(pathname);
  if (!m) return undefined;
  const [, verb, namespace, pod, a, b] = m as unknown as [
    string,
    ParsedStreamPath['verb'],
    string,
    string,
    string | undefined,
    string | undefined,
  ];
  if (verb === 'portForward')
    return b === undefined ? { verb, namespace, pod, container: undefined } : undefined;
  if (a === undefined) return undefined;
  return { verb, namespace, pod, container: b ?? a };
}

const TARGET_HEADERS = ['x-ambient-mesh-pid', 'x-ambient-mesh-log', 'x-ambient-mesh-netns'];

function targetHeaders(target: StreamTarget): Record<string, string> {
  const h: Record<string, string> = {};
  if (target.pid !== undefined) h['X-Ambient-Mesh-Pid'] = String(target.pid);
  if (target.logFile !== undefined) h['X-Ambient-Mesh-Log'] = target.logFile;
  if (target.netnsPath !== undefined) h['X-Ambient-Mesh-Netns'] = target.netnsPath;
  return h;
}

/** The request's headers minus any target header a client sent, plus the kubelet's. */
function headerLines(req: IncomingMessage, target: StreamTarget): string {
  const lines: string[] = [];
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (!TARGET_HEADERS.includes(raw[i]!.toLowerCase())) lines.push(`${raw[i]}: ${raw[i + 1]}`);
  }
  for (const [k, v] of Object.entries(targetHeaders(target))) lines.push(`${k}: ${v}`);
  return lines.join('\r\n');
}

/** Relays an upgrade request (exec/attach/portForward) to the streaming server on `socketPath`. */
export function relayUpgrade(
  req: IncomingMessage,
  client: Duplex,
  head: Buffer,
  socketPath: string,
  target: StreamTarget,
): void {
  const upstream = net.connect(socketPath);
  const fail = (): void => {
    upstream.destroy();
    client.destroy();
  };
  upstream.once('error', () => {
    if (!client.destroyed) client.end('HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\n\r\n');
  });
  client.once('error', fail);
  upstream.once('connect', () => {
    upstream.write(
      `${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/1.1\r\n${headerLines(req, target)}\r\n\r\n`,
    );
    if (head.length > 0) upstream.write(head);
    upstream.pipe(client);
    client.pipe(upstream);
  });
  upstream.once('close', () => client.destroy());
  client.once('close', () => upstream.destroy());
}

/** Relays a plain request (`POST /run/…`, or an exec without an upgrade, which gets its 400 there). */
export function relayRequest(
  req: IncomingMessage,
  res: ServerResponse,
  socketPath: string,
  target: StreamTarget,
): void {
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v !== undefined && !TARGET_HEADERS.includes(k)) headers[k] = v;
  }
  const upstream = http.request(
    { socketPath, method: req.method, path: req.url, headers: { ...headers, ...targetHeaders(target) } },
    up => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    },
  );
  upstream.on('error', e => {
    if (!res.headersSent) res.writeHead(502);
    res.end(`kubelet streaming server: ${e.message}\n`);
  });
  req.pipe(upstream);
}
