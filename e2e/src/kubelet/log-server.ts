import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';

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
}

export interface LogServerOptions {
  readonly host: string;
  readonly port: number;
  readonly cert: string;
  readonly key: string;
  /** Clients (the apiserver) must present a cert from this CA. */
  readonly ca: string;
}

/**
 * The kubelet's read-only HTTPS endpoint used by `kubectl logs`: the apiserver proxies
 * `GET /containerLogs/<ns>/<pod>/<container>` here (query: follow, tailLines, previous, limitBytes).
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
      const m = /^\/containerLogs\/([^/]+)\/([^/]+)(?:\/([^/]+))?$/.exec(url.pathname);
      if (!m) {
        res.writeHead(404).end('the local kubelet serves /containerLogs and /healthz only\n');
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
      const tail = Number(url.searchParams.get('tailLines') ?? '-1');
      let start = 0;
      if (tail >= 0) {
        const text = readFileSync(file, 'utf8');
        const lines = text.split('\n');
        if (lines.at(-1) === '') lines.pop();
        const kept = tail === 0 ? [] : lines.slice(-tail);
        res.write(kept.length > 0 ? kept.join('\n') + '\n' : '');
        start = Buffer.byteLength(text);
      }
      const follow = url.searchParams.get('follow') === 'true';
      const pump = (from: number, done: (to: number) => void): void => {
        const size = statSync(file, { throwIfNoEntry: false })?.size ?? from;
        if (size <= from) {
          done(from);
          return;
        }
        const s = createReadStream(file, { start: from, end: size - 1 });
        s.on('data', chunk => res.write(chunk));
        s.on('end', () => {
          done(size);
        });
        s.on('error', () => {
          done(size);
        });
      };
      if (tail >= 0 && !follow) {
        res.end();
        return;
      }
      const step = (from: number): void => {
        pump(from, to => {
          if (!follow || res.destroyed || !lookup.isRunning(ns, pod, container)) {
            res.end();
            return;
          }
          setTimeout(() => {
            step(to);
          }, 300);
        });
      };
      step(start);
    },
  );
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      resolve(server);
    });
  });
}

export function serverPort(server: https.Server): number {
  return (server.address() as AddressInfo).port;
}
