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

  it('judges traffic from a waypoint by the waypoint identity, with no exemption (bypass denied by an ALLOW of the waypoint only)', () => {
    const { state, mutator } = createProxyState();
    const withWaypoint = workloadAddress({
      uid: 'c',
      name: 'pod-c',
      addresses: [ip4('10.0.0.3')],
      authorizationPolicies: ['default/only-waypoint', 'default/deny-waypoint-9090'],
      waypoint: {
        hostname: { namespace: 'default', hostname: 'waypoint.default.svc.cluster.local' },
        hboneMtlsPort: 15008,
      },
    }).workload;
    mutator.applyAddresses([{ kind: 'workload', workload: withWaypoint }], []);
    mutator.applyAuthorizations(
      [
        policy({
          name: 'only-waypoint',
          scope: 0,
          action: 0,
          rules: [
            {
              clauses: [
                { matches: [wireMatch({ principals: [{ exact: 'cluster.local/ns/default/sa/waypoint' }] })] },
              ],
            },
          ],
        }),
        policy({
          name: 'deny-waypoint-9090',
          scope: 0,
          action: 1,
          rules: [{ clauses: [{ matches: [wireMatch({ destinationPorts: [9090] })] }] }],
        }),
      ],
      [],
    );
    const ctx = { ...CTX, dstIp: '10.0.0.3' };
    const fromWaypoint = { ...ctx, srcIdentity: 'spiffe://cluster.local/ns/default/sa/waypoint' };
    expect(authorizeConnection(state, withWaypoint, fromWaypoint).allowed).toBe(true);
    // The client that dials the pod IP directly, past the waypoint.
    expect(
      authorizeConnection(state, withWaypoint, {
        ...ctx,
        srcIdentity: 'spiffe://cluster.local/ns/default/sa/client',
      }),
    ).toMatchObject({ allowed: false });
    // The waypoint's own connections are held to the DENY like any peer's.
    expect(authorizeConnection(state, withWaypoint, { ...fromWaypoint, dstPort: 9090 })).toMatchObject({
      allowed: false,
      policy: 'default/deny-waypoint-9090',
    });
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
