/**
 * Upstream connections: an undici `Pool` per endpoint whose `connect` opens an HBONE tunnel
 * (mTLS with the waypoint's identity to `<endpoint>:15008`, CONNECT `<endpoint ip>:<port>`;
 * the endpoint must present its SPIFFE ID from the metadata, else any ID of the trust domain). undici speaks HTTP/1.1 inside the tunnel; the
 * HBONE client pools the HTTP/2 connections under it. `max_connections` bounds each pool.
 */
import type { Duplex } from 'node:stream';
import { Pool } from 'undici';
import type { Dispatcher } from 'undici';
import type { HboneClient, HboneIdentity } from '@ambient-mesh/hbone';
import type { Endpoint } from '../config/types.ts';

export interface UpstreamOptions {
  readonly hbone: HboneClient;
  /** The waypoint's own identity, presented to every upstream; read per connection (rotation). */
  readonly identity: () => HboneIdentity;
  /** The mesh's trust domain: an endpoint without `istio.identity` may present any ID in it. */
  readonly trustDomain: string;
  /** Idle pooled HTTP/1.1 connections are closed after this long (default 30 s). */
  readonly keepAliveMs?: number;
}

export class EndpointIdentityMissingError extends Error {
  readonly code = 'WAYPOINT_ENDPOINT_IDENTITY_MISSING';
  constructor(endpoint: string) {
    super(
      `endpoint ${endpoint} has no SPIFFE identity (endpoint metadata istio.identity); the waypoint cannot verify it`,
    );
  }
}

/** Opens the HBONE tunnel to an endpoint: a Duplex carrying the endpoint's plaintext. */
export function tunnelTo(options: UpstreamOptions, endpoint: Endpoint): Promise<Duplex> {
  const host = endpoint.hboneAddress.includes(':') ? `[${endpoint.hboneAddress}]` : endpoint.hboneAddress;
  const target = endpoint.address.includes(':')
    ? `[${endpoint.address}]:${endpoint.port}`
    : `${endpoint.address}:${endpoint.port}`;
  return options.hbone.connect({
    target,
    nextHop: `${host}:${endpoint.hbonePort}`,
    identity: options.identity(),
    // Upstream's waypoint accepts any identity of the trust domain; a known one is pinned.
    expectedIdentities: [endpoint.identity ?? `spiffe://${options.trustDomain}/*`],
  });
}

/** The pool key of an endpoint: next hop, authority and expected identity. */
export function poolKey(endpoint: Endpoint): string {
  return `${endpoint.hboneAddress}:${endpoint.hbonePort}|${endpoint.address}:${endpoint.port}|${endpoint.identity ?? ''}`;
}

export class UpstreamPools {
  readonly #options: UpstreamOptions;
  readonly #pools = new Map<string, { pool: Pool; connections: number }>();

  constructor(options: UpstreamOptions) {
    this.#options = options;
  }

  /** The pool of `endpoint`, created on first use with at most `connections` connections. */
  pool(endpoint: Endpoint, connections: number): Dispatcher & { readonly stats: Pool['stats'] } {
    const key = poolKey(endpoint);
    const existing = this.#pools.get(key);
    if (existing !== undefined && existing.connections === connections) return existing.pool;
    if (existing !== undefined) void existing.pool.close().catch(() => undefined);
    const origin = `http://${endpoint.address.includes(':') ? `[${endpoint.address}]` : endpoint.address}:${endpoint.port}`;
    const pool = new Pool(origin, {
      connections,
      pipelining: 1,
      keepAliveTimeout: this.#options.keepAliveMs ?? 30_000,
      connect: (_opts, callback) => {
        tunnelTo(this.#options, endpoint).then(
          stream => {
            callback(null, stream as never);
          },
          (err: unknown) => {
            callback(err instanceof Error ? err : new Error(String(err)), null);
          },
        );
      },
    });
    this.#pools.set(key, { pool, connections });
    return pool;
  }

  /** Closes (gracefully) the pools of endpoints no longer in `keys`: called on config changes. */
  retain(keys: ReadonlySet<string>): void {
    for (const [key, entry] of this.#pools) {
      if (keys.has(key)) continue;
      this.#pools.delete(key);
      void entry.pool.close().catch(() => undefined);
    }
  }

  get size(): number {
    return this.#pools.size;
  }

  async close(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map(p => p.pool.destroy().catch(() => undefined)));
  }
}
