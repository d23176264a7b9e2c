/**
 * The upstream resolvers of the DNS proxy, read from a `resolv.conf` (by default ztunnel's own
 * `/etc/resolv.conf`, which in a cluster points at the cluster DNS, as upstream ztunnel does).
 * Only what forwarding needs is kept: the nameservers, `timeout` and `attempts`; the search list
 * and `ndots` are applied by each pod's own resolver before its question reaches the proxy.
 */
import { isIP } from 'node:net';

export interface Nameserver {
  readonly host: string;
  readonly port: number;
}

export interface UpstreamResolvers {
  readonly nameservers: readonly Nameserver[];
  /** Per-try wait for an answer (resolv.conf `options timeout:`, default 5 s, max 30). */
  readonly timeoutMs: number;
  /** Rounds over all nameservers (resolv.conf `options attempts:`, default 2, max 5). */
  readonly attempts: number;
  /** `search` as written (informational: /config_dump, logs). */
  readonly search: readonly string[];
  /** Lines that were ignored, with why. */
  readonly problems: readonly string[];
}

const MAX_NAMESERVERS = 3;

function boundedInt(text: string, min: number, max: number): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  return Math.min(max, Math.max(min, Number(text)));
}

/** Parses resolv.conf text; unknown or bad lines are listed in `problems`, never thrown. */
export function parseResolvConf(text: string): UpstreamResolvers {
  const nameservers: Nameserver[] = [];
  const problems: string[] = [];
  let search: string[] = [];
  let timeoutMs = 5_000;
  let attempts = 2;
  for (const [index, raw] of text.split('\n').entries()) {
    const line = raw.replace(/[#;].*$/, '').trim();
    if (line === '') continue;
    const [keyword = '', ...args] = line.split(/\s+/);
    if (keyword === 'nameserver') {
      const host = (args[0] ?? '').replace(/%.*$/, '');
      if (isIP(host) === 0)
        problems.push(`line ${index + 1}: nameserver '${args[0] ?? ''}' is not an IP address`);
      else if (nameservers.length < MAX_NAMESERVERS) nameservers.push({ host, port: 53 });
    } else if (keyword === 'search' || keyword === 'domain') {
      search = args;
    } else if (keyword === 'options') {
      for (const option of args) {
        const [name = '', value = ''] = option.split(':');
        if (name === 'timeout') timeoutMs = (boundedInt(value, 1, 30) ?? 5) * 1000;
        else if (name === 'attempts') attempts = boundedInt(value, 1, 5) ?? 2;
      }
    }
  }
  return { nameservers, timeoutMs, attempts, search, problems };
}
