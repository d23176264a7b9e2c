/**
 * RequestAuthentications that target a waypoint (or a Service it serves) → the Envoy
 * `envoy.filters.http.jwt_authn` config (pure), as upstream's `convertToEnvoyJwtConfig`:
 * - one provider `origins-<i>` per JWT rule, rules sorted by issuer;
 * - the payload in the dynamic metadata under `payload` (what RBAC `requestPrincipals` and
 *   `request.auth.claims[...]` match), `scope` and `permission` split into lists;
 * - the requirement lets a request without a token through (AuthorizationPolicy decides) and
 *   rejects an invalid one: `{p OR allow_missing}` for one provider, and for several
 *   `p0 OR p1 ... OR AND({p0 OR allow_missing}, {p1 OR allow_missing}, ...)`.
 * `jwks` is inlined. A `jwksUri` is, as upstream's default (`PILOT_JWT_ENABLE_REMOTE_JWKS=false`),
 * fetched by istiod and inlined (`JwksLookup`, see `jwks-resolver.ts`; until a fetch succeeds the
 * key set is empty, so tokens are rejected); with `PILOT_JWT_ENABLE_REMOTE_JWKS=true` (no lookup)
 * it becomes `remote_jwks` that the waypoint fetches and caches.
 */
import type { FieldIssue } from './types.ts';
import { Issues, arr, isRec, rec, str } from './validate-support.ts';

export const JWT_FILTER = 'envoy.filters.http.jwt_authn';
/** The dynamic-metadata key of the payload (upstream's `EnvoyJwtFilterPayload`). */
export const JWT_PAYLOAD_KEY = 'payload';
const DEFAULT_SPACE_DELIMITED = ['permission', 'scope'];

/** istiod's key set for a `jwksUri` (the fetch timeout in ms); see `JwksResolver.keysFor`. */
export type JwksLookup = (uri: string, timeoutMs: number) => string;

export interface ValidJwtRule {
  readonly issuer: string;
  readonly audiences: readonly string[];
  readonly jwks: string | undefined;
  readonly jwksUri: string | undefined;
  readonly fromHeaders: readonly { readonly name: string; readonly prefix: string }[];
  readonly fromParams: readonly string[];
  readonly fromCookies: readonly string[];
  readonly outputPayloadToHeader: string | undefined;
  readonly outputClaimToHeaders: readonly { readonly header: string; readonly claim: string }[];
  readonly forwardOriginalToken: boolean;
  readonly spaceDelimitedClaims: readonly string[] | undefined;
  /** JWKS fetch timeout, seconds (default 5). */
  readonly timeoutSeconds: number;
}

export interface ValidRequestAuthentication {
  readonly namespace: string;
  readonly name: string;
  readonly rules: readonly ValidJwtRule[];
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function strings(v: unknown): string[] {
  return arr(v).filter((x): x is string => typeof x === 'string');
}

function seconds(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text);
  if (m === null) return undefined;
  const n = Number(m[1]);
  return m[2] === 'ms' ? n / 1000 : m[2] === 'm' ? n * 60 : m[2] === 'h' ? n * 3600 : n;
}

/** Validates a RequestAuthentication's JWT rules (upstream's checks that matter to the filter). */
export function validateRequestAuthentication(
  obj: unknown,
): { ok: true; value: ValidRequestAuthentication } | { ok: false; errors: readonly FieldIssue[] } {
  const o = rec(obj);
  const meta = rec(o.metadata);
  const spec = rec(o.spec);
  const issues = new Issues();
  const rules: ValidJwtRule[] = [];
  arr(spec.jwtRules).forEach((raw, i) => {
    const p = `spec.jwtRules[${i}]`;
    if (!isRec(raw)) {
      issues.add(p, 'must be an object');
      return;
    }
    const issuer = str(raw.issuer) ?? '';
    if (issuer === '') issues.add(`${p}.issuer`, 'issuer must be set');
    const jwksUri = str(raw.jwksUri) ?? str(raw.jwks_uri);
    if (jwksUri !== undefined && jwksUri !== '') {
      let ok: boolean;
      try {
        const u = new URL(jwksUri);
        ok = u.protocol === 'http:' || u.protocol === 'https:';
      } catch {
        ok = false;
      }
      if (!ok) issues.add(`${p}.jwksUri`, `${JSON.stringify(jwksUri)} is not an http(s) URL`);
    }
    const jwks = str(raw.jwks);
    if (jwks !== undefined && jwks !== '') {
      try {
        const parsed = JSON.parse(jwks) as unknown;
        if (!isRec(parsed) || !Array.isArray(parsed.keys)) throw new Error('no "keys" array');
      } catch (err) {
        issues.add(
          `${p}.jwks`,
          `is not a JSON Web Key Set (${err instanceof Error ? err.message : String(err)})`,
        );
      }
    }
    const fromHeaders = arr(raw.fromHeaders).map((h, j) => {
      const name = str(rec(h).name) ?? '';
      if (!HEADER_NAME.test(name))
        issues.add(`${p}.fromHeaders[${j}].name`, `${JSON.stringify(name)} is not a header name`);
      return { name, prefix: str(rec(h).prefix) ?? '' };
    });
    const outputClaimToHeaders = arr(raw.outputClaimToHeaders).map((c, j) => {
      const header = str(rec(c).header) ?? '';
      const claim = str(rec(c).claim) ?? '';
      if (!HEADER_NAME.test(header))
        issues.add(
          `${p}.outputClaimToHeaders[${j}].header`,
          `${JSON.stringify(header)} is not a header name`,
        );
      if (claim === '') issues.add(`${p}.outputClaimToHeaders[${j}].claim`, 'claim must be set');
      return { header, claim };
    });
    const timeoutText = str(raw.timeout);
    const timeout = seconds(timeoutText);
    if (timeoutText !== undefined && timeout === undefined)
      issues.add(`${p}.timeout`, `${JSON.stringify(timeoutText)} is not a duration`);
    const output = str(raw.outputPayloadToHeader);
    rules.push({
      issuer,
      audiences: strings(raw.audiences),
      jwks: jwks === '' ? undefined : jwks,
      jwksUri: jwksUri === '' ? undefined : jwksUri,
      fromHeaders,
      fromParams: strings(raw.fromParams),
      fromCookies: strings(raw.fromCookies),
      outputPayloadToHeader: output === '' ? undefined : output,
      outputClaimToHeaders,
      forwardOriginalToken: raw.forwardOriginalToken === true,
      spaceDelimitedClaims: Array.isArray(raw.spaceDelimitedClaims)
        ? strings(raw.spaceDelimitedClaims)
        : undefined,
      timeoutSeconds: timeout ?? 5,
    });
  });
  if (issues.list.length > 0) return { ok: false, errors: issues.list };
  return {
    ok: true,
    value: { namespace: str(meta.namespace) ?? '', name: str(meta.name) ?? '', rules },
  };
}

/** Default port of a URL (the JWKS cluster name needs one). */
function uriCluster(uri: string): string {
  const u = new URL(uri);
  const port = u.port !== '' ? u.port : u.protocol === 'https:' ? '443' : '80';
  return `outbound|${port}||${u.hostname}`;
}

function duration(secondsValue: number): { seconds: number; nanos: number } {
  const whole = Math.floor(secondsValue);
  return { seconds: whole, nanos: Math.round((secondsValue - whole) * 1e9) };
}

function provider(rule: ValidJwtRule, jwksFor: JwksLookup | undefined): object {
  const claims = [...new Set([...(rule.spaceDelimitedClaims ?? []), ...DEFAULT_SPACE_DELIMITED])].sort();
  const jwksSource =
    rule.jwks !== undefined || rule.jwksUri === undefined
      ? // No key at all: upstream inlines a fake JWKS so that every token of the issuer fails.
        { localJwks: { inlineString: rule.jwks ?? '{"keys":[]}' } }
      : jwksFor !== undefined
        ? { localJwks: { inlineString: jwksFor(rule.jwksUri, Math.round(rule.timeoutSeconds * 1000)) } }
        : {
            remoteJwks: {
              httpUri: {
                uri: rule.jwksUri,
                cluster: uriCluster(rule.jwksUri),
                timeout: duration(rule.timeoutSeconds),
              },
              cacheDuration: { seconds: 300 },
            },
          };
  return {
    issuer: rule.issuer,
    ...(rule.audiences.length > 0 ? { audiences: rule.audiences } : {}),
    ...jwksSource,
    ...(rule.forwardOriginalToken ? { forward: true } : {}),
    ...(rule.outputPayloadToHeader !== undefined ? { forwardPayloadHeader: rule.outputPayloadToHeader } : {}),
    ...(rule.fromHeaders.length > 0
      ? {
          fromHeaders: rule.fromHeaders.map(h => ({
            name: h.name,
            ...(h.prefix === '' ? {} : { valuePrefix: h.prefix }),
          })),
        }
      : {}),
    ...(rule.fromParams.length > 0 ? { fromParams: rule.fromParams } : {}),
    ...(rule.fromCookies.length > 0 ? { fromCookies: rule.fromCookies } : {}),
    payloadInMetadata: JWT_PAYLOAD_KEY,
    normalizePayloadInMetadata: { spaceDelimitedClaims: claims },
    ...(rule.outputClaimToHeaders.length > 0
      ? { claimToHeaders: rule.outputClaimToHeaders.map(c => ({ headerName: c.header, claimName: c.claim })) }
      : {}),
  };
}

/** The `JwtAuthentication` config for the RequestAuthentications of one chain; undefined when none has rules. */
export function buildJwtFilter(
  policies: readonly ValidRequestAuthentication[],
  jwksFor?: JwksLookup,
): object | undefined {
  const rules = policies
    .flatMap(p => p.rules)
    .map((r, i) => ({ r, i }))
    .sort((a, b) => (a.r.issuer < b.r.issuer ? -1 : a.r.issuer > b.r.issuer ? 1 : a.i - b.i))
    .map(x => x.r);
  if (rules.length === 0) return undefined;
  const providers: Record<string, object> = {};
  const inner: object[] = [];
  const outer: object[] = [];
  rules.forEach((rule, i) => {
    const name = `origins-${i}`;
    providers[name] = provider(rule, jwksFor);
    inner.push({ requiresAny: { requirements: [{ providerName: name }, { allowMissing: {} }] } });
    outer.push({ providerName: name });
  });
  const requires =
    inner.length === 1
      ? inner[0]
      : { requiresAny: { requirements: [...outer, { requiresAll: { requirements: inner } }] } };
  return {
    rules: [{ match: { prefix: '/' }, requires }],
    providers,
    bypassCorsPreflight: true,
  };
}
