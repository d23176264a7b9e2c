/**
 * AuthorizationPolicies with `action: CUSTOM` to Envoy `ext_authz` (pure), as upstream's authz
 * builder does. Per provider (sorted by name):
 * - an RBAC filter in shadow mode (`shadow_rules`, action DENY, stat prefix `istio_ext_authz_`)
 *   whose policies are named `istio-ext-authz-<provider>-ns[<ns>]-policy[<name>]-rule[<i>]`: a
 *   matching request gets the dynamic metadata `envoy.filters.http.rbac` →
 *   `istio_ext_authz_shadow_effective_policy_id` = that name;
 * - an `envoy.filters.http.ext_authz` filter enabled by that metadata (`filter_enabled_metadata`,
 *   prefix `istio-ext-authz-<provider>`), calling the provider's service through the cluster
 *   `outbound|<port>||<host>` (HTTP service or Envoy gRPC service).
 * A provider that is unknown or invalid gives an RBAC DENY filter with the policies' rules
 * (names suffixed `-deny-due-to-bad-CUSTOM-action`): the requests they match are denied.
 * Providers come from meshConfig `extensionProviders` (`envoyExtAuthzHttp`, `envoyExtAuthzGrpc`).
 */
import type { AuthorizationPolicy } from '@ambient-mesh/policy-engine';
import { duration } from './envoy-protos.ts';
import { RBAC_FILTER, rbacPolicies } from './translate-rbac.ts';

export const EXT_AUTHZ_FILTER = 'envoy.filters.http.ext_authz';
export const EXT_AUTHZ_SHADOW_PREFIX = 'istio_ext_authz_';
export const EXT_AUTHZ_MATCH_PREFIX = 'istio-ext-authz';
export const BAD_CUSTOM_SUFFIX = '-deny-due-to-bad-CUSTOM-action';
/** Upstream's default check timeout (600s). */
export const DEFAULT_EXT_AUTHZ_TIMEOUT_MS = 600_000;

export interface ExtAuthzProvider {
  readonly name: string;
  readonly kind: 'http' | 'grpc';
  /** `<host>` or `<namespace>/<host>`. */
  readonly service: string;
  readonly port: number;
  readonly timeoutMs: number;
  readonly failOpen: boolean;
  readonly statusOnError: number | undefined;
  readonly pathPrefix: string | undefined;
  readonly includeRequestHeadersInCheck: readonly string[];
  readonly headersToUpstreamOnAllow: readonly string[];
  readonly headersToDownstreamOnDeny: readonly string[];
  readonly headersToDownstreamOnAllow: readonly string[];
}

export type ProviderEntry = { ok: true; provider: ExtAuthzProvider } | { ok: false; error: string };

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A protobuf JSON duration (`"10s"`, `"0.5s"`, `"250ms"`) in milliseconds. */
export function parseDurationMs(v: unknown): number | undefined {
  if (typeof v !== 'string') return undefined;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(v.trim());
  if (m === null) return undefined;
  const n = Number(m[1]);
  const unit = m[2] === 'ms' ? 1 : m[2] === 's' ? 1000 : m[2] === 'm' ? 60_000 : 3_600_000;
  return Math.round(n * unit);
}

function strings(v: unknown, field: string, errors: string[]): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some(x => typeof x !== 'string')) {
    errors.push(`${field} must be a list of strings`);
    return [];
  }
  for (const x of v as string[])
    if (x === '*')
      errors.push(
        `a single wildcard ("*") is not supported, change it to either prefix or suffix match: ${field}`,
      );
  return v as string[];
}

function parseProvider(name: string, kind: 'http' | 'grpc', c: Record<string, unknown>): ProviderEntry {
  const errors: string[] = [];
  const service = typeof c['service'] === 'string' ? c['service'] : '';
  if (service === '') errors.push('service must not be empty');
  const port = Number(c['port']);
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    errors.push(`port must be in the range [1, 65535], found: ${String(c['port'])}`);
  let timeoutMs = DEFAULT_EXT_AUTHZ_TIMEOUT_MS;
  if (c['timeout'] !== undefined && c['timeout'] !== null) {
    const t = parseDurationMs(c['timeout']);
    if (t === undefined) errors.push(`invalid timeout ${JSON.stringify(c['timeout'])}`);
    else timeoutMs = t;
  }
  let statusOnError: number | undefined;
  if (c['statusOnError'] !== undefined && c['statusOnError'] !== null && c['statusOnError'] !== '') {
    const s = Number(c['statusOnError']);
    if (!Number.isInteger(s) || s < 100 || s > 599)
      errors.push(`invalid statusOnError ${JSON.stringify(c['statusOnError'])}`);
    else statusOnError = s;
  }
  const pathPrefix =
    typeof c['pathPrefix'] === 'string' && c['pathPrefix'] !== '' ? c['pathPrefix'] : undefined;
  if (kind === 'http' && pathPrefix !== undefined && !pathPrefix.startsWith('/'))
    errors.push(`pathPrefix must begin with \`/\`, found: ${JSON.stringify(pathPrefix)}`);
  const provider: ExtAuthzProvider = {
    name,
    kind,
    service,
    port,
    timeoutMs,
    failOpen: c['failOpen'] === true,
    statusOnError,
    pathPrefix: kind === 'http' ? pathPrefix : undefined,
    includeRequestHeadersInCheck: strings(
      c['includeRequestHeadersInCheck'],
      'IncludeRequestHeadersInCheck',
      errors,
    ),
    headersToUpstreamOnAllow: strings(c['headersToUpstreamOnAllow'], 'HeadersToUpstreamOnAllow', errors),
    headersToDownstreamOnDeny: strings(c['headersToDownstreamOnDeny'], 'HeadersToDownstreamOnDeny', errors),
    headersToDownstreamOnAllow: strings(
      c['headersToDownstreamOnAllow'],
      'HeadersToDownstreamOnAllow',
      errors,
    ),
  };
  return errors.length > 0 ? { ok: false, error: errors.join('; ') } : { ok: true, provider };
}

/** meshConfig `extensionProviders` (the raw document) → the ext_authz providers by name. */
export function parseExtAuthzProviders(
  mesh: Readonly<Record<string, unknown>> | undefined,
): Map<string, ProviderEntry> {
  const out = new Map<string, ProviderEntry>();
  const list = mesh?.['extensionProviders'];
  if (!Array.isArray(list)) return out;
  for (const p of list) {
    if (!isRecord(p) || typeof p['name'] !== 'string' || p['name'] === '') continue;
    const name = p['name'];
    if (out.has(name)) {
      out.set(name, { ok: false, error: `extension provider name must be unique, found duplicate: ${name}` });
      continue;
    }
    const http = p['envoyExtAuthzHttp'];
    const grpc = p['envoyExtAuthzGrpc'];
    if (isRecord(http)) out.set(name, parseProvider(name, 'http', http));
    else if (isRecord(grpc)) out.set(name, parseProvider(name, 'grpc', grpc));
  }
  return out;
}

/** Why `providerName` cannot be used as a CUSTOM provider (unknown or invalid), or undefined. */
export function providerProblem(
  providerName: string,
  providers: ReadonlyMap<string, ProviderEntry>,
): string | undefined {
  const entry = providers.get(providerName);
  if (entry === undefined)
    return `available providers are [${[...providers.keys()].sort().join(' ')}] but found ${JSON.stringify(providerName)}`;
  if (!entry.ok) return `found errors in provider ${providerName}: ${entry.error}`;
  return undefined;
}

/**
 * What a CUSTOM policy's `WaypointAccepted` message says when its provider is unknown or
 * invalid in meshConfig (upstream denies what its rules match and only logs it); undefined
 * for other policies and usable providers.
 */
export function customPolicyProblem(
  policy: {
    readonly spec?:
      | {
          readonly action?: string | undefined;
          readonly provider?: { readonly name?: string | undefined } | undefined;
        }
      | undefined;
  },
  providers: ReadonlyMap<string, ProviderEntry>,
): string | undefined {
  if (policy.spec?.action !== 'CUSTOM') return undefined;
  const problem = providerProblem(policy.spec.provider?.name ?? '', providers);
  return problem === undefined
    ? undefined
    : `CUSTOM action cannot be enforced, requests matching its rules are denied: ${problem}`;
}

/** The Service of a provider: its hostname and cluster, or why it cannot be used. */
export type ServiceResolution = { ok: true; hostname: string } | { ok: false; error: string };

export interface CustomFilter {
  readonly name: string;
  readonly type: 'rbac' | 'extAuthz';
  readonly config: object;
}

export interface CustomFilters {
  /** HTTP filters in order (they go first in the chain, before jwt_authn and RBAC). */
  readonly filters: readonly CustomFilter[];
  /** The `outbound|<port>||<host>` clusters the ext_authz filters call. */
  readonly clusters: readonly {
    readonly name: string;
    readonly hostname: string;
    readonly port: number;
    readonly http2: boolean;
  }[];
  /** Why some CUSTOM policies deny what they match (unknown or invalid provider). */
  readonly issues: readonly string[];
}

export function outboundClusterName(hostname: string, port: number): string {
  return `outbound|${port}||${hostname}`;
}

function listMatcher(headers: readonly string[]): object | undefined {
  if (headers.length === 0) return undefined;
  return {
    patterns: headers.map(h =>
      h.startsWith('*')
        ? { suffix: h.slice(1), ignoreCase: true }
        : h.endsWith('*')
          ? { prefix: h.slice(0, -1), ignoreCase: true }
          : { exact: h, ignoreCase: true },
    ),
  };
}

/** The `envoy.extensions.filters.http.ext_authz.v3.ExtAuthz` config of one provider. */
export function extAuthzConfig(p: ExtAuthzProvider, hostname: string): object {
  const cluster = outboundClusterName(hostname, p.port);
  const common = {
    ...(p.statusOnError === undefined ? {} : { statusOnError: { code: p.statusOnError } }),
    failureModeAllow: p.failOpen,
    transportApiVersion: 'V3',
    filterEnabledMetadata: {
      filter: RBAC_FILTER,
      path: [{ key: `${EXT_AUTHZ_SHADOW_PREFIX}shadow_effective_policy_id` }],
      value: { stringMatch: { prefix: `${EXT_AUTHZ_MATCH_PREFIX}-${p.name}` } },
    },
  };
  if (p.kind === 'grpc') {
    return {
      ...common,
      grpcService: {
        envoyGrpc: { clusterName: cluster, authority: hostname },
        timeout: duration(p.timeoutMs),
      },
    };
  }
  const up = listMatcher(p.headersToUpstreamOnAllow);
  const deny = listMatcher(p.headersToDownstreamOnDeny);
  const allow = listMatcher(p.headersToDownstreamOnAllow);
  const allowed = listMatcher(p.includeRequestHeadersInCheck);
  return {
    ...common,
    httpService: {
      ...(p.pathPrefix === undefined ? {} : { pathPrefix: p.pathPrefix }),
      serverUri: { uri: `http://${hostname}`, cluster, timeout: duration(p.timeoutMs) },
      ...((up ?? deny ?? allow)
        ? {
            authorizationResponse: {
              ...(up === undefined ? {} : { allowedUpstreamHeaders: up }),
              ...(deny === undefined ? {} : { allowedClientHeaders: deny }),
              ...(allow === undefined ? {} : { allowedClientHeadersOnSuccess: allow }),
            },
          }
        : {}),
    },
    ...(allowed === undefined ? {} : { allowedHeaders: allowed }),
  };
}

/**
 * The CUSTOM filters for the policies that apply to one filter chain. `resolve` finds a
 * provider's Service (`<host>` or `<ns>/<host>`) and gives its hostname.
 */
export function buildCustomFilters(
  policies: readonly AuthorizationPolicy[],
  providers: ReadonlyMap<string, ProviderEntry>,
  resolve: (service: string, port: number) => ServiceResolution,
): CustomFilters {
  const custom = policies
    .filter(p => p.spec.action === 'CUSTOM')
    .sort((a, b) => {
      const ka = `${a.metadata.namespace}/${a.metadata.name}`;
      const kb = `${b.metadata.namespace}/${b.metadata.name}`;
      return ka < kb ? -1 : ka > kb ? 1 : 0;
    });
  const byProvider = new Map<string, AuthorizationPolicy[]>();
  for (const p of custom) {
    const name = p.spec.provider?.name ?? '';
    byProvider.set(name, [...(byProvider.get(name) ?? []), p]);
  }
  const filters: CustomFilter[] = [];
  const clusters: { name: string; hostname: string; port: number; http2: boolean }[] = [];
  const issues: string[] = [];
  for (const providerName of [...byProvider.keys()].sort()) {
    const selected = byProvider.get(providerName)!;
    const unsupported: string[] = [];
    const policiesMap: Record<string, object> = {};
    for (const p of selected) {
      // CUSTOM rules behave as DENY ones: a condition we cannot translate widens the match.
      const asDeny: AuthorizationPolicy = { ...p, spec: { ...p.spec, action: 'DENY' } };
      for (const [name, policy] of Object.entries(rbacPolicies(asDeny, unsupported)))
        policiesMap[`${EXT_AUTHZ_MATCH_PREFIX}-${providerName}-${name}`] = policy;
    }
    const entry = providers.get(providerName);
    let error = providerProblem(providerName, providers);
    let hostname = '';
    if (entry !== undefined && entry.ok) {
      const r = resolve(entry.provider.service, entry.provider.port);
      if (r.ok) hostname = r.hostname;
      else error = `found errors in provider ${providerName}: ${r.error}`;
    }
    if (error !== undefined || entry === undefined || !entry.ok) {
      const policyNames = selected.map(p => `${p.metadata.namespace}/${p.metadata.name}`).join(', ');
      issues.push(
        `failed to process CUSTOM action for provider ${providerName} (policies ${policyNames}), ` +
          `will generate deny configs: ${error ?? ''}`,
      );
      const deny: Record<string, object> = {};
      for (const [name, policy] of Object.entries(policiesMap)) deny[`${name}${BAD_CUSTOM_SUFFIX}`] = policy;
      filters.push({
        name: RBAC_FILTER,
        type: 'rbac',
        config: { rules: { action: 'DENY', policies: deny } },
      });
      continue;
    }
    const provider = entry.provider;
    filters.push({
      name: RBAC_FILTER,
      type: 'rbac',
      config: {
        shadowRules: { action: 'DENY', policies: policiesMap },
        shadowRulesStatPrefix: EXT_AUTHZ_SHADOW_PREFIX,
      },
    });
    filters.push({ name: EXT_AUTHZ_FILTER, type: 'extAuthz', config: extAuthzConfig(provider, hostname) });
    const cname = outboundClusterName(hostname, provider.port);
    if (!clusters.some(c => c.name === cname))
      clusters.push({ name: cname, hostname, port: provider.port, http2: provider.kind === 'grpc' });
  }
  return { filters, clusters, issues };
}
