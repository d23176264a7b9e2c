/**
 * ControlZ's logging-scope topic on istiod's debug port (127.0.0.1:9876, upstream's ControlZ port),
 * which `istioctl admin log` reaches through a port-forward:
 *
 *   GET /scopej          every scope: `[{name, description, output_level, stack_trace_level, log_callers}]`
 *   GET /scopej/<name>   one scope
 *   PUT /scopej/<name>   `{output_level?}` sets that scope's level; 202 with no body, as upstream
 *
 * A scope is a logging component (`xds`, `ca`, `kube`, ...; docs/operations.md#logs). Levels use
 * upstream's names: `none`, `error`, `warn`, `info`, `debug` (our `trace` shows as `debug`, `fatal` as
 * `error`). We keep no stack traces and no caller information: `stack_trace_level` is always `none`
 * and `log_callers` false; asking for anything else is a 400 that says so, not a silent no-op.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { reply, replyJson } from '@ambient-mesh/runtime';
import type { LogLevel, Logs, Route } from '@ambient-mesh/runtime';

export const CONTROLZ_SCOPES_PATH = '/scopej';
const MAX_BODY_BYTES = 64 * 1024;

/** A scope as ControlZ's JSON shows it. */
export interface ControlzScope {
  readonly name: string;
  readonly description: string;
  readonly output_level: string;
  readonly stack_trace_level: string;
  readonly log_callers: boolean;
}

const TO_UPSTREAM: Readonly<Record<LogLevel, string>> = {
  trace: 'debug',
  debug: 'debug',
  info: 'info',
  warn: 'warn',
  error: 'error',
  fatal: 'error',
  silent: 'none',
};

const FROM_UPSTREAM: Readonly<Record<string, LogLevel>> = {
  debug: 'debug',
  info: 'info',
  warn: 'warn',
  error: 'error',
  none: 'silent',
};

export type ScopeUpdate =
  | { readonly kind: 'ok'; readonly level: LogLevel | undefined }
  | { readonly kind: 'invalid'; readonly message: string };

/**
 * What a PUT body asks for: the level to set (undefined: leave it), or why it cannot be done.
 * Pure: the route applies the result.
 */
export function parseScopeUpdate(body: string): ScopeUpdate {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return { kind: 'invalid', message: 'the body is not JSON; send {"output_level":"debug"}' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { kind: 'invalid', message: 'the body must be a JSON object such as {"output_level":"debug"}' };
  }
  const fields = value as Record<string, unknown>;
  const output = fields.output_level ?? '';
  const stack = fields.stack_trace_level ?? '';
  if (typeof output !== 'string' || (output !== '' && FROM_UPSTREAM[output] === undefined)) {
    return {
      kind: 'invalid',
      message: `unknown output_level ${JSON.stringify(output)}; use one of none, error, warn, info, debug`,
    };
  }
  if (stack !== '' && stack !== 'none') {
    return {
      kind: 'invalid',
      message: `stack_trace_level ${JSON.stringify(stack)} is not supported: istiod keeps no stack traces (only "none")`,
    };
  }
  if (fields.log_callers === true) {
    return { kind: 'invalid', message: 'log_callers is not supported: istiod does not record callers' };
  }
  return { kind: 'ok', level: output === '' ? undefined : FROM_UPSTREAM[output] };
}

function scopeJson(logs: Logs, name: string): ControlzScope {
  return {
    name,
    description: `istiod's ${name} logs`,
    output_level: TO_UPSTREAM[logs.scopeLevel(name)],
    stack_trace_level: 'none',
    log_callers: false,
  };
}

function hasScope(logs: Logs, name: string): boolean {
  return logs.scopes().some(s => s.name === name);
}

async function readBody(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function unknownScope(res: ServerResponse, logs: Logs, name: string): void {
  const known = logs
    .scopes()
    .map(s => s.name)
    .join(', ');
  reply(res, 400, `unknown scope name: ${name} (scopes: ${known})\n`);
}

/** `/scopej` and `/scopej/<name>` for istiod's loggers; loopback-only like the other debug views. */
export function controlzScopeRoutes(logs: Logs): Route[] {
  return [
    {
      path: CONTROLZ_SCOPES_PATH,
      prefix: true,
      loopbackOnly: true,
      methods: ['GET', 'HEAD', 'PUT'],
      handler: async (req, res, url) => {
        const name = decodeURIComponent(
          url.pathname.slice(CONTROLZ_SCOPES_PATH.length).replace(/^\/|\/$/g, ''),
        );
        if (name === '') {
          if (req.method === 'PUT') {
            res.setHeader('allow', 'GET, HEAD');
            reply(res, 405, `PUT ${CONTROLZ_SCOPES_PATH}/<scope> to change one scope\n`);
            return;
          }
          replyJson(
            res,
            200,
            logs.scopes().map(s => scopeJson(logs, s.name)),
          );
          return;
        }
        if (!hasScope(logs, name)) {
          unknownScope(res, logs, name);
          return;
        }
        if (req.method !== 'PUT') {
          replyJson(res, 200, scopeJson(logs, name));
          return;
        }
        const body = await readBody(req);
        if (body === undefined) {
          reply(res, 413, `the body is larger than ${MAX_BODY_BYTES} bytes\n`);
          return;
        }
        const update = parseScopeUpdate(body);
        if (update.kind === 'invalid') {
          reply(res, 400, `${update.message}\n`);
          return;
        }
        if (update.level !== undefined) logs.setScopeLevel(name, update.level);
        res.writeHead(202, { 'content-length': 0, 'cache-control': 'no-store' });
        res.end();
      },
    },
  ];
}
