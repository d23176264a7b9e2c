/**
 * The agent's end of the CNI plugin channel: HTTP over the unix socket `<run dir>/pluginevent.sock`,
 * `POST /cmdadd` with the upstream JSON body (docs/protocols.md#zds-enrolment). 200 means the pod is redirected (or not
 * selected for ambient); anything else fails the pod sandbox with the body as the reason.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { dirname } from 'node:path';
import { errorMessage } from '@ambient-mesh/errors';
import { PluginEventError } from './errors.ts';
import type { Logger } from '@ambient-mesh/runtime';
import type { AgentMetrics } from './metrics.ts';
import type { CniAddEvent, ReconcileOutcome } from './reconciler.ts';

const MAX_BODY = 64 * 1024;

/** Validates a `POST /cmdadd` body into a `CniAddEvent`. */
export function parsePluginEvent(body: string): CniAddEvent {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    throw new PluginEventError('the body is not JSON');
  }
  if (typeof raw !== 'object' || raw === null) throw new PluginEventError('the body is not a JSON object');
  const r = raw as Record<string, unknown>;
  for (const field of ['Netns', 'PodName', 'PodNamespace'] as const) {
    if (typeof r[field] !== 'string' || r[field] === '')
      throw new PluginEventError(`'${field}' must be a non-empty string`);
  }
  const ips: string[] = [];
  if (Array.isArray(r.IPs)) {
    for (const entry of r.IPs as unknown[]) {
      const ip = (entry as { Address?: { IP?: unknown } } | null)?.Address?.IP;
      if (typeof ip === 'string' && ip !== '') ips.push(ip);
    }
  }
  return {
    netnsPath: r.Netns as string,
    name: r.PodName as string,
    namespace: r.PodNamespace as string,
    ips,
  };
}

export interface PluginEventServer {
  readonly path: string;
  close(): Promise<void>;
}

/** Starts listening; resolves once the socket accepts connections. */
export async function startPluginEventServer(options: {
  readonly path: string;
  readonly handle: (event: CniAddEvent) => Promise<ReconcileOutcome>;
  readonly logger: Logger;
  readonly metrics: AgentMetrics;
}): Promise<PluginEventServer> {
  const { path, handle, logger, metrics } = options;
  const server: Server = createServer((req, res) => {
    const reply = (status: number, text: string): void => {
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' }).end(text);
    };
    if (req.method !== 'POST' || req.url !== '/cmdadd') {
      reply(404, 'only POST /cmdadd is served here\n');
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        reply(413, 'body too large\n');
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      let event: CniAddEvent;
      try {
        event = parsePluginEvent(Buffer.concat(chunks).toString('utf8'));
      } catch (err) {
        metrics.pluginEvents.inc({ result: 'invalid' });
        reply(400, `${errorMessage(err)}\n`);
        return;
      }
      void handle(event).then(
        outcome => {
          const pod = `${event.namespace}/${event.name}`;
          if (
            outcome.kind === 'enrolled' ||
            outcome.kind === 'not-enrolled' ||
            outcome.kind === 'unenrolled'
          ) {
            metrics.pluginEvents.inc({ result: outcome.kind });
            logger.debug({ pod, outcome: outcome.kind }, 'CNI ADD handled');
            reply(200, `${outcome.kind}\n`);
            return;
          }
          metrics.pluginEvents.inc({ result: 'failed' });
          const reason = outcome.kind === 'failed' ? outcome.error : outcome.reason;
          logger.warn({ pod, reason }, 'CNI ADD failed: the pod sandbox will be retried');
          reply(500, `pod ${pod} was not redirected: ${reason}\n`);
        },
        (err: unknown) => {
          metrics.pluginEvents.inc({ result: 'failed' });
          reply(500, `${errorMessage(err)}\n`);
        },
      );
    });
  });
  server.on('clientError', (_err, socket) => {
    socket.destroy();
  });
  mkdirSync(dirname(path), { recursive: true });
  rmSync(path, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  logger.info({ path }, 'listening for CNI plugin events');
  return {
    path,
    close: () =>
      new Promise<void>(resolve => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}
