import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import type { CryptoKey } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import type { JwtAuthnFilter, JwtProvider, JwtRequirement } from '../config/types.ts';
import { JwtAuthenticator, JwtStatus } from './jwt-authn.ts';
import type { JwtRequest } from './jwt-authn.ts';

const ISS = 'https://issuer.example';

function request(path: string, headers: Record<string, string> = {}, method = 'GET'): JwtRequest {
  const q = path.indexOf('?');
  return {
    method,
    host: 'reviews',
    path: q < 0 ? path : path.slice(0, q),
    query: new URLSearchParams(q < 0 ? '' : path.slice(q + 1)),
    headers: new Map(Object.entries(headers)),
    pathAndQuery: path,
  };
}

describe('JwtAuthenticator', () => {
  let key: CryptoKey;
  let provider: JwtProvider;
  const filter = (requires: JwtRequirement): JwtAuthnFilter => ({
    name: 'envoy.filters.http.jwt_authn',
    providers: new Map([['p', provider]]),
    rules: [
      {
        match: { path: { kind: 'prefix', value: '/' }, caseSensitive: true, headers: [], query: [] },
        requires,
      },
    ],
    bypassCorsPreflight: true,
  });
  const sign = (claims: Record<string, unknown>, nbf?: number): Promise<string> => {
    const jwt = new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'e1' }).setIssuer(ISS);
    if (nbf !== undefined) jwt.setNotBefore(nbf);
    return jwt.sign(key);
  };

  beforeAll(async () => {
    const pair = await generateKeyPair('ES256');
    key = pair.privateKey;
    provider = {
      name: 'p',
      issuer: ISS,
      audiences: [],
      jwks: { kind: 'local', jwks: { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'e1' }] } },
      forward: false,
      fromHeaders: [],
      fromParams: [],
      fromCookies: [],
      forwardPayloadHeader: 'x-jwt-payload',
      payloadInMetadata: 'payload',
      spaceDelimitedClaims: ['scope'],
      claimToHeaders: [],
      clockSkewSeconds: 60,
    };
  });

  it('answers a missing token 401 "Jwt is missing" without error= only when the provider is required', async () => {
    const auth = new JwtAuthenticator();
    expect(
      await auth.authenticate(
        filter({ kind: 'provider', provider: 'p', audiences: undefined }),
        request('/a?b=1'),
      ),
    ).toEqual({
      kind: 'deny',
      status: 401,
      body: JwtStatus.missing,
      wwwAuthenticate: 'Bearer realm="http://reviews/a"',
    });
    const optional: JwtRequirement = {
      kind: 'any',
      requirements: [{ kind: 'provider', provider: 'p', audiences: undefined }, { kind: 'allow-missing' }],
    };
    expect((await auth.authenticate(filter(optional), request('/a'))).kind).toBe('allow');
  });

  it('reads the default locations (Bearer header, access_token param), splits scope and forwards the payload', async () => {
    const auth = new JwtAuthenticator();
    const t = await sign({ sub: 'alice', scope: 'read write' });
    const f = filter({ kind: 'provider', provider: 'p', audiences: undefined });
    const viaParam = await auth.authenticate(f, request(`/a?access_token=${t}`));
    // The payload header is never taken from the client; a token from a parameter stays.
    expect(viaParam).toMatchObject({ kind: 'allow', removeHeaders: ['x-jwt-payload'] });
    const viaHeader = await auth.authenticate(f, request('/a', { authorization: `Bearer ${t}` }));
    expect(viaHeader).toEqual({
      kind: 'allow',
      metadata: { payload: { iss: ISS, sub: 'alice', scope: ['read', 'write'] } },
      setHeaders: [['x-jwt-payload', t.split('.')[1]]],
      removeHeaders: ['x-jwt-payload', 'authorization'],
    });
  });

  it('lets allow_missing_or_failed pass a bad token without a payload, and says "Jwt not yet valid" otherwise', async () => {
    const auth = new JwtAuthenticator();
    const future = await sign({ sub: 'a' }, Math.floor(Date.now() / 1000) + 3600);
    const header = { authorization: `Bearer ${future}` };
    expect(
      await auth.authenticate(filter({ kind: 'allow-missing-or-failed' }), request('/', header)),
    ).toEqual({
      kind: 'allow',
      metadata: undefined,
      setHeaders: [],
      removeHeaders: ['x-jwt-payload'],
    });
    expect(
      await auth.authenticate(
        filter({ kind: 'provider', provider: 'p', audiences: undefined }),
        request('/', header),
      ),
    ).toMatchObject({ kind: 'deny', status: 401, body: JwtStatus.notYetValid });
  });

  it('checks provider_and_audiences and skips CORS preflights', async () => {
    const auth = new JwtAuthenticator();
    const t = await sign({ sub: 'a', aud: ['x', 'y'] });
    const f = filter({ kind: 'provider', provider: 'p', audiences: ['z'] });
    expect(await auth.authenticate(f, request('/', { authorization: `Bearer ${t}` }))).toMatchObject({
      status: 403,
      body: JwtStatus.audienceNotAllowed,
    });
    const preflight = request('/', { origin: 'http://a', 'access-control-request-method': 'GET' }, 'OPTIONS');
    expect((await auth.authenticate(f, preflight)).kind).toBe('allow');
  });
});
