import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { systemTimers } from '@ambient-mesh/runtime';
import { captureLogs } from '@ambient-mesh/runtime/testing';
import { FAIL_CLOSED_JWKS, JwksResolver } from './jwks-resolver.ts';
import { makeAuthorizationPolicy } from '../testing/fixtures.ts';
import { makeBackendPod, makeBoundService, makeWaypointGateway } from '../testing/waypoint-fixtures.ts';
import { waypointIndexes } from '../testing/waypoint-indexes.ts';
import type { KubeObject } from '../kube/objects.ts';
import { EnvoyType, EnvoyTypeUrls, decodeEnvoy, typedConfig, unpackTyped } from './envoy-protos.ts';
import { buildJwtFilter, validateRequestAuthentication } from './translate-jwt.ts';
import type { ValidRequestAuthentication } from './translate-jwt.ts';
import { rbacPolicies } from './translate-rbac.ts';
import { WaypointKinds as K } from './waypoint-index.ts';
import { validateAuthorizationPolicy } from '@ambient-mesh/policy-engine';
import { until } from '@ambient-mesh/kube/testing';

const reviews = 'inbound-vip|80|http|reviews.ns1.svc.cluster.local';
const JWKS = JSON.stringify({ keys: [{ kty: 'oct', k: 'c2VjcmV0', kid: 'k1' }] });

function requestAuthn(name: string, namespace: string, spec: Record<string, unknown>): KubeObject {
  return {
    apiVersion: 'security.istio.io/v1',
    kind: 'RequestAuthentication',
    metadata: { name, namespace },
    spec,
  } as KubeObject;
}

function valid(spec: Record<string, unknown>): ValidRequestAuthentication {
  const r = validateRequestAuthentication(requestAuthn('ra', 'ns1', spec));
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
}

describe('RequestAuthentication → jwt_authn', () => {
  it('builds upstream’s one-provider config: {provider OR allow_missing}, payload in metadata, inline JWKS', () => {
    const cfg = buildJwtFilter([
      valid({
        jwtRules: [
          {
            issuer: 'https://issuer.example',
            audiences: ['reviews'],
            jwks: JWKS,
            fromHeaders: [{ name: 'x-token', prefix: 'Bearer ' }],
            fromParams: ['token'],
            outputClaimToHeaders: [{ header: 'x-sub', claim: 'sub' }],
            forwardOriginalToken: true,
          },
        ],
      }),
    ]);
    // The config is a valid JwtAuthentication (encodes through the Envoy protos).
    const decoded = unpackTyped(typedConfig(EnvoyType.jwtAuthn, cfg!));
    expect(decoded).toEqual({
      rules: [
        {
          match: { prefix: '/' },
          requires: { requiresAny: { requirements: [{ providerName: 'origins-0' }, { allowMissing: {} }] } },
        },
      ],
      providers: {
        'origins-0': {
          issuer: 'https://issuer.example',
          audiences: ['reviews'],
          localJwks: { inlineString: JWKS },
          forward: true,
          fromHeaders: [{ name: 'x-token', valuePrefix: 'Bearer ' }],
          fromParams: ['token'],
          payloadInMetadata: 'payload',
          normalizePayloadInMetadata: { spaceDelimitedClaims: ['permission', 'scope'] },
          claimToHeaders: [{ headerName: 'x-sub', claimName: 'sub' }],
        },
      },
      bypassCorsPreflight: true,
    });
  });

  it('inlines istiod’s key set for a jwksUri as local_jwks when given a lookup (upstream’s default), with the rule’s timeout', () => {
    const asked: [string, number][] = [];
    const cfg = buildJwtFilter(
      [
        valid({
          jwtRules: [{ issuer: 'z-issuer', jwksUri: 'https://keys.example/jwks.json', timeout: '2s' }],
        }),
      ],
      (uri, timeoutMs) => {
        asked.push([uri, timeoutMs]);
        return JWKS;
      },
    ) as { providers: Record<string, { localJwks?: unknown; remoteJwks?: unknown }> };
    expect(asked).toEqual([['https://keys.example/jwks.json', 2000]]);
    expect(cfg.providers['origins-0']).toMatchObject({ localJwks: { inlineString: JWKS } });
    expect(cfg.providers['origins-0']!.remoteJwks).toBeUndefined();
    // An inline `jwks` wins over the URI (no fetch).
    buildJwtFilter(
      [valid({ jwtRules: [{ issuer: 'i', jwks: JWKS, jwksUri: 'https://x.example/k' }] })],
      uri => {
        throw new Error(`fetched ${uri}`);
      },
    );
  });

  it('sorts several issuers and ORs them with the AND of {p OR allow_missing}; without a lookup a jwksUri becomes remote_jwks', () => {
    const cfg = buildJwtFilter([
      valid({ jwtRules: [{ issuer: 'z-issuer', jwksUri: 'https://keys.example/jwks.json', timeout: '2s' }] }),
      valid({ jwtRules: [{ issuer: 'a-issuer', jwks: JWKS }] }),
    ]) as {
      providers: Record<string, { issuer: string; remoteJwks?: unknown }>;
      rules: { requires: unknown }[];
    };
    expect(cfg.providers['origins-0']!.issuer).toBe('a-issuer');
    expect(cfg.providers['origins-1']!.remoteJwks).toEqual({
      httpUri: {
        uri: 'https://keys.example/jwks.json',
        cluster: 'outbound|443||keys.example',
        timeout: { seconds: 2, nanos: 0 },
      },
      cacheDuration: { seconds: 300 },
    });
    const anyOf = (p: string) => ({
      requiresAny: { requirements: [{ providerName: p }, { allowMissing: {} }] },
    });
    expect(cfg.rules[0]!.requires).toEqual({
      requiresAny: {
        requirements: [
          { providerName: 'origins-0' },
          { providerName: 'origins-1' },
          { requiresAll: { requirements: [anyOf('origins-0'), anyOf('origins-1')] } },
        ],
      },
    });
    expect(() => typedConfig(EnvoyType.jwtAuthn, cfg)).not.toThrow();
    expect(buildJwtFilter([valid({ jwtRules: [] })])).toBeUndefined();
  });

  it('rejects a rule without issuer, a bad jwksUri, a bad JWKS and a bad header name', () => {
    const r = validateRequestAuthentication(
      requestAuthn('bad', 'ns1', {
        jwtRules: [
          { jwksUri: 'ftp://x' },
          { issuer: 'i', jwks: '{"nokeys":1}', fromHeaders: [{ name: 'bad header' }] },
        ],
      }),
    );
    expect(r.ok).toBe(false);
    if (!r.ok)
      expect(r.errors.map(e => e.path)).toEqual([
        'spec.jwtRules[0].issuer',
        'spec.jwtRules[0].jwksUri',
        'spec.jwtRules[1].jwks',
        'spec.jwtRules[1].fromHeaders[0].name',
      ]);
  });

  it('translates requestPrincipals and request.auth.claims into metadata matchers on the JWT payload', () => {
    const ap = validateAuthorizationPolicy(
      makeAuthorizationPolicy('jwt', 'ns1', {
        targetRefs: [{ kind: 'Service', group: '', name: 'reviews' }],
        rules: [
          {
            from: [{ source: { requestPrincipals: ['https://issuer.example/alice', '*'] } }],
            when: [{ key: 'request.auth.claims[realm][role]', values: ['admin'] }],
          },
        ],
      }),
    );
    if (!ap.ok) throw new Error('invalid policy');
    const unsupported: string[] = [];
    const policies = rbacPolicies(ap.value, unsupported);
    expect(unsupported).toEqual([]);
    const claim = (path: string[], value: unknown) => ({
      metadata: {
        filter: 'envoy.filters.http.jwt_authn',
        path: ['payload', ...path].map(key => ({ key })),
        value,
      },
    });
    const principal = (iss: unknown, sub: unknown) => ({
      andIds: { ids: [claim(['iss'], { stringMatch: iss }), claim(['sub'], { stringMatch: sub })] },
    });
    const exactAdmin = { stringMatch: { exact: 'admin' } };
    expect(policies['ns[ns1]-policy[jwt]-rule[0]']).toEqual({
      permissions: [{ any: true }],
      principals: [
        {
          andIds: {
            ids: [
              {
                orIds: {
                  ids: [
                    principal({ exact: 'https://issuer.example' }, { exact: 'alice' }),
                    principal({ safeRegex: { regex: '.+' } }, { safeRegex: { regex: '.+' } }),
                  ],
                },
              },
              claim(['realm', 'role'], {
                orMatch: { valueMatchers: [{ listMatch: { oneOf: exactAdmin } }, exactAdmin] },
              }),
            ],
          },
        },
      ],
    });
  });

  it('puts jwt_authn before the RBAC filters of the targeted Service’s chain and drops it with the policy', () => {
    const h = waypointIndexes();
    h.upsert(K.GATEWAY, makeWaypointGateway('wp1', 'ns1'));
    h.upsert(K.SERVICE, makeBoundService('reviews', 'ns1', 'wp1', '10.96.0.10'));
    h.upsert(K.SERVICE, makeBoundService('ratings', 'ns1', 'wp1', '10.96.0.11'));
    h.upsert(K.POD, makeBackendPod('reviews', 'ns1', '10.244.0.5'));
    h.upsert(
      K.AUTHORIZATION_POLICY,
      makeAuthorizationPolicy('need-jwt', 'ns1', {
        targetRefs: [{ kind: 'Service', group: '', name: 'reviews' }],
        rules: [{ from: [{ source: { requestPrincipals: ['*'] } }] }],
      }),
    );
    const ra = requestAuthn('jwt', 'ns1', {
      targetRefs: [{ kind: 'Service', group: '', name: 'reviews' }],
      jwtRules: [{ issuer: 'https://issuer.example', jwks: JWKS }],
    });
    const change = h.upsert(K.REQUEST_AUTHENTICATION, ra);
    expect([...change.waypoints]).toEqual(['ns1/wp1']);
    const filters = (chainName: string): string[] => {
      const main = decodeEnvoy(
        EnvoyType.listener,
        h.waypoints.resourcesFor('ns1/wp1', EnvoyTypeUrls.listener).get('main_internal')!.value,
      ) as { filterChains: { name: string; filters: { typedConfig: unknown }[] }[] };
      const hcm = unpackTyped(main.filterChains.find(c => c.name === chainName)!.filters[0]!.typedConfig) as {
        httpFilters: { name: string }[];
      };
      return hcm.httpFilters.map(f => f.name);
    };
    expect(filters(reviews)).toEqual([
      'envoy.filters.http.jwt_authn',
      'envoy.filters.http.rbac',
      'envoy.filters.http.router',
    ]);
    expect(filters('inbound-vip|80|http|ratings.ns1.svc.cluster.local')).toEqual([
      'envoy.filters.http.router',
    ]);
    h.delete(K.REQUEST_AUTHENTICATION, ra);
    expect(filters(reviews)).toEqual(['envoy.filters.http.rbac', 'envoy.filters.http.router']);
  });

  it('inlines a jwksUri fetched by istiod from a loopback server: fail-closed first, the fetched keys after the change, rotation re-pushes', async () => {
    let body = JWKS;
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    });
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
    const uri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
    const { logs } = captureLogs();
    const changes: string[] = [];
    let onChange: (u: string) => void = () => undefined;
    const resolver = new JwksResolver({
      timers: systemTimers,
      logger: logs.root,
      onChange: u => {
        onChange(u);
      },
    });
    try {
      const h = waypointIndexes({ jwksFor: (u, t) => resolver.keysFor(u, t) });
      onChange = u => {
        for (const w of h.waypoints.jwksChanged(u).waypoints) changes.push(w);
      };
      h.upsert(K.GATEWAY, makeWaypointGateway('wp1', 'ns1'));
      h.upsert(K.SERVICE, makeBoundService('reviews', 'ns1', 'wp1', '10.96.0.10'));
      h.upsert(
        K.REQUEST_AUTHENTICATION,
        requestAuthn('jwt', 'ns1', {
          targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'wp1' }],
          jwtRules: [{ issuer: 'https://issuer.example', jwksUri: uri }],
        }),
      );
      expect(h.waypoints.jwksUris()).toEqual(new Set([uri]));
      const inlined = (): string => {
        const main = decodeEnvoy(
          EnvoyType.listener,
          h.waypoints.resourcesFor('ns1/wp1', EnvoyTypeUrls.listener).get('main_internal')!.value,
        ) as { filterChains: { name: string; filters: { typedConfig: unknown }[] }[] };
        const hcm = unpackTyped(main.filterChains.find(c => c.name === reviews)!.filters[0]!.typedConfig) as {
          httpFilters: { name: string; typedConfig: unknown }[];
        };
        const jwt = unpackTyped(
          hcm.httpFilters.find(f => f.name === 'envoy.filters.http.jwt_authn')!.typedConfig,
        ) as {
          providers: Record<string, { localJwks?: { inlineString: string } }>;
        };
        return jwt.providers['origins-0']!.localJwks!.inlineString;
      };
      // Before istiod has the key set, no token can verify (upstream's fake JWKS).
      expect(inlined()).toBe(FAIL_CLOSED_JWKS);
      await until('a changed key set', () => changes.length > 0, 15_000);
      expect(changes).toEqual(['ns1/wp1']);
      expect(inlined()).toBe(JWKS);
      const rotated = JSON.stringify({ keys: [{ kty: 'oct', k: 'b3RoZXI', kid: 'k2' }] });
      body = rotated;
      await resolver.refreshAll();
      expect(changes).toEqual(['ns1/wp1', 'ns1/wp1']);
      expect(inlined()).toBe(rotated);
    } finally {
      resolver.close();
      server.closeAllConnections();
      await new Promise<void>(resolve =>
        server.close(() => {
          resolve();
        }),
      );
    }
  });

  it('keeps an invalid RequestAuthentication out of the waypoint and reports it', () => {
    const h = waypointIndexes();
    h.upsert(K.GATEWAY, makeWaypointGateway('wp1', 'ns1'));
    h.upsert(K.SERVICE, makeBoundService('reviews', 'ns1', 'wp1', '10.96.0.10'));
    const change = h.upsert(
      K.REQUEST_AUTHENTICATION,
      requestAuthn('bad', 'ns1', {
        targetRefs: [{ kind: 'Gateway', name: 'wp1' }],
        jwtRules: [{ jwks: JWKS }],
      }),
    );
    expect(change.waypoints.size).toBe(0);
    expect(h.waypoints.issues(K.REQUEST_AUTHENTICATION, 'ns1/bad')).toEqual([
      { path: 'spec.jwtRules[0].issuer', message: 'issuer must be set' },
    ]);
  });
});
