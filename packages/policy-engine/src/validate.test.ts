import { describe, expect, it } from 'vitest';
import { PolicyValidationError } from './errors.ts';
import { parseAuthorizationPolicy, validateAuthorizationPolicy } from './validate-authorization-policy.ts';
import { validatePeerAuthentication } from './validate-peer-authentication.ts';

const meta = { name: 'p', namespace: 'app' };

describe('validateAuthorizationPolicy', () => {
  it('accepts a full policy and returns it typed', () => {
    const input = {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: meta,
      spec: {
        selector: { matchLabels: { app: 'x' } },
        action: 'DENY',
        rules: [
          {
            from: [
              {
                source: { principals: ['cluster.local/ns/a/sa/b'], ipBlocks: ['10.0.0.0/8', '2001:db8::1'] },
              },
            ],
            to: [{ operation: { ports: ['80'], paths: ['/a/{*}/b', '/x*'] } }],
            when: [{ key: 'request.headers[x-a]', values: ['1'] }],
          },
        ],
      },
    };
    const r = validateAuthorizationPolicy(input);
    expect(r.ok).toBe(true);
    expect(r.ok && r.value.spec.rules?.[0]?.to?.[0]?.operation.ports).toEqual(['80']);
  });

  it('reports every error at once, each with its field path', () => {
    const r = validateAuthorizationPolicy({
      metadata: { name: 'p' },
      spec: {
        action: 'REJECT',
        selector: { matchLabels: { app: 'x' } },
        targetRefs: [{ kind: 'Service' }],
        rules: [
          {
            from: [
              { source: { principals: ['ok'] } },
              { source: { principals: ['a', 'b', 'a*b'], ipBlocks: ['10.0.0.0/33'] } },
            ],
            to: [{ operation: { ports: ['70000'] } }],
            when: [{ key: 'request.bogus', values: ['x'] }, { key: 'source.ip' }],
          },
        ],
      },
    });
    expect(r.ok).toBe(false);
    const paths = r.ok ? [] : r.errors.map(e => e.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        'metadata.namespace',
        'spec.action',
        'spec.selector',
        'spec.targetRefs[0].name',
        'spec.rules[0].from[1].source.principals[2]',
        'spec.rules[0].from[1].source.ipBlocks[0]',
        'spec.rules[0].to[0].operation.ports[0]',
        'spec.rules[0].when[0].key',
        'spec.rules[0].when[1]',
      ]),
    );
    expect(paths.length).toBeGreaterThanOrEqual(9);
  });

  it.each([
    ['not an object', 42, ''],
    [
      'unknown field (typo)',
      { metadata: meta, spec: { rules: [{ from: [{ source: { principal: ['x'] } }] }] } },
      'spec.rules[0].from[0].source.principal',
    ],
    [
      'empty source',
      { metadata: meta, spec: { rules: [{ from: [{ source: {} }] }] } },
      'spec.rules[0].from[0].source',
    ],
    [
      'missing operation',
      { metadata: meta, spec: { rules: [{ to: [{}] }] } },
      'spec.rules[0].to[0].operation',
    ],
    ['CUSTOM without provider', { metadata: meta, spec: { action: 'CUSTOM' } }, 'spec.provider'],
    ['provider without CUSTOM', { metadata: meta, spec: { provider: { name: 'x' } } }, 'spec.provider'],
    [
      'targetRef and targetRefs',
      {
        metadata: meta,
        spec: { targetRef: { kind: 'Service', name: 'a' }, targetRefs: [{ kind: 'Service', name: 'b' }] },
      },
      'spec.targetRefs',
    ],
    [
      'cross-namespace targetRef',
      { metadata: meta, spec: { targetRefs: [{ kind: 'Service', name: 'a', namespace: 'other' }] } },
      'spec.targetRefs[0].namespace',
    ],
    [
      'wildcard service account',
      { metadata: meta, spec: { rules: [{ from: [{ source: { serviceAccounts: ['ns/*'] } }] }] } },
      'spec.rules[0].from[0].source.serviceAccounts[0]',
    ],
    [
      'service accounts with namespaces',
      {
        metadata: meta,
        spec: { rules: [{ from: [{ source: { serviceAccounts: ['a'], namespaces: ['b'] } }] }] },
      },
      'spec.rules[0].from[0].source',
    ],
    [
      'bad path template',
      { metadata: meta, spec: { rules: [{ to: [{ operation: { paths: ['/a/{**}/b'] } }] }] } },
      'spec.rules[0].to[0].operation.paths[0]',
    ],
    [
      'empty string value',
      { metadata: meta, spec: { rules: [{ to: [{ operation: { methods: [''] } }] }] } },
      'spec.rules[0].to[0].operation.methods[0]',
    ],
    [
      'IP with leading zeros',
      { metadata: meta, spec: { rules: [{ from: [{ source: { ipBlocks: ['010.0.0.1'] } }] }] } },
      'spec.rules[0].from[0].source.ipBlocks[0]',
    ],
  ])('rejects %s at %s', (_name, input, path) => {
    const r = validateAuthorizationPolicy(input);
    expect(r.ok).toBe(false);
    expect(r.ok ? [] : r.errors.map(e => e.path)).toContain(path);
  });

  it('parseAuthorizationPolicy throws a POLICY_INVALID error naming the fields', () => {
    expect(() => parseAuthorizationPolicy({ metadata: meta, spec: { action: 'NOPE' } })).toThrow(
      PolicyValidationError,
    );
    try {
      parseAuthorizationPolicy({ metadata: meta, spec: { action: 'NOPE' } });
    } catch (err) {
      expect((err as PolicyValidationError).code).toBe('POLICY_INVALID');
      expect((err as PolicyValidationError).message).toContain('spec.action');
    }
  });
});

describe('validatePeerAuthentication', () => {
  it('accepts a workload policy with port-level mTLS', () => {
    const r = validatePeerAuthentication({
      metadata: meta,
      spec: {
        selector: { matchLabels: { app: 'a' } },
        mtls: { mode: 'STRICT' },
        portLevelMtls: { '8080': { mode: 'DISABLE' } },
      },
    });
    expect(r.ok && r.value.spec.portLevelMtls).toEqual({ '8080': { mode: 'DISABLE' } });
  });

  it('reports bad mode, bad port key and port-level without selector together', () => {
    const r = validatePeerAuthentication({
      metadata: meta,
      spec: { mtls: { mode: 'ON' }, portLevelMtls: { '0': { mode: 'STRICT' }, abc: { mode: 'STRICT' } } },
    });
    expect(r.ok ? [] : r.errors.map(e => e.path)).toEqual(
      expect.arrayContaining([
        'spec.mtls.mode',
        'spec.portLevelMtls["0"]',
        'spec.portLevelMtls.abc',
        'spec.portLevelMtls',
      ]),
    );
  });
});
