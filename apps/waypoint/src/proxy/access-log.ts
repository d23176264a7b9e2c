/**
 * Envoy's file access log for the HCM's `access_log` (Telemetry `accessLogging`): format strings
 * with Envoy's command operators, text or JSON, an optional CEL filter, written to a file or
 * `/dev/stdout` / `/dev/stderr` (`/dev/null`: nowhere).
 *
 * Operators: `%START_TIME%`, `%REQ(X?Y):N%`, `%RESP(X?Y):N%`, `%PROTOCOL%`, `%RESPONSE_CODE%`,
 * `%RESPONSE_FLAGS%`, `%RESPONSE_CODE_DETAILS%`, `%BYTES_RECEIVED%`, `%BYTES_SENT%`, `%DURATION%`,
 * `%UPSTREAM_HOST%`, `%UPSTREAM_CLUSTER%`, `%UPSTREAM_CLUSTER_RAW%`, `%DOWNSTREAM_LOCAL_ADDRESS%`,
 * `%DOWNSTREAM_REMOTE_ADDRESS%`, `%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%`,
 * `%DOWNSTREAM_PEER_URI_SAN%`, `%REQUESTED_SERVER_NAME%`, `%ROUTE_NAME%`,
 * `%DYNAMIC_METADATA(ns:key)%`, `%%`. Others (and values the request does not have) print `-`
 * (`null` in JSON).
 */
import { createWriteStream } from 'node:fs';
import type { WriteStream } from 'node:fs';
import { evaluateTelemetryCondition } from '@ambient-mesh/mesh-api';
import type { AttributeLookup } from '@ambient-mesh/mesh-api';
import type { AccessLogConfig } from '../config/types.ts';

/** What one completed request offers the access log and the Telemetry expressions. */
export interface AccessLogRecord {
  readonly startTime: Date;
  readonly method: string;
  /** The request target as received (path and query). */
  readonly path: string;
  readonly protocol: string;
  readonly requestHeaders: Readonly<Record<string, string | string[] | undefined>>;
  readonly responseHeaders: Readonly<Record<string, string | string[] | number | undefined>>;
  readonly responseCode: number;
  readonly responseFlags: string;
  readonly responseCodeDetails: string;
  readonly bytesReceived: number;
  readonly bytesSent: number;
  readonly durationMs: number;
  readonly upstreamHost: string | undefined;
  readonly upstreamCluster: string | undefined;
  readonly downstreamLocalAddress: string | undefined;
  readonly downstreamRemoteAddress: string | undefined;
  readonly downstreamPeer: string | undefined;
  readonly requestedServerName: string | undefined;
  readonly routeName: string | undefined;
  readonly scheme: string;
  readonly destinationPort: number | undefined;
  readonly dynamicMetadata: ReadonlyMap<string, Readonly<Record<string, unknown>>>;
}

const NUMERIC = new Set(['RESPONSE_CODE', 'BYTES_RECEIVED', 'BYTES_SENT', 'DURATION']);

type HeaderValue = string | string[] | number | undefined;

function header(h: Readonly<Record<string, HeaderValue>>, name: string): string | undefined {
  const v = h[name.toLowerCase()];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(',') : String(v);
}

/** A request header, with the pseudo-headers Envoy knows. */
function requestHeader(r: AccessLogRecord, name: string): string | undefined {
  switch (name.toLowerCase()) {
    case ':method':
      return r.method;
    case ':path':
      return r.path;
    case ':authority':
      return header(r.requestHeaders, 'host') ?? header(r.requestHeaders, ':authority');
    case ':scheme':
      return r.scheme;
    default:
      return header(r.requestHeaders, name);
  }
}

function withoutPort(address: string | undefined): string | undefined {
  if (address === undefined) return undefined;
  const m = /^\[(.*)\]:\d+$/.exec(address) ?? /^([^:]*):\d+$/.exec(address);
  return m?.[1] ?? address;
}

/** One command operator's value (undefined: Envoy's `-`). */
function operator(r: AccessLogRecord, command: string, arg: string | undefined): string | number | undefined {
  switch (command) {
    case 'START_TIME':
      return r.startTime.toISOString();
    case 'REQ':
    case 'RESP': {
      const [main = '', alt] = (arg ?? '').split('?');
      const get = (n: string) => (command === 'REQ' ? requestHeader(r, n) : header(r.responseHeaders, n));
      return get(main) ?? (alt === undefined ? undefined : get(alt));
    }
    case 'PROTOCOL':
      return r.protocol;
    case 'RESPONSE_CODE':
      return r.responseCode;
    case 'RESPONSE_FLAGS':
      return r.responseFlags;
    case 'RESPONSE_CODE_DETAILS':
      return r.responseCodeDetails === '' ? undefined : r.responseCodeDetails;
    case 'BYTES_RECEIVED':
      return r.bytesReceived;
    case 'BYTES_SENT':
      return r.bytesSent;
    case 'DURATION':
      return Math.round(r.durationMs);
    case 'UPSTREAM_HOST':
      return r.upstreamHost;
    case 'UPSTREAM_CLUSTER':
    case 'UPSTREAM_CLUSTER_RAW':
      return r.upstreamCluster;
    case 'DOWNSTREAM_LOCAL_ADDRESS':
      return r.downstreamLocalAddress;
    case 'DOWNSTREAM_REMOTE_ADDRESS':
      return r.downstreamRemoteAddress;
    case 'DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT':
      return withoutPort(r.downstreamRemoteAddress);
    case 'DOWNSTREAM_PEER_URI_SAN':
      return r.downstreamPeer === '' ? undefined : r.downstreamPeer;
    case 'REQUESTED_SERVER_NAME':
      return r.requestedServerName === '' ? undefined : r.requestedServerName;
    case 'ROUTE_NAME':
      return r.routeName === '' ? undefined : r.routeName;
    case 'DYNAMIC_METADATA': {
      const [ns = '', ...path] = (arg ?? '').split(':');
      let v: unknown = r.dynamicMetadata.get(ns);
      for (const key of path)
        v = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[key] : undefined;
      if (v === undefined || v === null) return undefined;
      return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean'
        ? String(v)
        : JSON.stringify(v);
    }
    default:
      return undefined;
  }
}

const OPERATOR = /%%|%([A-Z_]+)(?:\(([^)]*)\))?(?::(\d+))?%/g;

function truncate(v: string | number | undefined, max: string | undefined): string | number | undefined {
  if (max === undefined || typeof v !== 'string') return v;
  return v.slice(0, Number(max));
}

/** A text format string, each operator replaced (`-` for none). */
export function formatText(format: string, r: AccessLogRecord): string {
  return format.replace(
    OPERATOR,
    (all, command: string | undefined, arg: string | undefined, max: string | undefined) => {
      if (all === '%%') return '%';
      const v = truncate(operator(r, command!, arg), max);
      return v === undefined ? '-' : String(v);
    },
  );
}

/** A JSON line: a field that is one numeric operator stays a number, a missing one is null. */
export function formatJson(fields: Readonly<Record<string, string>>, r: AccessLogRecord): string {
  const out: Record<string, unknown> = {};
  for (const [key, format] of Object.entries(fields)) {
    const single = /^%([A-Z_]+)(?:\(([^)]*)\))?(?::(\d+))?%$/.exec(format);
    if (single !== null) {
      const v = truncate(operator(r, single[1]!, single[2]), single[3]);
      out[key] = v === undefined ? null : NUMERIC.has(single[1]!) ? Number(v) : v;
    } else out[key] = formatText(format, r);
  }
  return `${JSON.stringify(out)}\n`;
}

/** The attributes of Telemetry expressions, for one request. */
export function attributesOf(r: AccessLogRecord): AttributeLookup {
  return (name, key) => {
    switch (name) {
      case 'request.headers':
        return key === undefined ? undefined : requestHeader(r, key);
      case 'response.headers':
        return key === undefined ? undefined : header(r.responseHeaders, key);
      case 'request.host':
        return requestHeader(r, ':authority');
      case 'request.method':
        return r.method;
      case 'request.path':
        return r.path;
      case 'request.url_path': {
        const q = r.path.indexOf('?');
        return q < 0 ? r.path : r.path.slice(0, q);
      }
      case 'request.scheme':
        return r.scheme;
      case 'request.protocol':
        return r.protocol;
      case 'request.id':
        return header(r.requestHeaders, 'x-request-id');
      case 'response.code':
        return r.responseCode;
      case 'response.flags':
        return r.responseFlags;
      case 'response.code_details':
        return r.responseCodeDetails;
      case 'source.address':
        return withoutPort(r.downstreamRemoteAddress);
      case 'destination.port':
        return r.destinationPort;
      default:
        return undefined;
    }
  };
}

/** Writes access log lines to their files (opened once, appended to). */
export class AccessLogWriter {
  readonly #files = new Map<string, WriteStream>();

  /** Writes `r` to each configured log whose filter holds. */
  write(logs: readonly AccessLogConfig[], r: AccessLogRecord): void {
    let lookup: AttributeLookup | undefined;
    for (const log of logs) {
      if (log.path === '/dev/null') continue;
      if (log.filter !== undefined) {
        lookup ??= attributesOf(r);
        if (!evaluateTelemetryCondition(log.filter, lookup)) continue;
      }
      const line =
        log.format.kind === 'text' ? formatText(log.format.text, r) : formatJson(log.format.fields, r);
      this.#out(log.path, line);
    }
  }

  #out(path: string, line: string): void {
    if (path === '/dev/stdout') process.stdout.write(line);
    else if (path === '/dev/stderr') process.stderr.write(line);
    else {
      let stream = this.#files.get(path);
      if (stream === undefined) {
        stream = createWriteStream(path, { flags: 'a' });
        // A file that cannot be written loses its lines, never the request.
        stream.on('error', () => this.#files.delete(path));
        this.#files.set(path, stream);
      }
      stream.write(line);
    }
  }

  /** Closes the files (lines already written are flushed). */
  async close(): Promise<void> {
    const streams = [...this.#files.values()];
    this.#files.clear();
    await Promise.all(streams.map(s => new Promise<void>(resolve => s.end(resolve))));
  }
}
