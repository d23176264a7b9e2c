import { describe, expect, it } from 'vitest';
import { compileAuthorizationPolicy } from './compile-authorization-policy.ts';
import type { AuthorizationPolicy, AuthorizationPolicySpec } from './policy-types.ts';
import type { security } from './wire.ts';
import { emptyMatch } from './wire.ts';

function ap(
  spec: AuthorizationPolicySpec,
  namespace = 'default',
  annotations?: Record<string, string>,
): AuthorizationPolicy {
  return { metadata: { name: 'p', namespace, ...(annotations ? { annotations } : {}) }, spec };
}
function m(fields: Partial<security.Match>): security.Match {
  return { ...emptyMatch(), ...fields };
}
const exact = (v: string): security.StringMatch => ({ exact: v, matchType: 'exact' });
const prefix = (v: string): security.StringMatch => ({ prefix: v, matchType: 'prefix' });
const suffix = (v: string): security.StringMatch => ({ suffix: v, matchType: 'suffix' });
const presence: security.StringMatch = { presence: {}, matchType: 'presence' };
const v4 = (a: number[], length: number): security.Address => ({ address: new Uint8Array(a), length });

interface Case {
  name: string;
  policy: AuthorizationPolicy;
  expected: security.Authorization | undefined;
  reason: string;
}

const base = { name: 'p', namespace: 'default' };
const cases: Case[] = [
  {
    name: 'targetRefs: not sent (waypoint policy)',
    policy: ap({ targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'waypoint' }] }),
    expected: undefined,
    reason: 'TargetRefs',
  },
  {
    name: 'targetRef (singular): not sent',
    policy: ap({ targetRef: { kind: 'Service', name: 'reviews' } }),
    expected: undefined,
    reason: 'TargetRefs',
  },
  {
    name: 'dry-run annotation: not sent',
    policy: ap({ action: 'DENY', rules: [{}] }, 'default', { 'istio.io/dry-run': 'true' }),
    expected: undefined,
    reason: 'DryRun',
  },
  {
    name: 'CUSTOM: not sent, UnsupportedValue',
    policy: ap({ action: 'CUSTOM', provider: { name: 'ext' }, rules: [{}] }),
    expected: undefined,
    reason: 'UnsupportedValue',
  },
  {
    name: 'AUDIT: not sent, UnsupportedValue',
    policy: ap({ action: 'AUDIT', rules: [{}] }),
    expected: undefined,
    reason: 'UnsupportedValue',
  },
  {
    name: 'no selector outside the root namespace: NAMESPACE scope, default action ALLOW, no rules',
    policy: ap({}),
    expected: { ...base, scope: 1, action: 0, rules: [] },
    reason: 'Accepted',
  },
  {
    name: 'no selector in the root namespace: GLOBAL scope',
    policy: ap({ action: 'DENY' }, 'istio-system'),
    expected: { name: 'p', namespace: 'istio-system', scope: 0, action: 1, rules: [] },
    reason: 'Accepted',
  },
  {
    name: 'selector: WORKLOAD_SELECTOR scope (also in the root namespace)',
    policy: ap({ selector: { matchLabels: { app: 'x' } } }, 'istio-system'),
    expected: { name: 'p', namespace: 'istio-system', scope: 2, action: 0, rules: [] },
    reason: 'Accepted',
  },
  {
    name: 'empty rule: one rule with no clauses (matches everything)',
    policy: ap({ rules: [{}] }),
    expected: { ...base, scope: 1, action: 0, rules: [{ clauses: [] }] },
    reason: 'Accepted',
  },
  {
    name: 'string conversion: * presence, *x suffix, x* prefix, else exact',
    policy: ap({
      rules: [{ from: [{ source: { principals: ['*', '*/sa/a', 'td/ns/b/*', 'td/ns/c/sa/d'] } }] }],
    }),
    expected: {
      ...base,
      scope: 1,
      action: 0,
      rules: [
        {
          clauses: [
            {
              matches: [
                m({ principals: [presence, suffix('/sa/a'), prefix('td/ns/b/'), exact('td/ns/c/sa/d')] }),
              ],
            },
          ],
        },
      ],
    },
    reason: 'Accepted',
  },
  {
    name: 'from fields: principals/notPrincipals, namespaces/notNamespaces, ipBlocks/notIpBlocks',
    policy: ap({
      rules: [
        {
          from: [
            {
              source: {
                principals: ['a'],
                notPrincipals: ['b'],
                namespaces: ['ns1'],
                notNamespaces: ['ns2*'],
                ipBlocks: ['10.0.0.0/8'],
                notIpBlocks: ['10.1.2.3'],
              },
            },
          ],
        },
      ],
    }),
    expected: {
      ...base,
      scope: 1,
      action: 0,
      rules: [
        {
          clauses: [
            {
              matches: [
                m({
                  principals: [exact('a')],
                  notPrincipals: [exact('b')],
                  namespaces: [exact('ns1')],
                  notNamespaces: [prefix('ns2')],
                  sourceIps: [v4([10, 0, 0, 0], 8)],
                  notSourceIps: [v4([10, 1, 2, 3], 32)],
                }),
              ],
            },
          ],
        },
      ],
    },
    reason: 'Accepted',
  },
  {
    name: 'serviceAccounts: ns/sa and bare sa (policy namespace); dots stay literal',
    policy: ap({
      rules: [{ from: [{ source: { serviceAccounts: ['other/a.b', 'c.d'], notServiceAccounts: ['x'] } }] }],
    }),
    expected: {
      ...base,
      scope: 1,
      action: 0,
      rules: [
        {
          clauses: [
            {
              matches: [
                m({
                  serviceAccounts: [
                    { namespace: 'other', serviceAccount: 'a.b' },
                    { namespace: 'default', serviceAccount: 'c.d' },
                  ],
                  notServiceAccounts: [{ namespace: 'default', serviceAccount: 'x' }],
                }),
              ],
            },
          ],
        },
      ],
    },
    reason: 'Accepted',
  },
  {
    name: 'IPv6 block: 16 address bytes and the prefix length',
    policy: ap({ rules: [{ from: [{ source: { ipBlocks: ['2001:db8::/32'] } }] }] }),
    expected: {
      ...base,
      scope: 1,
      action: 0,
      rules: [
        {
          clauses: [
            {
              matches: [
                m({
                  sourceIps: [
                    {
                      address: new Uint8Array([0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
                      length: 32,
                    },
                  ],
                }),
              ],
            },
          ],
        },
      ],
    },
    reason: 'Accepted',
  },
  {
    name: 'from list: one clause whose Matches are OR-ed; to list: one clause; to first',
    policy: ap({
      rules: [
        {
          from: [{ source: { namespaces: ['a'] } }, { source: { namespaces: ['b'] } }],
          to: [{ operation: { ports: ['80'] } }, { operation: { notPorts: ['81', '82'] } }],
        },
      ],
    }),
    expected: {
      ...base,
      scope: 1,
      action: 0,
      rules: [
        {
          clauses: [
            { matches: [m({ destinationPorts: [80] }), m({ notDestinationPorts: [81, 82] })] },
            { matches: [m({ namespaces: [exact('a')] }), m({ namespaces: [exact('b')] })] },
          ],
        },
      ],
    },
    reason: 'Accepted',
  },
  {
    name: 'each when is its own clause; L4 keys map to positive and negative fields',
    policy: ap({
      rules: [
        {
          when: [
            { key: 'source.ip', values: ['1.2.3.4'], notValues: ['5.6.7.8'] },
            { key: 'source.namespace', values: ['ns'], notValues: ['bad'] },
            { key: 'source.principal', values: ['td/ns/a/sa/b'] },
            { key: 'destination.ip', notValues: ['9.9.9.9/32'] },
            { key: 'destination.port', values: ['8080'], notValues: ['9090'] },
          ],
        },
      ],
    }),
    expected: {
      ...base,
      scope: 1,
      action: 0,
      rules: [
        {
          clauses: [
            { matches: [m({ sourceIps: [v4([1, 2, 3, 4], 32)], notSourceIps: [v4([5, 6, 7, 8], 32)] })] },
            { matches: [m({ namespaces: [exact('ns')], notNamespaces: [exact('bad')] })] },
            { matches: [m({ principals: [exact('td/ns/a/sa/b')] })] },
            { matches: [m({ notDestinationIps: [v4([9, 9, 9, 9], 32)] })] },
            { matches: [m({ destinationPorts: [8080], notDestinationPorts: [9090] })] },
          ],
        },
      ],
    },
    reason: 'Accepted',
  },
  {
    name: 'ALLOW rule with an HTTP operation is dropped; other rules stay',
    policy: ap({
      rules: [{ to: [{ operation: { methods: ['GET'] } }] }, { from: [{ source: { namespaces: ['ok'] } }] }],
    }),
    expected: {
      ...base,
      scope: 1,
      action: 0,
      rules: [{ clauses: [{ matches: [m({ namespaces: [exact('ok')] })] }] }],
    },
    reason: 'UnsupportedValue',
  },
  {
    name: 'ALLOW with only HTTP rules: no rules left (deny-all at ztunnel)',
    policy: ap({ selector: {}, rules: [{ from: [{ source: { requestPrincipals: ['*'] } }] }] }),
    expected: { ...base, scope: 2, action: 0, rules: [] },
    reason: 'UnsupportedValue',
  },
  {
    name: 'ALLOW rule with an HTTP when key is dropped',
    policy: ap({ rules: [{ when: [{ key: 'request.headers[x-user]', values: ['a'] }] }] }),
    expected: { ...base, scope: 1, action: 0, rules: [] },
    reason: 'UnsupportedValue',
  },
  {
    name: 'DENY rule keeps its L4 fields and omits the HTTP ones',
    policy: ap({
      action: 'DENY',
      rules: [
        {
          from: [{ source: { namespaces: ['evil'], remoteIpBlocks: ['1.1.1.1'] } }],
          to: [{ operation: { ports: ['80'], paths: ['/admin'] } }],
        },
      ],
    }),
    expected: {
      ...base,
      scope: 1,
      action: 1,
      rules: [
        {
          clauses: [
            { matches: [m({ destinationPorts: [80] })] },
            { matches: [m({ namespaces: [exact('evil')] })] },
          ],
        },
      ],
    },
    reason: 'UnsupportedValue',
  },
  {
    name: 'DENY rule with only HTTP operation keeps an empty Match (a clause that never matches)',
    policy: ap({ action: 'DENY', rules: [{ to: [{ operation: { methods: ['DELETE'] } }] }] }),
    expected: { ...base, scope: 1, action: 1, rules: [{ clauses: [{ matches: [emptyMatch()] }] }] },
    reason: 'UnsupportedValue',
  },
  {
    name: 'DENY with an HTTP when key keeps an empty Match for it',
    policy: ap({ action: 'DENY', rules: [{ when: [{ key: 'request.auth.claims[group]', values: ['x'] }] }] }),
    expected: { ...base, scope: 1, action: 1, rules: [{ clauses: [{ matches: [emptyMatch()] }] }] },
    reason: 'UnsupportedValue',
  },
];

describe('compileAuthorizationPolicy (docs/protocols.md#authorization-conversion)', () => {
  it.each(cases)('$name', ({ policy, expected, reason }) => {
    const out = compileAuthorizationPolicy(policy);
    expect(out.authorization).toEqual(expected);
    expect(out.conditions).toHaveLength(1);
    expect(out.conditions[0]?.type).toBe('ZtunnelAccepted');
    expect(out.conditions[0]?.reason).toBe(reason);
    expect(out.conditions[0]?.status).toBe(expected === undefined ? 'False' : 'True');
  });

  it('explains HTTP attributes found, sorted, with the action-specific consequence', () => {
    const allow = compileAuthorizationPolicy(
      ap({
        rules: [
          {
            to: [{ operation: { paths: ['/a'], methods: ['GET'] } }],
            when: [{ key: 'request.headers[x]', values: ['y'] }],
          },
        ],
      }),
    );
    expect(allow.httpAttributes).toEqual(['methods', 'paths', 'request.headers[x]']);
    expect(allow.conditions[0]?.message).toBe(
      'ztunnel does not support HTTP attributes (found: methods, paths, request.headers[x]). In ambient mode you must use a waypoint proxy to enforce HTTP rules. Within an ALLOW policy, rules matching HTTP attributes are omitted. This will be more restrictive than requested.',
    );
    const deny = compileAuthorizationPolicy(
      ap({ action: 'DENY', rules: [{ to: [{ operation: { hosts: ['a'] } }] }] }),
    );
    expect(deny.conditions[0]?.message).toContain(
      'DENY policy with HTTP attributes is enforced without the HTTP rules.',
    );
  });

  it('says why CUSTOM is not sent, in istiod words', () => {
    const out = compileAuthorizationPolicy(ap({ action: 'CUSTOM', provider: { name: 'x' } }));
    expect(out.conditions[0]?.message).toBe('ztunnel does not support the CUSTOM action');
  });

  it('honours a custom root namespace', () => {
    const out = compileAuthorizationPolicy(ap({}, 'mesh-root'), { rootNamespace: 'mesh-root' });
    expect(out.authorization?.scope).toBe(0);
  });
});
