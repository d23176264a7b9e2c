import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import type http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { rfc3339Nano, readStamps, stampLines, type StampedLine } from './log-stamps.ts';
import {
  parseStreamPath,
  relayRequest,
  relayUpgrade,
  type ParsedStreamPath,
  type StreamTarget,
} from './stream-proxy.ts';

export interface LogLookup {
  /** Log file of a container, or undefined when the pod/container is unknown. */
  logFile(
    namespace: string,
    pod: string,
    container: string | undefined,
    previous: boolean,
  ): string | undefined;
  /** Whether the container is still running (follow mode ends when it is not). */
  isRunning(namespace: string, pod: string, container: string | undefined): boolean;
  /**
   * The target of an exec/attach/run (a running container) or portForward (a pod's netns), or a
   * message saying why there is none (answered 404).
   */
  streamTarget?(request: ParsedStreamPath): StreamTarget | string;
}

export interface LogServerOptions {
  readonly host: string;
  readonly port: number;
  readonly cert: string;
  readonly key: string;
  /** Clients (the apiserver) must present a cert from this CA. */
  readonly ca: string;
  /** The streaming server's unix socket (exec, attach, portForward, run); unset: those are 404. */
  readonly streamSocket?: string;
}

/**
 * The kubelet's HTTPS endpoint. `kubectl logs`: the apiserver proxies
 * `GET /containerLogs/<ns>/<pod>/<container>` here (query: follow, tailLines, previous, limitBytes,
 * sinceSeconds, sinceTime, timestamps; line times from log-stamps.ts).
 * `kubectl exec/attach/port-forward` (and `/run`): resolved to a target here, then relayed to
 * the streaming server (stream-proxy.ts).
 */
export function startLogServer(opts: LogServerOptions, lookup: LogLookup): Promise<https.Server> {
  const server = https.createServer(
    {
      cert: readFileSync(opts.cert),
      key: readFileSync(opts.key),
      ca: readFileSync(opts.ca),
      requestCert: true,
      rejectUnauthorized: true,
    },
    (req, res) => {
      const url = new URL(req.url ?? '/', 'https://kubelet');
      if (url.pathname === '/healthz') {
        res.end('ok');
        return;
      }
      const stream = streamRoute(url.pathname, opts, lookup);
      if (stream !== undefined) {
        if (typeof stream === 'string') res.writeHead(404).end(stream);
        else relayRequest(req, res, stream.socket, stream.target);
        return;
      }
      const m = /^\/containerLogs\/([^/]+)\/([^/]+)(?:\/([^/]+))?$/.exec(url.pathname);
      if (!m) {
        res
          .writeHead(404)
          .end('the local kubelet serves /containerLogs, /exec, /attach, /portForward, /run and /healthz\n');
        return;
      }
      const [, ns, pod, container] = m as unknown as [string, string, string, string | undefined];
      const previous = url.searchParams.get('previous') === 'true';
      const file = lookup.logFile(ns, pod, container, previous);
      if (file === undefined || !existsSync(file)) {
        res
          .writeHead(404)
          .end(`no logs for ${ns}/${pod}/${container ?? ''}${previous ? ' (previous)' : ''}\n`);
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain' });
      serveLog(res, file, parseLogQuery(url.searchParams, Date.now()), () =>
        lookup.isRunning(ns, pod, container),
      );
    },
  );
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'https://kubelet');
    const stream = streamRoute(url.pathname, opts, lookup);
    if (stream === undefined || typeof stream === 'string') {
      const body = stream ?? `no upgrade at ${url.pathname}\n`;
      socket.end(
        `HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
      return;
    }
    relayUpgrade(req, socket, head, stream.socket, stream.target);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      resolve(server);
    });
  });
}

/** The kubelet's log query parameters (what `kubectl logs` sends). */
export interface LogQuery {
  readonly follow: boolean;
  /** -1: all lines. */
  readonly tailLines: number;
  /** Epoch ms; lines written earlier are skipped. */
  readonly since: number | undefined;
  readonly timestamps: boolean;
  readonly limitBytes: number | undefined;
}

export function parseLogQuery(q: URLSearchParams, now: number): LogQuery {
  const num = (k: string): number | undefined => {
    const v = q.get(k);
    return v === null || v === '' || !Number.isFinite(Number(v)) ? undefined : Number(v);
  };
  const sinceSeconds = num('sinceSeconds');
  const sinceTime = q.get('sinceTime');
  const since =
    sinceSeconds !== undefined
      ? now - sinceSeconds * 1000
      : sinceTime !== null && !Number.isNaN(Date.parse(sinceTime))
        ? Date.parse(sinceTime)
        : undefined;
  return {
    follow: q.get('follow') === 'true',
    tailLines: num('tailLines') ?? -1,
    since,
    timestamps: q.get('timestamps') === 'true',
    limitBytes: num('limitBytes'),
  };
}

/** Writes a container log per `query`; follows it while `running()` says the container runs. */
function serveLog(res: http.ServerResponse, file: string, query: LogQuery, running: () => boolean): void {
  let budget = query.limitBytes ?? Infinity;
  const emit = (lines: readonly StampedLine[]): boolean => {
    for (const l of lines) {
      const text = query.timestamps ? `${rfc3339Nano(l.time)} ${l.text}` : l.text;
      const bytes = Buffer.from(text);
      if (bytes.length >= budget) {
        res.end(bytes.subarray(0, budget));
        return false;
      }
      budget -= bytes.length;
      res.write(bytes);
    }
    return true;
  };
  const read = (from: number): Buffer => {
    const size = statSync(file, { throwIfNoEntry: false })?.size ?? from;
    if (size <= from) return Buffer.alloc(0);
    const fd = openSync(file, 'r');
    try {
      const buf = Buffer.alloc(size - from);
      const n = readSync(fd, buf, 0, buf.length, from);
      return buf.subarray(0, n);
    } finally {
      closeSync(fd);
    }
  };
  /** Complete lines from `from`; with `flush`, a last line without newline too. */
  const linesFrom = (from: number, flush: boolean): { lines: StampedLine[]; next: number } => {
    const data = read(from);
    const now = Date.now();
    const { lines, consumed } = stampLines(data, from, readStamps(file), now);
    if (flush && consumed < data.length) {
      lines.push({ text: data.subarray(consumed).toString('utf8'), end: from + data.length, time: now });
      return { lines, next: from + data.length };
    }
    return { lines, next: from + consumed };
  };
  const first = linesFrom(0, !query.follow);
  let lines = first.lines;
  if (query.since !== undefined) lines = lines.filter(l => l.time >= query.since!);
  if (query.tailLines >= 0) lines = query.tailLines === 0 ? [] : lines.slice(-query.tailLines);
  if (!emit(lines)) return;
  if (!query.follow) {
    res.end();
    return;
  }
  const step = (from: number): void => {
    if (res.destroyed) return;
    const alive = running();
    const next = linesFrom(from, !alive);
    if (!emit(next.lines)) return;
    if (!alive) {
      res.end();
      return;
    }
    setTimeout(() => {
      step(next.next);
    }, 250);
  };
  step(first.next);
}

/** A streaming request's socket and target; a message for a 404; undefined when not a streaming path. */
function streamRoute(
  pathname: string,
  opts: LogServerOptions,
  lookup: LogLookup,
): { socket: string; target: StreamTarget } | string | undefined {
  const parsed = parseStreamPath(pathname);
  if (parsed === undefined) return undefined;
  if (opts.streamSocket === undefined || lookup.streamTarget === undefined) {
    return `the kubelet streaming server is not running on this node, so /${parsed.verb} is unavailable\n`;
  }
  const target = lookup.streamTarget(parsed);
  return typeof target === 'string' ? `${target}\n` : { socket: opts.streamSocket, target };
}

export function serverPort(server: https.Server): number {
  return (server.address() as AddressInfo).port;
}
