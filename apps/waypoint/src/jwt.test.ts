/**
 * JWT authentication (`envoy.filters.http.jwt_authn`) then RBAC on the JWT payload, end to end
 * on loopback: a real HBONE client, the waypoint, an HBONE echo backend, and a loopback JWKS
 * server for the remote provider. The listener is what istiod emits for a RequestAuthentication
 * with two issuers (one inline JWKS, one `jwksUri`) and an AuthorizationPolicy with
 * `requestPrincipals` and a `request.auth.claims[groups]` condition.
 */
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import type { CryptoKey, JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TypeUrl } from '@ambient-mesh/mesh-api';
import { captureLogs } from '@ambient-mesh/runtime/testing';
import type { Bound } from './app.ts';
import { startLoopbackWaypoint } from './testing/loopback-waypoint.ts';
import {
  any,
  assignment,
  catchAllRoute,
  edsCluster,
  hcmListener,
  reviewsEndpoint,
  ms,
} from './testing/fixtures.ts';
import { HboneBackend, MeshClient, TestXdsServer, createTestPki } from './testing/loopback.ts';
import { EnvoyType } from './xds/envoy-protos.ts';
import type { ProtoObject } from './xds/envoy-protos.ts';
import type { JwtProvider } from './config/types.ts';
import { JwtAuthenticator } from './proxy/jwt-authn.ts';

const VIP = '10.96.0.20';
const ROUTE = 'inbound-vip|80|http|reviews.default.svc.cluster.local';
const A = 'outbound|80||reviews-a.default.svc.cluster.local';
const ISSUER = 'https://issuer.example';
const REMOTE_ISSUER = 'https://remote.example';
const JWT = 'envoy.filters.http.jwt_authn';

const claim = (name: string, value: ProtoObject): ProtoObject => ({
  metadata: { filter: JWT, path: [{ key: 'payload' }, { key: name }], value },
});
const exact = (v: string): ProtoObject => ({ string_match: { exact: v } });

/** istiod's two-provider requirement: a valid token of either, or none (RBAC decides). */
function jwtFilter(inlineJwks: string, jwksUri: string): ProtoObject {
  const provider = (extra: ProtoObject): ProtoObject => ({
    payload_in_metadata: 'payload',
    normalize_payload_in_metadata: { space_delimited_claims: ['permission', 'scope'] },
    ...extra,
  });
  const anyOf = (name: string): ProtoObject => ({
    requires_any: { requirements: [{ provider_name: name }, { allow_missing: {} }] },
  });
  return {
    providers: {
      'origins-0': provider({
        issuer: ISSUER,
        audiences: ['reviews'],
        local_jwks: { inline_string: inlineJwks },
        claim_to_headers: [{ header_name: 'x-jwt-sub', claim_name: 'sub' }],
      }),
      'origins-1': provider({
        issuer: REMOTE_ISSUER,
        remote_jwks: {
          http_uri: { uri: jwksUri, cluster: 'outbound|80||jwks', timeout: ms(5000) },
          cache_duration: ms(300_000),
        },
        forward: true,
        from_headers: [{ name: 'x-token', value_prefix: '' }],
      }),
    },
    rules: [
      {
        match: { prefix: '/' },
        requires: {
          requires_any: {
            requirements: [
              { provider_name: 'origins-0' },
              { provider_name: 'origins-1' },
              { requires_all: { requirements: [anyOf('origins-0'), anyOf('origins-1')] } },
            ],
          },
        },
      },
    ],
    bypass_cors_preflight: true,
  };
}

const rbacAllow = {
  rules: {
    action: 'ALLOW',
    policies: {
      'ns[default]-policy[jwt]-rule[0]': {
        permissions: [{ url_path: { path: { prefix: '/secure' } } }],
        principals: [{ and_ids: { ids: [claim('iss', exact(ISSUER)), claim('sub', exact('alice'))] } }],
      },
      'ns[default]-policy[jwt]-rule[1]': {
        permissions: [{ url_path: { path: { prefix: '/group' } } }],
        principals: [
          claim('groups', {
            or_match: {
              value_matchers: [{ list_match: { one_of: exact('admin') } }, exact('admin')],
            },
          }),
        ],
      },
      'ns[default]-policy[jwt]-rule[2]': {
        permissions: [{ url_path: { path: { prefix: '/remote' } } }],
        principals: [claim('iss', exact(REMOTE_ISSUER))],
      },
      'ns[default]-policy[jwt]-rule[3]': {
        permissions: [{ url_path: { path: { prefix: '/open' } } }],
        principals: [{ any: true }],
      },
    },
  },
};

function listener(filter: ProtoObject): ProtoObject {
  return hcmListener({
    chainName: ROUTE,
    vip: VIP,
    port: 80,
    routeName: ROUTE,
    httpFilters: [
      { name: JWT, typed_config: any(EnvoyType.jwtAuthn, filter) },
      { name: 'envoy.filters.http.rbac', typed_config: any(EnvoyType.httpRbac, rbacAllow) },
    ],
  });
}

describe('waypoint JWT authentication then RBAC on loopback', () => {
  let xds: TestXdsServer;
  let backend: HboneBackend;
  let waypoint: Bound;
  let client: MeshClient;
  let jwksServer: Server;
  let jwksFetches = 0;
  let key: CryptoKey;
  let remoteKey: CryptoKey;
  let otherKey: CryptoKey;
  const captured = captureLogs();

  const token = async (
    claims: Record<string, unknown>,
    options: { issuer?: string; key?: CryptoKey; kid?: string; exp?: number; aud?: string } = {},
  ): Promise<string> =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: options.kid ?? 'k1' })
      .setIssuer(options.issuer ?? ISSUER)
      .setAudience(options.aud ?? 'reviews')
      .setIssuedAt()
      .setExpirationTime(options.exp ?? Math.floor(Date.now() / 1000) + 3600)
      .sign(options.key ?? key);

  beforeAll(async () => {
    const pki = await createTestPki();
    ({ privateKey: key } = await generateKeyPair('RS256', { extractable: true }));
    const pair = await generateKeyPair('RS256', { extractable: true });
    const remotePair = await generateKeyPair('RS256', { extractable: true });
    ({ privateKey: otherKey } = await generateKeyPair('RS256', { extractable: true }));
    remoteKey = remotePair.privateKey;
    key = pair.privateKey;
    const jwk = async (k: CryptoKey, kid: string): Promise<JWK> => ({
      ...(await exportJWK(k)),
      kid,
      alg: 'RS256',
      use: 'sig',
    });
    const inline = JSON.stringify({ keys: [await jwk(pair.publicKey, 'k1')] });
    const remoteJwks = JSON.stringify({ keys: [await jwk(remotePair.publicKey, 'r1')] });
    jwksServer = createServer((_req, res) => {
      jwksFetches++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(remoteJwks);
    });
    await new Promise<void>(resolve => jwksServer.listen(0, '127.0.0.1', resolve));
    const jwksUri = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks`;

    xds = new TestXdsServer();
    await xds.start();
    backend = new HboneBackend('a', await pki.identity('default', 'reviews-a'), (req, res) => {
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ headers: req.headers }));
    });
    await backend.start();
    xds.set(TypeUrl.cluster, A, edsCluster(A));
    xds.set(TypeUrl.clusterLoadAssignment, A, assignment(A, [reviewsEndpoint(backend)]));
    xds.set(TypeUrl.listener, 'main_internal', listener(jwtFilter(inline, jwksUri)));
    xds.set(TypeUrl.routeConfiguration, ROUTE, catchAllRoute(ROUTE, A));
    const started = await startLoopbackWaypoint({ xds, pki, logs: captured.logs });
    waypoint = started.waypoint;
    client = new MeshClient(await started.clientOptions('productpage', `${VIP}:80`));
  }, 60_000);

  afterAll(async () => {
    await client.close();
    await waypoint.shutdown();
    await backend.close();
    xds.close();
    await new Promise<void>(resolve =>
      jwksServer.close(() => {
        resolve();
      }),
    );
  });

  const bearer = (t: string): Record<string, string> => ({ authorization: `Bearer ${t}` });

  it('lets a request without a token through to RBAC: 403 where a principal is required, 200 where not', async () => {
    const denied = await client.get('/secure');
    expect(denied.status).toBe(403);
    expect(denied.text).toBe('RBAC: access denied');
    const open = await client.get('/open', { 'x-jwt-sub': 'spoofed' });
    expect(open.status).toBe(200);
    // A header the filter writes from a claim is never taken from the client.
    expect((open.json() as { headers: Record<string, string> }).headers['x-jwt-sub']).toBeUndefined();
  });

  it('answers 401 "Jwks remote fetch is failed" while the remote JWKS is unreachable', async () => {
    const closed = createServer();
    await new Promise<void>(resolve => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>(resolve =>
      closed.close(() => {
        resolve();
      }),
    );
    const auth = new JwtAuthenticator();
    const provider: JwtProvider = {
      name: 'p',
      issuer: REMOTE_ISSUER,
      audiences: [],
      jwks: { kind: 'remote', uri: `http://127.0.0.1:${port}/jwks`, cacheDurationMs: 1000, timeoutMs: 5000 },
      forward: false,
      fromHeaders: [],
      fromParams: [],
      fromCookies: [],
      forwardPayloadHeader: undefined,
      payloadInMetadata: undefined,
      spaceDelimitedClaims: [],
      claimToHeaders: [],
      clockSkewSeconds: 60,
    };
    const t = await token({ sub: 'svc' }, { issuer: REMOTE_ISSUER, key: remoteKey, kid: 'r1' });
    const outcome = await auth.authenticate(
      {
        name: JWT,
        providers: new Map([['p', provider]]),
        rules: [
          {
            match: { path: { kind: 'prefix', value: '/' }, caseSensitive: true, headers: [], query: [] },
            requires: { kind: 'provider', provider: 'p', audiences: undefined },
          },
        ],
        bypassCorsPreflight: false,
      },
      {
        method: 'GET',
        host: 'reviews',
        path: '/',
        query: new URLSearchParams(),
        headers: new Map([['authorization', `Bearer ${t}`]]),
        pathAndQuery: '/',
      },
    );
    expect(outcome).toMatchObject({ kind: 'deny', status: 401, body: 'Jwks remote fetch is failed' });
  });

  it('allows a valid token whose principal the policy names, strips it and sets the claim header', async () => {
    const res = await client.get('/secure/x', bearer(await token({ sub: 'alice' })));
    expect(res.status).toBe(200);
    const seen = (res.json() as { headers: Record<string, string> }).headers;
    expect(seen.authorization).toBeUndefined();
    expect(seen['x-jwt-sub']).toBe('alice');
  });

  it('denies a valid token of another principal with 403 from RBAC', async () => {
    const res = await client.get('/secure', bearer(await token({ sub: 'bob' })));
    expect(res.status).toBe(403);
    expect(res.text).toBe('RBAC: access denied');
  });

  it('allows on a claim condition, a list claim included', async () => {
    expect(
      (await client.get('/group', bearer(await token({ sub: 'bob', groups: ['dev', 'admin'] })))).status,
    ).toBe(200);
    expect((await client.get('/group', bearer(await token({ sub: 'bob', groups: 'admin' })))).status).toBe(
      200,
    );
    expect((await client.get('/group', bearer(await token({ sub: 'bob', groups: ['dev'] })))).status).toBe(
      403,
    );
  });

  it('answers a token with a bad signature 401 with Envoy body and www-authenticate', async () => {
    const res = await client.get('/open?x=1', bearer(await token({ sub: 'alice' }, { key: otherKey })));
    expect(res.status).toBe(401);
    expect(res.text).toBe('Jwt verification fails');
    expect(res.headers['www-authenticate']).toBe(
      'Bearer realm="http://reviews.default.svc.cluster.local/open", error="invalid_token"',
    );
  });

  it('answers an expired token, an unknown issuer and a wrong audience as Envoy does', async () => {
    const expired = await client.get(
      '/open',
      bearer(await token({ sub: 'alice' }, { exp: Math.floor(Date.now() / 1000) - 3600 })),
    );
    expect([expired.status, expired.text]).toEqual([401, 'Jwt is expired']);
    const unknown = await client.get(
      '/open',
      bearer(await token({ sub: 'a' }, { issuer: 'https://nobody' })),
    );
    expect([unknown.status, unknown.text]).toEqual([401, 'Jwt issuer is not configured']);
    const aud = await client.get('/open', bearer(await token({ sub: 'a' }, { aud: 'other' })));
    expect([aud.status, aud.text]).toEqual([403, 'Audiences in Jwt are not allowed']);
    expect(aud.headers['www-authenticate']).toContain('error="invalid_token"');
    const garbage = await client.get('/open', bearer('not-a-jwt'));
    expect(garbage.status).toBe(401);
    expect(backend.requests.some(r => r.headers.authorization === 'Bearer not-a-jwt')).toBe(false);
  });

  it('verifies against a remote JWKS from its own header, fetched once and cached', async () => {
    const t = await token({ sub: 'svc' }, { issuer: REMOTE_ISSUER, key: remoteKey, kid: 'r1' });
    const first = await client.get('/remote', { 'x-token': t });
    expect(first.status).toBe(200);
    // `forward: true`: the token header reaches the backend.
    expect((first.json() as { headers: Record<string, string> }).headers['x-token']).toBe(t);
    expect((await client.get('/remote', { 'x-token': t })).status).toBe(200);
    expect(jwksFetches).toBe(1);
    const forged = await token({ sub: 'svc' }, { issuer: REMOTE_ISSUER, key: otherKey, kid: 'r1' });
    const bad = await client.get('/remote', { 'x-token': forged });
    expect([bad.status, bad.text]).toEqual([401, 'Jwt verification fails']);
  });
});
