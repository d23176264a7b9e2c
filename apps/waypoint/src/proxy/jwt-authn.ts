/**
 * Envoy's `envoy.filters.http.jwt_authn`, with `jose`: per request, the first rule whose match
 * fits names a requirement; each provider's token is extracted from its locations and verified
 * (issuer, time constraints, audiences, then the signature against the JWKS, inline or fetched
 * and cached), and the requirement tree (`provider_name`, `requires_any`, `requires_all`,
 * `allow_missing`, `allow_missing_or_failed`) decides. A verified token's payload goes to the
 * dynamic metadata (`payload_in_metadata`), claims to headers, and the token header is removed
 * unless `forward`. A failure is answered as Envoy does: 401 (403 for audiences) with the
 * status text as body and `www-authenticate: Bearer realm="<uri>"[, error="invalid_token"]`.
 */
import { createLocalJWKSet, createRemoteJWKSet, compactVerify, errors } from 'jose';
import type { JSONWebKeySet, JWTVerifyGetKey } from 'jose';
import { routeMatches } from './route.ts';
import type { RequestInfo } from './route.ts';
import type { JwtAuthnFilter, JwtProvider, JwtRequirement } from '../config/types.ts';

/** Envoy's jwt_verify status strings (the response body of a failure). */
export const JwtStatus = {
  missing: 'Jwt is missing',
  badFormat: 'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections',
  headerBadJson: 'Jwt header is an invalid JSON',
  payloadBadJson: 'Jwt payload is an invalid JSON',
  expired: 'Jwt is expired',
  notYetValid: 'Jwt not yet valid',
  verificationFails: 'Jwt verification fails',
  unknownIssuer: 'Jwt issuer is not configured',
  audienceNotAllowed: 'Audiences in Jwt are not allowed',
  kidAlgMismatch: "Jwks doesn't have key to match kid or alg from Jwt",
  jwksFetchFailed: 'Jwks remote fetch is failed',
  noValidKeys: "Jwks doesn't have any valid public key",
} as const;
export type JwtStatusText = (typeof JwtStatus)[keyof typeof JwtStatus];

/** The JWT filter's dynamic metadata namespace (what RBAC `metadata` matchers name). */
export const JWT_AUTHN_FILTER = 'envoy.filters.http.jwt_authn';

type ProviderResult =
  | {
      readonly kind: 'ok';
      readonly provider: JwtProvider;
      readonly payload: Record<string, unknown>;
      readonly token: Extracted;
    }
  | { readonly kind: 'missing' }
  | { readonly kind: 'failed'; readonly status: JwtStatusText };

interface Extracted {
  readonly token: string;
  /** Where it came from, so that it can be removed when not forwarded. */
  readonly header: string | undefined;
}

export type JwtOutcome =
  | {
      readonly kind: 'allow';
      /** `envoy.filters.http.jwt_authn` → `{ <payload_in_metadata>: payload }`, when a token verified. */
      readonly metadata: Readonly<Record<string, unknown>> | undefined;
      readonly setHeaders: readonly (readonly [string, string])[];
      readonly removeHeaders: readonly string[];
    }
  | {
      readonly kind: 'deny';
      readonly status: 401 | 403;
      readonly body: JwtStatusText;
      readonly wwwAuthenticate: string;
    };

export interface JwtRequest extends RequestInfo {
  /** The request path with its query, as received (after normalisation). */
  readonly pathAndQuery: string;
}

export interface JwtAuthenticatorOptions {
  readonly now?: () => number;
}

function b64urlJson(part: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return v !== null && typeof v === 'object' && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

function cookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) out.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return out;
}

function extract(p: JwtProvider, req: JwtRequest): Extracted | undefined {
  const headers =
    p.fromHeaders.length === 0 && p.fromParams.length === 0 && p.fromCookies.length === 0
      ? [{ name: 'authorization', prefix: 'Bearer ' }]
      : p.fromHeaders;
  const params =
    p.fromHeaders.length === 0 && p.fromParams.length === 0 && p.fromCookies.length === 0
      ? ['access_token']
      : p.fromParams;
  for (const h of headers) {
    const value = req.headers.get(h.name);
    if (value === undefined) continue;
    if (h.prefix === '') return { token: value.trim(), header: h.name };
    const at = value.toLowerCase().indexOf(h.prefix.toLowerCase());
    if (at < 0) continue;
    const rest = value.slice(at + h.prefix.length).trim();
    const token = rest.split(/[\s,]/)[0] ?? '';
    if (token !== '') return { token, header: h.name };
  }
  for (const name of params) {
    const value = req.query.get(name);
    if (value !== null && value !== '') return { token: value, header: undefined };
  }
  if (p.fromCookies.length > 0) {
    const jar = cookies(req.headers.get('cookie'));
    for (const name of p.fromCookies) {
      const value = jar.get(name);
      if (value !== undefined && value !== '') return { token: value, header: undefined };
    }
  }
  return undefined;
}

function claimString(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

function audiencesOf(payload: Record<string, unknown>): string[] {
  const aud = payload.aud;
  if (typeof aud === 'string') return [aud];
  return Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : [];
}

/** The original URI Envoy puts into the realm: scheme, host and path, without the query. */
function realm(req: JwtRequest): string {
  const forwarded = req.headers.get('x-forwarded-proto');
  const scheme = forwarded === undefined || forwarded === '' ? 'http' : forwarded;
  const q = req.pathAndQuery.indexOf('?');
  return `${scheme}://${req.host}${q < 0 ? req.pathAndQuery : req.pathAndQuery.slice(0, q)}`;
}

export class JwtAuthenticator {
  readonly #now: () => number;
  readonly #local = new WeakMap<JwtProvider, JWTVerifyGetKey>();
  readonly #remote = new Map<string, JWTVerifyGetKey>();

  constructor(options: JwtAuthenticatorOptions = {}) {
    this.#now = options.now ?? Date.now;
  }

  #keys(p: JwtProvider): JWTVerifyGetKey {
    if (p.jwks.kind === 'local') {
      let k = this.#local.get(p);
      if (k === undefined) {
        k = createLocalJWKSet(p.jwks.jwks as unknown as JSONWebKeySet);
        this.#local.set(p, k);
      }
      return k;
    }
    // One cached key set per URI and cache settings: a config push that keeps them keeps the cache.
    const key = `${p.jwks.uri}|${p.jwks.cacheDurationMs}|${p.jwks.timeoutMs}`;
    let k = this.#remote.get(key);
    if (k === undefined) {
      k = createRemoteJWKSet(new URL(p.jwks.uri), {
        cacheMaxAge: p.jwks.cacheDurationMs,
        timeoutDuration: p.jwks.timeoutMs,
        cooldownDuration: Math.min(30_000, p.jwks.cacheDurationMs),
      });
      this.#remote.set(key, k);
    }
    return k;
  }

  async #verify(
    p: JwtProvider,
    extracted: Extracted,
    audiences: readonly string[] | undefined,
  ): Promise<ProviderResult> {
    const parts = extracted.token.split('.');
    if (parts.length !== 3) return { kind: 'failed', status: JwtStatus.badFormat };
    const header = b64urlJson(parts[0] ?? '');
    if (header === undefined) return { kind: 'failed', status: JwtStatus.headerBadJson };
    const payload = b64urlJson(parts[1] ?? '');
    if (payload === undefined) return { kind: 'failed', status: JwtStatus.payloadBadJson };
    if (p.issuer !== '' && payload.iss !== p.issuer)
      return { kind: 'failed', status: JwtStatus.unknownIssuer };
    const now = Math.floor(this.#now() / 1000);
    const exp = payload.exp;
    const nbf = payload.nbf;
    if (typeof exp === 'number' && exp + p.clockSkewSeconds < now)
      return { kind: 'failed', status: JwtStatus.expired };
    if (typeof nbf === 'number' && nbf - p.clockSkewSeconds > now)
      return { kind: 'failed', status: JwtStatus.notYetValid };
    const allowed = audiences ?? p.audiences;
    if (allowed.length > 0 && !audiencesOf(payload).some(a => allowed.includes(a)))
      return { kind: 'failed', status: JwtStatus.audienceNotAllowed };
    try {
      await compactVerify(extracted.token, this.#keys(p));
    } catch (err) {
      if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys)
        return { kind: 'failed', status: JwtStatus.kidAlgMismatch };
      if (err instanceof errors.JWKSInvalid) return { kind: 'failed', status: JwtStatus.noValidKeys };
      if (
        err instanceof errors.JWKSTimeout ||
        (err instanceof errors.JOSEError && err.code === 'ERR_JOSE_GENERIC')
      )
        return { kind: 'failed', status: JwtStatus.jwksFetchFailed };
      if (err instanceof TypeError) return { kind: 'failed', status: JwtStatus.jwksFetchFailed };
      return { kind: 'failed', status: JwtStatus.verificationFails };
    }
    return { kind: 'ok', provider: p, payload, token: extracted };
  }

  /** Runs one filter over a request. */
  async authenticate(filter: JwtAuthnFilter, req: JwtRequest): Promise<JwtOutcome> {
    const allow: JwtOutcome = { kind: 'allow', metadata: undefined, setHeaders: [], removeHeaders: [] };
    if (
      filter.bypassCorsPreflight &&
      req.method === 'OPTIONS' &&
      req.headers.has('origin') &&
      req.headers.has('access-control-request-method')
    )
      return allow;
    const rule = filter.rules.find(r => routeMatches(r.match, req));
    if (rule?.requires === undefined) return allow;
    // As Envoy's extractor: headers the filter writes are never taken from the client.
    const sanitized = [...filter.providers.values()].flatMap(p => [
      ...(p.forwardPayloadHeader === undefined ? [] : [p.forwardPayloadHeader]),
      ...p.claimToHeaders.map(c => c.header),
    ]);
    const verified: ProviderResult[] = [];
    const done = (r: ProviderResult): 'ok' | 'missing' | JwtStatusText => {
      verified.push(r);
      return r.kind === 'ok' ? 'ok' : r.kind === 'missing' ? 'missing' : r.status;
    };
    // A named provider: its own token locations; a token of another issuer is JwtUnknownIssuer.
    const byProvider = async (name: string, audiences: readonly string[] | undefined) => {
      const p = filter.providers.get(name);
      if (p === undefined) return done({ kind: 'failed', status: JwtStatus.unknownIssuer });
      const extracted = extract(p, req);
      return done(
        extracted === undefined ? { kind: 'missing' } : await this.#verify(p, extracted, audiences),
      );
    };
    // `allow_missing` / `allow_missing_or_failed`: every token at the locations of `names` (all
    // providers when empty), each verified by the provider of its `iss`; all must be valid.
    const byIssuer = async (names: readonly string[]) => {
      const locations =
        names.length === 0
          ? [...filter.providers.values()]
          : names.flatMap(n => {
              const p = filter.providers.get(n);
              return p === undefined ? [] : [p];
            });
      const tokens = new Map<string, Extracted>();
      for (const p of locations) {
        const e = extract(p, req);
        if (e !== undefined && !tokens.has(e.token)) tokens.set(e.token, e);
      }
      if (tokens.size === 0) return 'missing' as const;
      for (const e of tokens.values()) {
        const iss = b64urlJson(e.token.split('.')[1] ?? '')?.iss;
        const p = [...filter.providers.values()].find(x => x.issuer === iss);
        const r =
          p === undefined
            ? done({ kind: 'failed', status: JwtStatus.unknownIssuer })
            : done(await this.#verify(p, e, undefined));
        if (r !== 'ok') return r;
      }
      return 'ok' as const;
    };
    const providersOf = (list: readonly JwtRequirement[]): string[] =>
      list.flatMap(c => (c.kind === 'provider' ? [c.provider] : []));
    // A requirement's result: 'ok', or the status it failed with ('missing' for no token).
    const evaluate = async (
      r: JwtRequirement,
      parentProviders: readonly string[],
    ): Promise<'ok' | 'missing' | JwtStatusText> => {
      switch (r.kind) {
        case 'provider':
          return byProvider(r.provider, r.audiences);
        case 'allow-missing-or-failed':
          await byIssuer(parentProviders);
          return 'ok';
        case 'allow-missing': {
          const result = await byIssuer(parentProviders);
          return result === 'missing' ? 'ok' : result;
        }
        case 'all': {
          for (const child of r.requirements) {
            const result = await evaluate(child, []);
            if (result !== 'ok') return result;
          }
          return 'ok';
        }
        case 'any': {
          // Envoy: the regular children in order, then one bypass child (allow_missing_or_failed
          // over allow_missing) over their providers' locations; OK as soon as one is, else the
          // last child's status.
          const regular = r.requirements.filter(
            c => c.kind !== 'allow-missing' && c.kind !== 'allow-missing-or-failed',
          );
          const bypass =
            r.requirements.find(c => c.kind === 'allow-missing-or-failed') ??
            r.requirements.find(c => c.kind === 'allow-missing');
          let last: 'ok' | 'missing' | JwtStatusText = 'missing';
          for (const child of regular) {
            last = await evaluate(child, []);
            if (last === 'ok') return 'ok';
          }
          if (bypass !== undefined) last = await evaluate(bypass, providersOf(regular));
          return last;
        }
      }
    };
    const result = await evaluate(rule.requires, []);
    if (result !== 'ok') {
      const body = result === 'missing' ? JwtStatus.missing : result;
      const base = `Bearer realm="${realm(req)}"`;
      return {
        kind: 'deny',
        status: body === JwtStatus.audienceNotAllowed ? 403 : 401,
        body,
        wwwAuthenticate: body === JwtStatus.missing ? base : `${base}, error="invalid_token"`,
      };
    }
    const metadata: Record<string, unknown> = {};
    const setHeaders: [string, string][] = [];
    const removeHeaders: string[] = [...sanitized];
    for (const r of verified) {
      if (r.kind !== 'ok') continue;
      const p = r.provider;
      if (p.payloadInMetadata !== undefined) {
        const payload: Record<string, unknown> = { ...r.payload };
        for (const claim of p.spaceDelimitedClaims) {
          const v = payload[claim];
          if (typeof v === 'string') payload[claim] = v.split(' ').filter(x => x !== '');
        }
        metadata[p.payloadInMetadata] = payload;
      }
      for (const { header, claim } of p.claimToHeaders) {
        const v = claimString(r.payload[claim]);
        if (v !== undefined) setHeaders.push([header, v]);
      }
      if (p.forwardPayloadHeader !== undefined) {
        setHeaders.push([p.forwardPayloadHeader, r.token.token.split('.')[1] ?? '']);
      }
      if (!p.forward && r.token.header !== undefined) removeHeaders.push(r.token.header);
    }
    return {
      kind: 'allow',
      metadata: Object.keys(metadata).length === 0 ? undefined : metadata,
      setHeaders,
      removeHeaders,
    };
  }
}
