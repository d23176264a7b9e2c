import { describe, expect, it } from 'vitest';
import { createProxyState } from '../state/proxy-state.ts';
import { authorization as policy, ip4, wireMatch, workloadAddress } from '../testing/wire-fixtures.ts';
import { authorizeConnection, toWireAuthorization } from './rbac.ts';

const b = workloadAddress({
  uid: 'b',
  name: 'pod-b',
  addresses: [ip4('10.0.0.2')],
  authorizationPolicies: ['default/strict'],
}).workload;

const CTX = { srcIp: '10.0.0.1', srcPort: 40000, dstIp: '10.0.0.2', dstPort: 8080 };

describe('authorizeConnection', () => {
  it('allows with no policies and denies on a matching namespace DENY', () => {
    const { state, mutator } = createProxyState();
    mutator.applyAddresses([{ kind: 'workload', workload: b }], []);
    expect(authorizeConnection(state, b, CTX).allowed).toBe(true);
    mutator.applyAuthorizations([policy({ name: 'deny-8080', scope: 1, action: 1 })], []);
    expect(authorizeConnection(state, b, CTX)).toMatchObject({
      allowed: false,
      reason: 'explicitly-denied',
      policy: 'default/deny-8080',
    });
    expect(authorizeConnection(state, b, { ...CTX, dstPort: 9090 }).allowed).toBe(true);
  });

  it('denies plaintext under the static STRICT policy but allows mTLS peers', () => {
    const { state, mutator } = createProxyState();
    mutator.applyAuthorizations(
      [
        policy({
          name: 'strict',
          scope: 2,
          action: 1,
          rules: [{ clauses: [{ matches: [wireMatch({ notPrincipals: [{ presence: {} }] })] }] }],
        }),
      ],
      [],
    );
    expect(authorizeConnection(state, b, CTX).allowed).toBe(false);
    expect(
      authorizeConnection(state, b, { ...CTX, srcIdentity: 'spiffe://cluster.local/ns/default/sa/sa-a' })
        .allowed,
    ).toBe(true);
  });

  it('keeps CIDRs byte-exact when converting back to the wire shape', () => {
    const p = policy({
      rules: [
        {
          clauses: [
            {
              matches: [
                wireMatch({
                  sourceIps: [
                    { address: Uint8Array.of(0xfd, 0, ...new Array<number>(13).fill(0), 1), length: 64 },
                  ],
                }),
              ],
            },
          ],
        },
      ],
    });
    const wire = toWireAuthorization(p);
    expect(Array.from(wire.rules[0]?.clauses[0]?.matches[0]?.sourceIps[0]?.address ?? [])).toEqual([
      0xfd,
      0,
      ...new Array<number>(13).fill(0),
      1,
    ]);
    expect(toWireAuthorization(p)).toBe(wire);
  });
});
