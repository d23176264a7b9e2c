/**
 * Endpoints of `STRICT_DNS` and `LOGICAL_DNS` clusters: the waypoint resolves the hostnames of
 * the cluster's inline `load_assignment` with Node's resolver (`dns.lookup`, so `/etc/hosts` and
 * the pod's resolv.conf apply, as for Envoy's default resolver in a pod), honouring
 * `dns_lookup_family`, and resolves them again every `dns_refresh_rate`.
 *
 * `STRICT_DNS`: every address of every host is an endpoint (balanced by the cluster's LB
 * policy, with the host's weight). `LOGICAL_DNS`: only the first address of the first host, as
 * Envoy (new connections go to whatever that address is at the time). A host whose lookup fails
 * keeps its previous addresses (Envoy keeps its hosts on a failed refresh); one that never
 * resolved contributes none, so requests get 503 `UH` until it does.
 *
 * These endpoints are outside the mesh: they are marked `plaintext` (plain TCP, no HBONE).
 * `sync` is called with each new cluster snapshot; this class is the only writer of the
 * resolved endpoints, which it publishes as immutable arrays.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Logger } from '@ambient-mesh/runtime';
import { errorMessage } from '@ambient-mesh/errors';
import type { ClusterConfig, DnsHost, DnsLookupFamily, Endpoint } from '../config/types.ts';

export interface ResolvedAddress {
  readonly address: string;
  readonly family: number;
}

/** Every address of `host` (`dns.lookup` with `all: true`, both families). */
export type LookupAll = (host: string) => Promise<readonly ResolvedAddress[]>;

const defaultLookup: LookupAll = host => dnsLookup(host, { all: true, family: 0 });

/** Pure: the addresses `family` takes from a lookup's results (Envoy's `dns_lookup_family`). */
export function addressesFor(results: readonly ResolvedAddress[], family: DnsLookupFamily): string[] {
  const v4 = results.filter(r => r.family === 4).map(r => r.address);
  const v6 = results.filter(r => r.family === 6).map(r => r.address);
  switch (family) {
    case 'v4-only':
      return v4;
    case 'v6-only':
      return v6;
    // Envoy's AUTO: IPv6 when there is any, else IPv4.
    case 'auto':
      return v6.length > 0 ? v6 : v4;
    case 'v4-preferred':
      return v4.length > 0 ? v4 : v6;
    case 'all':
      return [...v4, ...v6];
  }
}

/** Pure: the endpoints of a DNS cluster given each host's addresses (same order as `hosts`). */
export function dnsEndpoints(
  mode: 'strict' | 'logical',
  hosts: readonly DnsHost[],
  addresses: readonly (readonly string[])[],
): Endpoint[] {
  const out: Endpoint[] = [];
  for (const [i, host] of hosts.entries()) {
    for (const address of addresses[i] ?? []) {
      out.push({
        address,
        port: host.port,
        hboneAddress: address,
        hbonePort: host.port,
        weight: host.weight,
        healthy: true,
        identity: undefined,
        workload: undefined,
        plaintext: true,
      });
      if (mode === 'logical') return out;
    }
    if (mode === 'logical') return out;
  }
  return out;
}

interface Entry {
  readonly signature: string;
  readonly cluster: ClusterConfig;
  endpoints: readonly Endpoint[] | undefined;
  addresses: (readonly string[])[];
  readonly first: Promise<void>;
  timer: NodeJS.Timeout | undefined;
  closed: boolean;
}

export interface DnsClustersOptions {
  readonly logger: Logger;
  readonly lookup?: LookupAll;
  /** Called after a cluster's endpoints changed. */
  readonly onChange?: () => void;
}

export class DnsClusters {
  readonly #o: DnsClustersOptions;
  readonly #lookup: LookupAll;
  readonly #entries = new Map<string, Entry>();
  /** Lookups done (for tests and stats). */
  resolutions = 0;

  constructor(options: DnsClustersOptions) {
    this.#o = options;
    this.#lookup = options.lookup ?? defaultLookup;
  }

  /** Starts resolving new or changed DNS clusters and stops those that left. */
  sync(clusters: ReadonlyMap<string, ClusterConfig>): void {
    const live = new Set<string>();
    for (const cluster of clusters.values()) {
      const d = cluster.discovery;
      if (d.kind !== 'dns') continue;
      live.add(cluster.name);
      const signature = JSON.stringify([d.mode, d.hosts, d.family, d.refreshMs]);
      const existing = this.#entries.get(cluster.name);
      if (existing?.signature === signature) continue;
      if (existing !== undefined) this.#stop(existing);
      let resolveFirst: () => void = () => undefined;
      const entry: Entry = {
        signature,
        cluster,
        endpoints: undefined,
        addresses: d.hosts.map(() => []),
        first: new Promise<void>(resolve => {
          resolveFirst = resolve;
        }),
        timer: undefined,
        closed: false,
      };
      this.#entries.set(cluster.name, entry);
      void this.#refresh(entry).finally(resolveFirst);
    }
    for (const [name, entry] of this.#entries) {
      if (live.has(name)) continue;
      this.#entries.delete(name);
      this.#stop(entry);
    }
  }

  /** The cluster's resolved endpoints, once its first resolution finished. */
  endpoints(name: string): readonly Endpoint[] | undefined {
    return this.#entries.get(name)?.endpoints;
  }

  /** The cluster's endpoints, waiting for its first resolution when it has not finished. */
  async ready(name: string): Promise<readonly Endpoint[]> {
    const entry = this.#entries.get(name);
    if (entry === undefined) return [];
    if (entry.endpoints === undefined) await entry.first;
    return entry.endpoints ?? [];
  }

  /** Every resolved endpoint of every DNS cluster (for the connection pools to keep). */
  *all(): Iterable<Endpoint> {
    for (const entry of this.#entries.values()) yield* entry.endpoints ?? [];
  }

  close(): void {
    for (const entry of this.#entries.values()) this.#stop(entry);
    this.#entries.clear();
  }

  #stop(entry: Entry): void {
    entry.closed = true;
    clearTimeout(entry.timer);
  }

  async #refresh(entry: Entry): Promise<void> {
    const d = entry.cluster.discovery;
    if (d.kind !== 'dns') return;
    // A LOGICAL_DNS cluster uses its first host only.
    const hosts = d.mode === 'logical' ? d.hosts.slice(0, 1) : d.hosts;
    const next = await Promise.all(
      hosts.map(async (host, i) => {
        if (isIP(host.host) !== 0) return [host.host];
        try {
          this.resolutions++;
          return addressesFor(await this.#lookup(host.host), d.family);
        } catch (err) {
          this.#o.logger.warn(
            { cluster: entry.cluster.name, host: host.host, err: errorMessage(err) },
            'DNS resolution failed; keeping the previous addresses',
          );
          return entry.addresses[i] ?? [];
        }
      }),
    );
    if (entry.closed) return;
    const changed = JSON.stringify(next) !== JSON.stringify(entry.addresses) || entry.endpoints === undefined;
    entry.addresses = next;
    if (changed) {
      entry.endpoints = Object.freeze(dnsEndpoints(d.mode, hosts, next));
      this.#o.logger.debug(
        { cluster: entry.cluster.name, endpoints: entry.endpoints.map(e => `${e.address}:${e.port}`) },
        'DNS cluster resolved',
      );
      this.#o.onChange?.();
    }
    entry.timer = setTimeout(() => {
      void this.#refresh(entry);
    }, d.refreshMs);
    entry.timer.unref();
  }
}
