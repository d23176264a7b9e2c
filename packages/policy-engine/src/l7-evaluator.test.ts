import { describe, expect, it } from 'vitest';
import { authorizeHttp } from './l7-evaluator.ts';
import type { HttpRequestContext } from './l7-evaluator.ts';
import { normalizePath, pathMatches } from './path-normalization.ts';
import type { PathNormalization } from './path-normalization.ts';
import type { AuthorizationPolicy, AuthorizationPolicySpec } from './policy-types.ts';

const req = (over: Partial<HttpRequestContext> = {}): HttpRequestContext => ({
  method: 'GET',
  host: 'reviews.app.svc.cluster.local',
  path: '/api/v1/items',
  headers: {},
  sourceIp: '10.0.0.1',
  sourceIdentity: 'spiffe://cluster.local/ns/frontend/sa/web',
  destinationIp: '10.0.0.2',
  destinationPort: 9080,
  ...over,
});
const ap = (name: string, spec: AuthorizationPolicySpec): AuthorizationPolicy => ({
  metadata: { name, namespace: 'app' },
  spec: { targetRefs: [{ kind: 'Service', name: 'reviews' }], ...spec },
});
const denyPath = (path: string) =>
  ap('deny-admin', { action: 'DENY', rules: [{ to: [{ operation: { paths: [path] } }] }] });

interface PathCase {
  name: string;
  raw: string;
  mode?: PathNormalization;
  expected: string | undefined;
}
const pathCases: PathCase[] = [
  { name: 'duplicate slashes are merged', raw: '//admin//x', expected: '/admin/x' },
  { name: '%2F is decoded to / (upper case)', raw: '/admin%2Fx', expected: '/admin/x' },
  { name: '%2f is decoded to / (lower case)', raw: '/admin%2fx', expected: '/admin/x' },
  { name: '%5C and %5c become /', raw: '/admin%5cx%5Cy', expected: '/admin/x/y' },
  { name: 'a raw backslash becomes /', raw: '/admin\\x', expected: '/admin/x' },
  { name: 'the fragment is stripped', raw: '/admin#/public', expected: '/admin' },
  { name: 'the query is set apart', raw: '/admin?x=/public', expected: '/admin' },
  { name: 'dot segments are resolved', raw: '/public/../admin/./x', expected: '/admin/x' },
  { name: '%2e%2e counts as a dot segment', raw: '/public/%2e%2e/admin', expected: '/admin' },
  { name: '.. cannot climb above the root', raw: '/../../admin', expected: '/admin' },
  { name: 'unreserved escapes are decoded', raw: '/%61dmin', expected: '/admin' },
  { name: 'other escapes keep upper-case hex', raw: '/a%3fb', expected: '/a%3Fb' },
  { name: 'BASE keeps duplicate slashes', raw: '/a//b', mode: 'BASE', expected: '/a//b' },
  { name: 'MERGE_SLASHES does not decode %2F', raw: '/a%2Fb', mode: 'MERGE_SLASHES', expected: '/a%2Fb' },
  { name: 'a control character rejects the request', raw: '/admin\u0000', expected: undefined },
  { name: 'a non-origin-form target is rejected', raw: 'http://x/admin', expected: undefined },
];

describe('normalizePath', () => {
  it.each(pathCases)('$name', ({ raw, mode, expected }) => {
    expect(normalizePath(raw, mode)?.path).toBe(expected);
  });
});

describe('pathMatches', () => {
  it.each([
    ['/admin', '/admin', true],
    ['/admin', '/admin/', false],
    ['/admin*', '/admin/x', true],
    ['*/x', '/admin/x', true],
    ['*', '/', true],
    ['/a/{*}/c', '/a/b/c', true],
    ['/a/{*}/c', '/a/b/d/c', false],
    ['/a/{**}', '/a/b/d/c', true],
    ['/a/{**}', '/a', false],
  ] as const)('%s ~ %s → %s', (pattern, path, expected) => {
    expect(pathMatches(pattern, path)).toBe(expected);
  });
});

describe('L7 path bypass attempts against a DENY /admin* policy', () => {
  it.each([
    '//admin',
    '/admin%2Fsecret',
    '/Public/..%2Fadmin',
    '/public/..%5Cadmin',
    '/%61dmin',
    '/public/../admin#x',
    '/./admin',
  ])('%s is denied', path => {
    const d = authorizeHttp(req({ path }), [denyPath('/admin*')]);
    expect(d).toMatchObject({ allowed: false, reason: 'explicitly-denied', policy: 'app/deny-admin' });
  });

  it('an unrelated path is allowed', () => {
    expect(authorizeHttp(req({ path: '/public/admin' }), [denyPath('/admin*')]).allowed).toBe(true);
  });
});

describe('L7 evaluation order and fields (docs/protocols.md#authorization-waypoint)', () => {
  const allowGet = ap('allow-get', { rules: [{ to: [{ operation: { methods: ['GET'] } }] }] });
  const denyAll = ap('deny-all', { action: 'DENY', rules: [{}] });
  const custom = ap('ext', {
    action: 'CUSTOM',
    provider: { name: 'opa' },
    rules: [{ to: [{ operation: { paths: ['/api*'] } }] }],
  });

  it('CUSTOM runs before DENY and can deny', () => {
    const d = authorizeHttp(req(), [denyAll, custom], { customAuthorizer: () => false });
    expect(d).toEqual({ allowed: false, policy: 'app/ext', reason: 'custom-denied', audited: [] });
  });

  it('a CUSTOM approval still goes through DENY', () => {
    const d = authorizeHttp(req(), [custom, denyAll], { customAuthorizer: () => true });
    expect(d.reason).toBe('explicitly-denied');
  });

  it('a matching CUSTOM policy without an authorizer fails closed', () => {
    expect(authorizeHttp(req(), [custom]).reason).toBe('custom-denied');
  });

  it('DENY runs before ALLOW', () => {
    expect(authorizeHttp(req(), [allowGet, denyAll]).reason).toBe('explicitly-denied');
  });

  it('ALLOW by method; other methods are not allowed', () => {
    expect(authorizeHttp(req(), [allowGet])).toMatchObject({ allowed: true, reason: 'allowed' });
    expect(authorizeHttp(req({ method: 'POST' }), [allowGet])).toMatchObject({
      allowed: false,
      reason: 'not-allowed',
    });
  });

  it('AUDIT policies are reported but never decide', () => {
    const audit = ap('audit', { action: 'AUDIT', rules: [{}] });
    expect(authorizeHttp(req(), [audit])).toEqual({
      allowed: true,
      reason: 'no-policies',
      audited: ['app/audit'],
    });
  });

  it('hosts match without case and with any port', () => {
    const p = ap('h', { rules: [{ to: [{ operation: { hosts: ['Reviews.app.svc.cluster.local'] } }] }] });
    expect(authorizeHttp(req({ host: 'reviews.APP.svc.cluster.local:9080' }), [p]).allowed).toBe(true);
    expect(authorizeHttp(req({ host: 'reviews.app.svc.cluster.local.evil:9080' }), [p]).allowed).toBe(false);
  });

  it('request principals need a validated JWT', () => {
    const p = ap('jwt', { rules: [{ from: [{ source: { requestPrincipals: ['https://issuer/*'] } }] }] });
    expect(authorizeHttp(req({ requestPrincipal: 'https://issuer/alice' }), [p]).allowed).toBe(true);
    expect(authorizeHttp(req(), [p]).allowed).toBe(false);
  });

  it('source namespace comes from the peer identity; bare service accounts use the policy namespace', () => {
    const p = ap('sa', { rules: [{ from: [{ source: { serviceAccounts: ['web'] } }] }] });
    expect(authorizeHttp(req({ sourceIdentity: 'spiffe://cluster.local/ns/app/sa/web' }), [p]).allowed).toBe(
      true,
    );
    expect(authorizeHttp(req(), [p]).allowed).toBe(false);
  });

  it('a dotted service account does not match a look-alike (CVE-2026-39350)', () => {
    const p = ap('sa', { rules: [{ from: [{ source: { serviceAccounts: ['app/a.b'] } }] }] });
    expect(authorizeHttp(req({ sourceIdentity: 'spiffe://cluster.local/ns/app/sa/aXb' }), [p]).allowed).toBe(
      false,
    );
  });

  it('a SAN with a NUL byte is rejected (CVE-2025-66220)', () => {
    const d = authorizeHttp(req({ sourceIdentity: 'spiffe://cluster.local/ns/app/sa/web\u0000x' }), []);
    expect(d.reason).toBe('invalid-request');
  });

  it('when claims: nested claim paths and list claims', () => {
    const p = ap('claims', {
      rules: [{ when: [{ key: 'request.auth.claims[realm][role]', values: ['admin'] }] }],
    });
    const auth = { claims: { realm: { role: ['user', 'admin'] } } };
    expect(authorizeHttp(req({ requestAuth: auth }), [p]).allowed).toBe(true);
    expect(authorizeHttp(req({ requestAuth: { claims: { realm: { role: 'user' } } } }), [p]).allowed).toBe(
      false,
    );
  });

  it('an unsupported when key fails closed: matches for DENY, not for ALLOW', () => {
    const when = [{ key: 'experimental.envoy.filters.x', values: ['y'] }];
    expect(authorizeHttp(req(), [ap('d', { action: 'DENY', rules: [{ when }] })]).allowed).toBe(false);
    expect(authorizeHttp(req(), [ap('a', { rules: [{ when }] })]).allowed).toBe(false);
  });
});

describe('multi-value headers are matched one by one (CVE-2026-26308)', () => {
  const denyAdmin = ap('deny-admin-user', {
    action: 'DENY',
    rules: [{ when: [{ key: 'request.headers[X-User]', values: ['admin'] }] }],
  });
  const allowOnlyAlice = ap('alice', {
    rules: [{ when: [{ key: 'request.headers[x-user]', values: ['alice'], notValues: ['admin'] }] }],
  });

  it('a DENY on one value catches it among several', () => {
    expect(authorizeHttp(req({ headers: { 'x-user': ['guest', 'admin'] } }), [denyAdmin]).allowed).toBe(
      false,
    );
  });

  it('joined values are never matched as one string', () => {
    const exactJoined = ap('joined', {
      rules: [{ when: [{ key: 'request.headers[x-user]', values: ['guest,admin'] }] }],
    });
    expect(authorizeHttp(req({ headers: { 'x-user': ['guest', 'admin'] } }), [exactJoined]).allowed).toBe(
      false,
    );
  });

  it('notValues reject when any single value hits', () => {
    expect(authorizeHttp(req({ headers: { 'x-user': ['alice', 'admin'] } }), [allowOnlyAlice]).allowed).toBe(
      false,
    );
    expect(authorizeHttp(req({ headers: { 'X-USER': 'alice' } }), [allowOnlyAlice]).allowed).toBe(true);
  });

  it('header names from different cases are one header', () => {
    expect(
      authorizeHttp(req({ headers: { 'X-User': 'guest', 'x-user': 'admin' } }), [denyAdmin]).allowed,
    ).toBe(false);
  });
});
