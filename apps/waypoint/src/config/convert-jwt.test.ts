import { describe, expect, it } from 'vitest';
import { ProtoReader } from './proto-reader.ts';
import { convertJwtAuthn } from './convert-jwt.ts';

describe('convertJwtAuthn', () => {
  it('reads istiod’s config: providers, requirement tree and defaults', () => {
    const r = new ProtoReader();
    const f = convertJwtAuthn(
      r,
      'envoy.filters.http.jwt_authn',
      {
        providers: {
          'origins-0': {
            issuer: 'i',
            local_jwks: { inline_string: '{"keys":[{"kty":"EC"}]}' },
            payload_in_metadata: 'payload',
          },
          'origins-1': {
            issuer: 'j',
            remote_jwks: { http_uri: { uri: 'https://keys.example/jwks', cluster: 'c' } },
          },
        },
        rules: [
          {
            match: { prefix: '/' },
            requires: {
              requires_any: { requirements: [{ provider_name: 'origins-0' }, { allow_missing: {} }] },
            },
          },
        ],
        bypass_cors_preflight: true,
      },
      'typed_config',
    );
    expect(r.problems).toEqual([]);
    expect(f.providers.get('origins-0')).toMatchObject({
      issuer: 'i',
      jwks: { kind: 'local', jwks: { keys: [{ kty: 'EC' }] } },
      clockSkewSeconds: 60,
      forward: false,
    });
    expect(f.providers.get('origins-1')?.jwks).toEqual({
      kind: 'remote',
      uri: 'https://keys.example/jwks',
      cacheDurationMs: 300_000,
      timeoutMs: 5_000,
    });
    expect(f.rules[0]?.requires).toEqual({
      kind: 'any',
      requirements: [
        { kind: 'provider', provider: 'origins-0', audiences: undefined },
        { kind: 'allow-missing' },
      ],
    });
  });

  it('NACKs an unknown provider, a bad JWKS URI, a provider without keys and unsupported fields', () => {
    const r = new ProtoReader();
    convertJwtAuthn(
      r,
      'jwt',
      {
        providers: {
          a: { issuer: 'i', remote_jwks: { http_uri: { uri: 'file:///etc/passwd' } } },
          b: { issuer: 'j' },
          c: { issuer: 'k', local_jwks: { inline_string: '{}' }, require_expiration: true },
        },
        rules: [{ match: { prefix: '/' }, requires: { provider_name: 'nope' } }],
        requirement_map: {},
      },
      'f',
    );
    expect(r.problems).toEqual([
      'f.requirement_map: is not supported by the waypoint',
      'f.providers["a"].remote_jwks.http_uri.uri: "file:///etc/passwd" is not an http(s) URL',
      'f.providers["b"]: a provider needs local_jwks or remote_jwks',
      'f.providers["c"].require_expiration: is not supported by the waypoint',
      'f.rules[0].requires.provider_name: provider "nope" is not defined',
    ]);
  });
});
