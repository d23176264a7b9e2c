/**
 * What the DNS proxy does with one question, as a pure decision over ztunnel's WDS state
 * (upstream ztunnel's `dns/server.rs` `Store`):
 *
 * - A and AAAA for a known host are answered here: Services (`<svc>.<ns>.svc.<domain>` and its
 *   short forms), ServiceEntry hosts (exact and wildcard, with the VIPs istiod assigned), and pod
 *   hostnames of headless Services (`<pod>.<subdomain>.<ns>.svc.<domain>`);
 * - everything else (unknown hosts, other record types) is forwarded to the upstream resolvers,
 *   which give the NXDOMAIN for names nobody knows.
 *
 * The pod's own resolver has already applied its `search` list and `ndots` before the question
 * arrives (`resolverQueries` models that). So a question such as
 * `api.example.com.<ns>.svc.cluster.local` (a ServiceEntry host, expanded by the first search
 * domain because it has fewer dots than `ndots`) is recognised by stripping the search domain, and
 * answered with a CNAME to the host plus its addresses: one round trip instead of four.
 */
import type { ProxyStateReader } from '../state/proxy-state.ts';
import type { IpFamilies, Service, Workload } from '../state/types.ts';

/** TTL of every record answered from WDS (upstream's 30 s). */
export const DNS_ANSWER_TTL_SECONDS = 30;

export type DnsRecordType = 'A' | 'AAAA';

export type DnsAnswer =
  | { readonly type: 'CNAME'; readonly name: string; readonly data: string }
  | { readonly type: DnsRecordType; readonly name: string; readonly data: string };

/** Why a question goes upstream. */
export type ForwardReason = 'unsupported-type' | 'unknown-host';

export type DnsDecision =
  /** Authoritative answer; `answers` is empty (NODATA) when the host has no address of that family. */
  | {
      readonly kind: 'answer';
      readonly answers: readonly DnsAnswer[];
      readonly matched: { readonly kind: 'service' | 'pod'; readonly host: string };
    }
  | { readonly kind: 'forward'; readonly reason: ForwardReason };

/** The querying pod, as far as the answer depends on it. */
export interface DnsClient {
  readonly namespace: string;
  readonly network: string;
}

export interface DnsQuestion {
  /** As asked; case and a trailing dot are ignored. */
  readonly name: string;
  /** The record type as `dns-packet` names it (`A`, `AAAA`, `MX`, `UNKNOWN_65`, ...). */
  readonly type: string;
}

export interface ResolveContext {
  readonly client: DnsClient;
  /** The cluster domain, e.g. `cluster.local`. */
  readonly clusterDomain: string;
  /** The client's search domains; `podSearchDomains` unless configured otherwise. */
  readonly searchDomains: readonly string[];
}

/** The part of ztunnel's state the resolver reads. */
export type DnsStateView = Pick<ProxyStateReader, 'servicesByHostname' | 'endpoints'>;

/** The search list Kubernetes gives a pod in `namespace` (upstream assumes it per pod, too). */
export function podSearchDomains(namespace: string, clusterDomain: string): readonly string[] {
  return [`${namespace}.svc.${clusterDomain}`, `svc.${clusterDomain}`, clusterDomain];
}

/** Lower-cased, without the trailing dot; `''` for the root. */
export function normalizeName(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

function labels(name: string): string[] {
  return name === '' ? [] : name.split('.');
}

/**
 * The names the pod's resolver (glibc/musl `res_search`) sends, in order, for `name` with
 * `search` and `ndots`: a name ending in a dot is only tried as is; one with at least `ndots`
 * dots is tried as is first and then with each search domain; otherwise each search domain first
 * and the name as is last.
 */
export function resolverQueries(name: string, search: readonly string[], ndots: number): readonly string[] {
  if (name.endsWith('.')) return [normalizeName(name)];
  const bare = normalizeName(name);
  const expanded = search.map(domain => `${bare}.${normalizeName(domain)}`);
  const dots = bare.split('.').length - 1;
  return dots >= ndots ? [bare, ...expanded] : [...expanded, bare];
}

interface Alias {
  readonly name: string;
  /** Set when the alias came from stripping a search domain: the name the CNAME points to. */
  readonly stripped: string | undefined;
  /** Whether the alias may be a pod hostname of a headless Service. */
  readonly podHost: boolean;
}

/**
 * The Kubernetes FQDNs `name` may be short for, seen from `namespace` (upstream's
 * `to_kube_fqdns`), each with whether it has the shape of a pod hostname.
 */
export function kubeFqdns(
  name: string,
  namespace: string,
  clusterDomain: string,
): readonly { readonly name: string; readonly podHost: boolean }[] {
  const svcDomain = `svc.${clusterDomain}`;
  const nsDomain = `${namespace}.${svcDomain}`;
  const parts = labels(name);
  switch (parts.length) {
    case 1:
      return [{ name: `${name}.${nsDomain}`, podHost: false }];
    case 2:
      return [
        { name: `${name}.${svcDomain}`, podHost: false },
        { name: `${name}.${nsDomain}`, podHost: true },
      ];
    case 3: {
      const out: { name: string; podHost: boolean }[] = [];
      if (parts[2] === 'svc') out.push({ name: `${name}.${clusterDomain}`, podHost: false });
      out.push({ name: `${name}.${svcDomain}`, podHost: true });
      return out;
    }
    case 4:
      return parts[3] === 'svc' ? [{ name: `${name}.${clusterDomain}`, podHost: true }] : [];
    default:
      return [];
  }
}

/** The requested name, its Kubernetes expansions, and the same for each search domain stripped. */
function aliases(name: string, ctx: ResolveContext): readonly Alias[] {
  const out: Alias[] = [];
  const seen = new Set<string>();
  const add = (alias: Alias): void => {
    if (seen.has(alias.name)) return;
    seen.add(alias.name);
    out.push(alias);
  };
  const podHost = labels(name).length === 6;
  const { namespace } = ctx.client;
  add({ name, stripped: undefined, podHost });
  for (const fqdn of kubeFqdns(name, namespace, ctx.clusterDomain)) {
    add({ name: fqdn.name, stripped: undefined, podHost: fqdn.podHost });
  }
  for (const domain of ctx.searchDomains) {
    const suffix = `.${normalizeName(domain)}`;
    if (!name.endsWith(suffix) || name.length === suffix.length) continue;
    const stripped = name.slice(0, -suffix.length);
    add({ name: stripped, stripped, podHost });
    for (const fqdn of kubeFqdns(stripped, namespace, ctx.clusterDomain)) {
      add({ name: fqdn.name, stripped, podHost: fqdn.podHost });
    }
  }
  return out;
}

/** `a.b.c` → `a.b.c`, `*.b.c`, `*.c` (upstream's `get_wildcards`). */
export function wildcardsOf(name: string): readonly string[] {
  const parts = labels(name);
  const out = [name];
  for (let i = 0; i < parts.length - 1; i++) out.push(`*.${parts.slice(i + 1).join('.')}`);
  return out;
}

function isHeadlessKubeService(service: Service, clusterDomain: string): boolean {
  return service.addresses.length === 0 && service.hostname.endsWith(`.svc.${clusterDomain}`);
}

function pickService(services: readonly Service[], client: DnsClient): Service | undefined {
  return services.find(s => s.namespace === client.namespace) ?? services[0];
}

type Server =
  | { readonly kind: 'service'; readonly service: Service; readonly host: string }
  | { readonly kind: 'pod'; readonly workload: Workload; readonly host: string };

function findServer(
  name: string,
  ctx: ResolveContext,
  state: DnsStateView,
): { readonly server: Server; readonly alias: Alias; readonly wildcard: boolean } | undefined {
  for (const alias of aliases(name, ctx)) {
    for (const candidate of wildcardsOf(alias.name)) {
      const services = state
        .servicesByHostname(candidate)
        .filter(s => s.addresses.length > 0 || isHeadlessKubeService(s, ctx.clusterDomain));
      const service = pickService(services, ctx.client);
      if (service !== undefined) {
        return {
          server: { kind: 'service', service, host: candidate },
          alias,
          wildcard: candidate.startsWith('*.'),
        };
      }
    }
    if (alias.podHost) {
      const workload = findHeadlessPod(alias.name, ctx, state);
      if (workload !== undefined) {
        return { server: { kind: 'pod', workload, host: alias.name }, alias, wildcard: false };
      }
    }
  }
  return undefined;
}

/** `<pod>.<subdomain>.<ns>.svc.<domain>`: an endpoint of headless Service `<subdomain>` whose hostname is `<pod>`. */
function findHeadlessPod(name: string, ctx: ResolveContext, state: DnsStateView): Workload | undefined {
  const dot = name.indexOf('.');
  if (dot <= 0) return undefined;
  const podName = name.slice(0, dot);
  const serviceHost = name.slice(dot + 1);
  const candidates: Workload[] = [];
  for (const service of state.servicesByHostname(serviceHost)) {
    if (!isHeadlessKubeService(service, ctx.clusterDomain)) continue;
    for (const endpoint of state.endpoints(service.key)) {
      if (endpoint.workload.hostname === podName) candidates.push(endpoint.workload);
    }
  }
  return candidates.find(w => w.namespace === ctx.client.namespace) ?? candidates[0];
}

function isIpv6(address: string): boolean {
  return address.includes(':');
}

function familyMatches(address: string, type: DnsRecordType): boolean {
  return type === 'AAAA' ? isIpv6(address) : !isIpv6(address);
}

function familyAllowed(families: IpFamilies, type: DnsRecordType): boolean {
  if (families === 'IPV4_ONLY') return type === 'A';
  if (families === 'IPV6_ONLY') return type === 'AAAA';
  return true;
}

function addressesOf(
  server: Server,
  type: DnsRecordType,
  ctx: ResolveContext,
  state: DnsStateView,
): string[] {
  if (server.kind === 'pod') return server.workload.addresses.filter(a => familyMatches(a, type));
  const { service } = server;
  if (!familyAllowed(service.ipFamilies, type)) return [];
  if (service.addresses.length === 0) {
    // A headless Service: the first address of the right family of each endpoint.
    return state.endpoints(service.key).flatMap(e => {
      const ip = e.workload.addresses.find(a => familyMatches(a, type));
      return ip === undefined ? [] : [ip];
    });
  }
  return service.addresses
    .filter(vip => vip.network === ctx.client.network && familyMatches(vip.address, type))
    .map(vip => vip.address);
}

/** The decision for one question from `ctx.client`. */
export function resolveQuestion(
  question: DnsQuestion,
  ctx: ResolveContext,
  state: DnsStateView,
): DnsDecision {
  if (question.type !== 'A' && question.type !== 'AAAA')
    return { kind: 'forward', reason: 'unsupported-type' };
  const type: DnsRecordType = question.type;
  const requested = normalizeName(question.name);
  if (requested === '') return { kind: 'forward', reason: 'unknown-host' };
  const found = findServer(requested, ctx, state);
  if (found === undefined) return { kind: 'forward', reason: 'unknown-host' };
  const matched = { kind: found.server.kind, host: found.server.host };
  const addresses = addressesOf(found.server, type, ctx, state);
  if (addresses.length === 0) return { kind: 'answer', answers: [], matched };
  const answers: DnsAnswer[] = [];
  let recordName = requested;
  if (found.alias.stripped !== undefined && !found.wildcard) {
    answers.push({ type: 'CNAME', name: requested, data: found.alias.stripped });
    recordName = found.alias.stripped;
  }
  for (const data of addresses) answers.push({ type, name: recordName, data });
  return { kind: 'answer', answers, matched };
}
