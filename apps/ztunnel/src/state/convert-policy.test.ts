import { describe, expect, it } from 'vitest';
import { security } from '@ambient-mesh/xds-types';
import { ip4, unknownEnum, wireAuthorization, wireMatch } from '../testing/wire-fixtures.ts';
import { convertAuthorization } from './convert-policy.ts';

describe('convertAuthorization', () => {
  it('converts scope, action and string matches', () => {
    const result = convertAuthorization(
      'default/deny-b',
      wireAuthorization({
        rules: [
          {
            clauses: [
              {
                matches: [
                  wireMatch({
                    principals: [{ prefix: 'cluster.local/ns/' }, { presence: {} }],
                    sourceIps: [{ address: ip4('10.0.0.0'), length: 8 }],
                  }),
                ],
              },
            ],
          },
        ],
      }),
    );
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.value.scope).toBe('NAMESPACE');
    expect(result.value.action).toBe('DENY');
    const match = result.value.rules[0]?.clauses[0]?.matches[0];
    expect(match?.principals).toEqual([{ kind: 'prefix', value: 'cluster.local/ns/' }, { kind: 'presence' }]);
    expect(match?.sourceIps).toEqual([{ address: '10.0.0.0', prefixLength: 8 }]);
  });

  it('reports bad CIDRs, empty string matches and unknown enums with paths', () => {
    const result = convertAuthorization(
      'default/deny-b',
      wireAuthorization({
        action: unknownEnum(security.Action, 9),
        rules: [
          {
            clauses: [
              {
                matches: [
                  wireMatch({ namespaces: [{}], notSourceIps: [{ address: ip4('10.0.0.0'), length: 40 }] }),
                ],
              },
            ],
          },
        ],
      }),
    );
    expect(!result.ok && result.problems).toEqual([
      'action: unknown enum value 9',
      'rules[0].clauses[0].matches[0].namespaces[0]: a string match needs exact, prefix, suffix or presence',
      'rules[0].clauses[0].matches[0].notSourceIps[0].length: prefix length 40 out of range 0..32',
    ]);
  });

  it('requires the resource name to be <namespace>/<name>', () => {
    const result = convertAuthorization('default/other', wireAuthorization());
    expect(result.ok).toBe(false);
  });
});
