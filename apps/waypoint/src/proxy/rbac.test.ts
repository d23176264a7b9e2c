import { describe, expect, it } from 'vitest';
import { convertListener } from '../config/convert-listener.ts';
import type { HttpChain, RbacFilter } from '../config/types.ts';
import { httpListener } from '../testing/fixtures.ts';
import type { ProtoObject } from '../xds/envoy-protos.ts';
import { evaluateRbac } from './rbac.ts';
import type { RbacRequest } from './rbac.ts';

function filters(rules: ProtoObject): readonly RbacFilter[] {
  const c = convertListener('l', '1', httpListener('l', '10.0.0.1', 80, 'r', rules));
  if (!c.ok) throw new Error(c.problems.join('; '));
  return (c.value.chains[0]!.action as HttpChain).rbac;
}

const req = (
  path: string,
  method = 'GET',
  peer = 'spiffe://cluster.local/ns/default/sa/client',
): RbacRequest => ({
  headers: new Map([[':method', method]]),
  path,
  destinationPort: 80,
  peerPrincipal: peer,
  destinationIp: '10.96.0.10',
  remoteIp: '::ffff:10.244.1.5',
});

describe('evaluateRbac', () => {
  const allowGetsFromDefault = filters({
    rules: {
      action: 'ALLOW',
      policies: {
        'get-from-default': {
          permissions: [
            {
              and_rules: {
                rules: [
                  { header: { name: ':method', string_match: { exact: 'GET' } } },
                  {
                    or_rules: {
                      rules: [
                        { url_path: { path: { prefix: '/api/' } } },
                        { url_path: { path: { exact: '/' } } },
                      ],
                    },
                  },
                ],
              },
            },
          ],
          principals: [
            { authenticated: { principal_name: { prefix: 'spiffe://cluster.local/ns/default/' } } },
          ],
        },
      },
    },
  });

  it('allows what an ALLOW policy matches and denies the rest', () => {
    expect(evaluateRbac(allowGetsFromDefault, req('/api/x')).kind).toBe('allow');
    expect(evaluateRbac(allowGetsFromDefault, req('/')).kind).toBe('allow');
    expect(evaluateRbac(allowGetsFromDefault, req('/api/x', 'POST'))).toEqual({
      kind: 'deny',
      filter: 'envoy.filters.http.rbac',
      policy: undefined,
      logged: [],
    });
    expect(
      evaluateRbac(allowGetsFromDefault, req('/api/x', 'GET', 'spiffe://cluster.local/ns/other/sa/x')).kind,
    ).toBe('deny');
    expect(evaluateRbac(allowGetsFromDefault, req('/api/x', 'GET', '')).kind).toBe('deny');
  });

  it('denies what a DENY policy matches, naming it', () => {
    const deny = filters({
      rules: {
        action: 'DENY',
        policies: {
          'no-delete': {
            permissions: [{ header: { name: ':method', string_match: { exact: 'DELETE' } } }],
            principals: [
              {
                not_id: {
                  filter_state: {
                    key: 'io.istio.peer_principal',
                    string_match: { exact: 'spiffe://cluster.local/ns/default/sa/admin' },
                  },
                },
              },
            ],
          },
        },
      },
    });
    expect(evaluateRbac(deny, req('/x', 'DELETE'))).toEqual({
      kind: 'deny',
      filter: 'envoy.filters.http.rbac',
      policy: 'no-delete',
      logged: [],
    });
    expect(evaluateRbac(deny, req('/x', 'DELETE', 'spiffe://cluster.local/ns/default/sa/admin')).kind).toBe(
      'allow',
    );
    expect(evaluateRbac(deny, req('/x', 'GET')).kind).toBe('allow');
  });

  it('matches destination and remote IP blocks', () => {
    const ipRules = filters({
      rules: {
        action: 'ALLOW',
        policies: {
          ip: {
            permissions: [{ destination_ip: { address_prefix: '10.96.0.0', prefix_len: { value: 16 } } }],
            principals: [{ remote_ip: { address_prefix: '10.244.1.0', prefix_len: { value: 24 } } }],
          },
        },
      },
    });
    expect(evaluateRbac(ipRules, req('/')).kind).toBe('allow');
    expect(evaluateRbac(ipRules, { ...req('/'), remoteIp: '10.244.2.5' }).kind).toBe('deny');
    expect(evaluateRbac(ipRules, { ...req('/'), destinationIp: '10.97.0.1' }).kind).toBe('deny');
  });

  it('never enforces shadow rules', () => {
    const shadow = filters({
      shadow_rules: {
        action: 'DENY',
        policies: { audit: { permissions: [{ any: true }], principals: [{ any: true }] } },
      },
    });
    expect(evaluateRbac(shadow, req('/'))).toEqual({
      kind: 'allow',
      shadow: ['envoy.filters.http.rbac/audit'],
      logged: [],
    });
  });

  it('reports LOG (AUDIT) matches without ever denying, also ahead of a denial', () => {
    const audited = [
      ...filters({
        rules: {
          action: 'LOG',
          policies: {
            'ns[default]-policy[audit-posts]-rule[0]': {
              permissions: [{ header: { name: ':method', string_match: { exact: 'POST' } } }],
              principals: [{ any: true }],
            },
          },
        },
      }),
      ...filters({
        rules: {
          action: 'DENY',
          policies: {
            'no-admin': {
              permissions: [{ url_path: { path: { exact: '/admin' } } }],
              principals: [{ any: true }],
            },
          },
        },
      }),
    ];
    const name = 'envoy.filters.http.rbac/ns[default]-policy[audit-posts]-rule[0]';
    expect(evaluateRbac(audited, req('/x', 'POST'))).toEqual({ kind: 'allow', shadow: [], logged: [name] });
    expect(evaluateRbac(audited, req('/x', 'GET'))).toEqual({ kind: 'allow', shadow: [], logged: [] });
    expect(evaluateRbac(audited, req('/admin', 'POST'))).toEqual({
      kind: 'deny',
      filter: 'envoy.filters.http.rbac',
      policy: 'no-admin',
      logged: [name],
    });
  });

  it('rejects unsupported RBAC fields at conversion', () => {
    const c = convertListener(
      'l',
      '1',
      httpListener('l', '10.0.0.1', 80, 'r', {
        rules: {
          action: 'ALLOW',
          policies: {
            p: {
              permissions: [{ any: true }],
              principals: [
                { url_path: { path: { exact: '/' } } },
                {
                  metadata: {
                    filter: 'envoy.filters.http.jwt_authn',
                    path: [{ key: 'payload' }],
                    value: { double_match: { exact: 1 } },
                  },
                },
              ],
            },
          },
        },
      }),
    );
    const at = 'filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.rules.policies["p"]';
    expect(c.ok ? [] : c.problems).toEqual([
      `${at}.principals[0].url_path: is not supported by the waypoint`,
      `${at}.principals[1].metadata.value.double_match: is not supported by the waypoint`,
    ]);
  });
});
