/**
 * The access log (docs/protocols.md#ztunnel-access-log): pino records with component `access` and upstream's dotted field names.
 * JSON when `LOG_FORMAT=json`, like every other log line.
 */
import type { Logger } from '@ambient-mesh/runtime';

export type Direction = 'inbound' | 'outbound';

export interface ConnectionEnds {
  readonly 'src.addr': string;
  readonly 'src.workload'?: string | undefined;
  readonly 'src.namespace'?: string | undefined;
  /** Only set for mTLS. */
  readonly 'src.identity'?: string | undefined;
  /** The TCP next hop (e.g. `podIP:15008`). */
  readonly 'dst.addr': string;
  /** The CONNECT `:authority`. */
  readonly 'dst.hbone_addr'?: string | undefined;
  readonly 'dst.service'?: string | undefined;
  readonly 'dst.workload'?: string | undefined;
  readonly 'dst.namespace'?: string | undefined;
  readonly 'dst.identity'?: string | undefined;
  /**
   * Inbound to a workload with a waypoint (its own or its Service's): `from_waypoint` when the
   * peer is that waypoint, `bypassed` when it is not (policy decides; docs/waypoint.md).
   */
  readonly waypoint?: 'from_waypoint' | 'bypassed' | undefined;
  readonly direction: Direction;
}

export interface ConnectionResult {
  readonly bytesSent: number;
  readonly bytesRecv: number;
  readonly durationMs: number;
  readonly error?: string | undefined;
}

function defined(ends: ConnectionEnds): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(ends))
    if (typeof value === 'string' && value !== '') out[key] = value;
  return out;
}

export class AccessLog {
  readonly #logger: Logger;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  opened(ends: ConnectionEnds): void {
    // Checked first: at the default level the fields would be built for nothing on every connection.
    if (this.#logger.isLevelEnabled('debug')) this.#logger.debug(defined(ends), 'connection opened');
  }

  complete(ends: ConnectionEnds, result: ConnectionResult): void {
    const level = result.error === undefined ? 'info' : 'error';
    if (!this.#logger.isLevelEnabled(level)) return;
    const fields = {
      ...defined(ends),
      bytes_sent: result.bytesSent,
      bytes_recv: result.bytesRecv,
      duration: `${Math.round(result.durationMs)}ms`,
    };
    if (result.error === undefined) this.#logger.info(fields, 'connection complete');
    else this.#logger.error({ ...fields, error: result.error }, 'connection complete');
  }

  /** An early failure (e.g. policy denial before any upstream): only addresses and the error. */
  failed(ends: Pick<ConnectionEnds, 'src.addr' | 'dst.addr' | 'direction'>, error: string): void {
    this.#logger.warn(
      { 'src.addr': ends['src.addr'], 'dst.addr': ends['dst.addr'], direction: ends.direction, error },
      'connection failed',
    );
  }
}
