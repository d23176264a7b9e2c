/**
 * Options of the in-pod redirection and of the host probe SNAT, with their validation. Defaults
 * follow Istio 1.27: DNS capture on, inbound capture on, IPv4 and IPv6.
 */
import { isIP } from 'node:net';
import { DEFAULT_PROBE_SNAT_V4, DEFAULT_PROBE_SNAT_V6 } from './constants.ts';
import { InvalidRuleOptionsError } from './errors.ts';

export interface InpodRuleOptions {
  /** Redirect DNS (UDP and TCP port 53) to ztunnel's proxy on 15053. Default true. */
  readonly dnsCapture?: boolean;
  /** "Ingress mode" (`ambient.istio.io/bypass-inbound-capture`): no inbound redirect. Default false. */
  readonly bypassInboundCapture?: boolean;
  /** Interfaces whose inbound TCP is sent to the outbound listener (`istio.io/reroute-virtual-interfaces`). */
  readonly rerouteVirtualInterfaces?: readonly string[];
  /** Install the IPv4 rules. Default true. */
  readonly ipv4?: boolean;
  /** Install the IPv6 rules and the IPv6 local route. Default true. */
  readonly ipv6?: boolean;
  /** Source kubelet probes arrive from (host SNAT); they bypass ztunnel. */
  readonly probeSnatV4?: string;
  readonly probeSnatV6?: string;
}

/** How the host recognises kubelet's probe connections. */
export type KubeletMatch =
  /** By the uid owning the socket (`meta skuid`), as Istio's nftables backend does. */
  | { readonly kind: 'uid'; readonly uid: number }
  /** By the source being one of the host's own addresses (`fib saddr type local`). */
  | { readonly kind: 'local-source' };

export interface HostProbeOptions {
  readonly kubelet: KubeletMatch;
  readonly ipv4?: boolean;
  readonly ipv6?: boolean;
  readonly probeSnatV4?: string;
  readonly probeSnatV6?: string;
}

export interface ResolvedInpodOptions {
  readonly dnsCapture: boolean;
  readonly bypassInboundCapture: boolean;
  readonly rerouteVirtualInterfaces: readonly string[];
  readonly ipv4: boolean;
  readonly ipv6: boolean;
  readonly probeSnatV4: string;
  readonly probeSnatV6: string;
}

export interface ResolvedHostProbeOptions {
  readonly kubelet: KubeletMatch;
  readonly ipv4: boolean;
  readonly ipv6: boolean;
  readonly probeSnatV4: string;
  readonly probeSnatV6: string;
}

// Linux interface names: up to 15 bytes, no whitespace, '/' or quotes.
const IFNAME = /^[A-Za-z0-9_.:@+-]{1,15}$/;

function checkFamilies(ipv4: boolean, ipv6: boolean): void {
  if (!ipv4 && !ipv6)
    throw new InvalidRuleOptionsError('both ipv4 and ipv6 are off; enable at least one family');
}

function checkSnat(v4: string, v6: string): void {
  if (isIP(v4) !== 4) throw new InvalidRuleOptionsError(`probe SNAT address '${v4}' is not an IPv4 literal`);
  if (isIP(v6) !== 6) throw new InvalidRuleOptionsError(`probe SNAT address '${v6}' is not an IPv6 literal`);
}

/** Applies defaults and validates. */
export function resolveInpodOptions(options: InpodRuleOptions = {}): ResolvedInpodOptions {
  const resolved: ResolvedInpodOptions = {
    dnsCapture: options.dnsCapture ?? true,
    bypassInboundCapture: options.bypassInboundCapture ?? false,
    rerouteVirtualInterfaces: [...(options.rerouteVirtualInterfaces ?? [])],
    ipv4: options.ipv4 ?? true,
    ipv6: options.ipv6 ?? true,
    probeSnatV4: options.probeSnatV4 ?? DEFAULT_PROBE_SNAT_V4,
    probeSnatV6: options.probeSnatV6 ?? DEFAULT_PROBE_SNAT_V6,
  };
  checkFamilies(resolved.ipv4, resolved.ipv6);
  checkSnat(resolved.probeSnatV4, resolved.probeSnatV6);
  for (const name of resolved.rerouteVirtualInterfaces) {
    if (!IFNAME.test(name)) {
      throw new InvalidRuleOptionsError(
        `'${name}' is not a valid interface name (1-15 of A-Z a-z 0-9 _ . : @ + -)`,
      );
    }
  }
  return resolved;
}

/** Applies defaults and validates. */
export function resolveHostProbeOptions(options: HostProbeOptions): ResolvedHostProbeOptions {
  const resolved: ResolvedHostProbeOptions = {
    kubelet: options.kubelet,
    ipv4: options.ipv4 ?? true,
    ipv6: options.ipv6 ?? true,
    probeSnatV4: options.probeSnatV4 ?? DEFAULT_PROBE_SNAT_V4,
    probeSnatV6: options.probeSnatV6 ?? DEFAULT_PROBE_SNAT_V6,
  };
  checkFamilies(resolved.ipv4, resolved.ipv6);
  checkSnat(resolved.probeSnatV4, resolved.probeSnatV6);
  const k = resolved.kubelet;
  if (k.kind === 'uid' && (!Number.isInteger(k.uid) || k.uid < 0 || k.uid > 0xfffffffe)) {
    throw new InvalidRuleOptionsError(`kubelet uid ${k.uid} is not a valid uid`);
  }
  return resolved;
}
