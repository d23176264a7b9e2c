/**
 * `envoy.filters.http.jwt_authn` (`JwtAuthentication`) → `JwtAuthnFilter`, and the RBAC
 * `MetadataMatcher` that reads its payload. Inline JWKS (`local_jwks.inline_string`, what istiod
 * sends by default) is parsed here; a `remote_jwks` URI is fetched and cached by the proxy.
 */
import type { ProtoObject } from '../xds/envoy-protos.ts';
import { convertStringMatch } from './matchers.ts';
import type { ProtoReader } from './proto-reader.ts';
import { convertMatch } from './convert-route.ts';
import type {
  JwksSource,
  JwtAuthnFilter,
  JwtProvider,
  JwtRequirement,
  JwtRule,
  MetadataMatch,
  ValueMatch,
} from './types.ts';

/** Envoy's default `cache_duration` for a remote JWKS (5 minutes) and fetch timeout. */
const DEFAULT_JWKS_CACHE_MS = 300_000;
const DEFAULT_JWKS_TIMEOUT_MS = 5_000;

function convertJwks(r: ProtoReader, p: ProtoObject, path: string): JwksSource | undefined {
  const local = r.object(p, 'local_jwks');
  if (local !== undefined) {
    r.only(local, `${path}.local_jwks`, ['inline_string', 'inline_bytes']);
    const text =
      r.string(local, 'inline_string') ??
      Buffer.from(r.string(local, 'inline_bytes') ?? '', 'base64').toString('utf8');
    try {
      const parsed = JSON.parse(text) as { keys?: unknown };
      if (!Array.isArray(parsed.keys)) throw new Error('no "keys" array');
      return { kind: 'local', jwks: { keys: parsed.keys as Record<string, unknown>[] } };
    } catch {
      // Envoy accepts the config (with a warning) and fails every token of this provider, as
      // with istiod's placeholder JWKS when it could not fetch one: an empty key set.
      return { kind: 'local', jwks: { keys: [] } };
    }
  }
  const remote = r.object(p, 'remote_jwks');
  if (remote !== undefined) {
    r.only(remote, `${path}.remote_jwks`, ['http_uri', 'cache_duration'], ['async_fetch', 'retry_policy']);
    const uri = r.object(remote, 'http_uri') ?? {};
    r.only(uri, `${path}.remote_jwks.http_uri`, ['uri', 'timeout'], ['cluster']);
    const text = r.string(uri, 'uri') ?? '';
    try {
      const u = new URL(text);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http(s)');
    } catch {
      r.problem(`${path}.remote_jwks.http_uri.uri`, `${JSON.stringify(text)} is not an http(s) URL`);
      return undefined;
    }
    return {
      kind: 'remote',
      uri: text,
      cacheDurationMs: r.durationMs(remote, 'cache_duration', `${path}.remote_jwks`) ?? DEFAULT_JWKS_CACHE_MS,
      timeoutMs: r.durationMs(uri, 'timeout', `${path}.remote_jwks.http_uri`) ?? DEFAULT_JWKS_TIMEOUT_MS,
    };
  }
  r.problem(path, 'a provider needs local_jwks or remote_jwks');
  return undefined;
}

function convertProvider(
  r: ProtoReader,
  name: string,
  p: ProtoObject,
  path: string,
): JwtProvider | undefined {
  r.only(
    p,
    path,
    [
      'issuer',
      'audiences',
      'local_jwks',
      'remote_jwks',
      'forward',
      'from_headers',
      'from_params',
      'from_cookies',
      'forward_payload_header',
      'payload_in_metadata',
      'normalize_payload_in_metadata',
      'claim_to_headers',
      'clock_skew_seconds',
    ],
    ['clear_route_cache', 'jwt_cache_config', 'pad_forward_payload_header'],
  );
  const jwks = convertJwks(r, p, path);
  if (jwks === undefined) return undefined;
  const fromHeaders = r.list(p, 'from_headers').map((h, i) => {
    r.only(h, `${path}.from_headers[${i}]`, ['name', 'value_prefix']);
    return { name: (r.string(h, 'name') ?? '').toLowerCase(), prefix: r.string(h, 'value_prefix') ?? '' };
  });
  const normalize = r.object(p, 'normalize_payload_in_metadata') ?? {};
  r.only(normalize, `${path}.normalize_payload_in_metadata`, ['space_delimited_claims']);
  const claimToHeaders = r.list(p, 'claim_to_headers').map((c, i) => {
    r.only(c, `${path}.claim_to_headers[${i}]`, ['header_name', 'claim_name']);
    return {
      header: (r.string(c, 'header_name') ?? '').toLowerCase(),
      claim: r.string(c, 'claim_name') ?? '',
    };
  });
  const forwardPayloadHeader = r.string(p, 'forward_payload_header');
  const payloadInMetadata = r.string(p, 'payload_in_metadata');
  return {
    name,
    issuer: r.string(p, 'issuer') ?? '',
    audiences: r.strings(p, 'audiences'),
    jwks,
    forward: r.bool(p, 'forward') ?? false,
    fromHeaders,
    fromParams: r.strings(p, 'from_params'),
    fromCookies: r.strings(p, 'from_cookies'),
    forwardPayloadHeader: forwardPayloadHeader === '' ? undefined : forwardPayloadHeader?.toLowerCase(),
    payloadInMetadata: payloadInMetadata === '' ? undefined : payloadInMetadata,
    spaceDelimitedClaims: r.strings(normalize, 'space_delimited_claims'),
    claimToHeaders,
    // Envoy's default clock skew is 60 seconds.
    clockSkewSeconds: r.number(p, 'clock_skew_seconds') ?? 60,
  };
}

function convertRequirement(
  r: ProtoReader,
  o: ProtoObject,
  path: string,
  providers: ReadonlyMap<string, JwtProvider>,
): JwtRequirement | undefined {
  r.only(o, path, [
    'provider_name',
    'provider_and_audiences',
    'requires_any',
    'requires_all',
    'allow_missing_or_failed',
    'allow_missing',
  ]);
  const known = (name: string, p: string): string => {
    if (!providers.has(name)) r.problem(p, `provider ${JSON.stringify(name)} is not defined`);
    return name;
  };
  const name = r.string(o, 'provider_name');
  if (name !== undefined)
    return { kind: 'provider', provider: known(name, `${path}.provider_name`), audiences: undefined };
  const pa = r.object(o, 'provider_and_audiences');
  if (pa !== undefined) {
    r.only(pa, `${path}.provider_and_audiences`, ['provider_name', 'audiences']);
    return {
      kind: 'provider',
      provider: known(r.string(pa, 'provider_name') ?? '', `${path}.provider_and_audiences.provider_name`),
      audiences: r.strings(pa, 'audiences'),
    };
  }
  for (const key of ['requires_any', 'requires_all'] as const) {
    const list = r.object(o, key);
    if (list !== undefined) {
      r.only(list, `${path}.${key}`, ['requirements']);
      const requirements = r
        .list(list, 'requirements')
        .map((x, i) => convertRequirement(r, x, `${path}.${key}.requirements[${i}]`, providers))
        .filter(x => x !== undefined);
      return { kind: key === 'requires_any' ? 'any' : 'all', requirements };
    }
  }
  if (r.object(o, 'allow_missing_or_failed') !== undefined) return { kind: 'allow-missing-or-failed' };
  if (r.object(o, 'allow_missing') !== undefined) return { kind: 'allow-missing' };
  return undefined;
}

export function convertJwtAuthn(r: ProtoReader, name: string, c: ProtoObject, path: string): JwtAuthnFilter {
  r.only(c, path, ['providers', 'rules', 'bypass_cors_preflight'], ['strip_failure_response']);
  const providers = new Map<string, JwtProvider>();
  const map = (r.object(c, 'providers') ?? {}) as Record<string, ProtoObject>;
  for (const key of Object.keys(map).sort()) {
    const p = convertProvider(r, key, map[key] ?? {}, `${path}.providers[${JSON.stringify(key)}]`);
    if (p !== undefined) providers.set(key, p);
  }
  const rules: JwtRule[] = [];
  r.list(c, 'rules').forEach((rule, i) => {
    const rp = `${path}.rules[${i}]`;
    r.only(rule, rp, ['match', 'requires']);
    const match = convertMatch(r, r.object(rule, 'match') ?? {}, `${rp}.match`);
    const req = r.object(rule, 'requires');
    const requires = req === undefined ? undefined : convertRequirement(r, req, `${rp}.requires`, providers);
    if (match !== undefined) rules.push({ match, requires });
  });
  return { name, providers, rules, bypassCorsPreflight: r.bool(c, 'bypass_cors_preflight') ?? false };
}

function convertValueMatch(r: ProtoReader, v: ProtoObject, path: string): ValueMatch | undefined {
  r.only(v, path, ['string_match', 'present_match', 'bool_match', 'list_match', 'or_match']);
  const sm = r.object(v, 'string_match');
  if (sm !== undefined) {
    const m = convertStringMatch(r, sm, `${path}.string_match`);
    return m === undefined ? undefined : { kind: 'string', match: m };
  }
  const present = r.bool(v, 'present_match');
  if (present !== undefined) return { kind: 'present', present };
  const b = r.bool(v, 'bool_match');
  if (b !== undefined) return { kind: 'bool', value: b };
  const list = r.object(v, 'list_match');
  if (list !== undefined) {
    r.only(list, `${path}.list_match`, ['one_of']);
    const inner = convertValueMatch(r, r.object(list, 'one_of') ?? {}, `${path}.list_match.one_of`);
    return inner === undefined ? undefined : { kind: 'list-one-of', match: inner };
  }
  const or = r.object(v, 'or_match');
  if (or !== undefined) {
    r.only(or, `${path}.or_match`, ['value_matchers']);
    const matches = r
      .list(or, 'value_matchers')
      .map((x, i) => convertValueMatch(r, x, `${path}.or_match.value_matchers[${i}]`))
      .filter(x => x !== undefined);
    return { kind: 'or', matches };
  }
  // An unsupported matcher (null_match, double_match) was reported by `only` above.
  if (Object.keys(v).length === 0)
    r.problem(path, 'a value matcher needs string_match, present_match, bool_match, list_match or or_match');
  return undefined;
}

export function convertMetadataMatch(
  r: ProtoReader,
  m: ProtoObject,
  path: string,
): MetadataMatch | undefined {
  r.only(m, path, ['filter', 'path', 'value', 'invert']);
  const filter = r.string(m, 'filter') ?? '';
  if (filter === '') r.problem(`${path}.filter`, 'is empty');
  const keys = r.list(m, 'path').map((s, i) => {
    r.only(s, `${path}.path[${i}]`, ['key']);
    return r.string(s, 'key') ?? '';
  });
  if (keys.length === 0) r.problem(`${path}.path`, 'needs at least one key');
  const value = convertValueMatch(r, r.object(m, 'value') ?? {}, `${path}.value`);
  if (value === undefined) return undefined;
  return { filter, path: keys, value, invert: r.bool(m, 'invert') ?? false };
}
