import { describe, expect, it } from 'vitest';
import { AddressCodec, AuthorizationCodec, security, workload } from '@ambient-mesh/xds-types';
import { diffNormalized, ipToString, normalizeSnapshot, snapshotToJson } from './normalize.ts';

// Decode through the codec so the input has exactly the decoded shape (defaults present).
const w = AddressCodec.decode(
  AddressCodec.encode({
    workload: {
      uid: 'Kubernetes//Pod/demo/a',
      name: 'a',
      namespace: 'demo',
      addresses: [Uint8Array.from([10, 244, 0, 5])],
      tunnelProtocol: workload.TunnelProtocol.HBONE,
      serviceAccount: 'web',
      node: 'node-0',
      workloadType: workload.WorkloadType.POD,
      authorizationPolicies: ['demo/z', 'demo/a'],
      services: { 'demo/web.demo.svc.cluster.local': { ports: [{ servicePort: 80, targetPort: 8080 }] } },
    },
  }),
);
const s = AddressCodec.decode(
  AddressCodec.encode({
    service: {
      name: 'web',
      namespace: 'demo',
      hostname: 'web.demo.svc.cluster.local',
      addresses: [{ address: Uint8Array.from([10, 96, 0, 20]) }],
      ports: [{ servicePort: 80 }],
      ipFamilies: workload.IPFamilies.IPV4_ONLY,
    },
  }),
);
const p = AuthorizationCodec.decode(
  AuthorizationCodec.encode({
    name: 'allow',
    namespace: 'demo',
    scope: security.Scope.WORKLOAD_SELECTOR,
    action: security.Action.ALLOW,
    rules: [
      {
        clauses: [
          {
            matches: [
              {
                namespaces: [{ exact: 'demo' }],
                notPrincipals: [{ presence: {} }],
                sourceIps: [{ address: Uint8Array.from([10, 0, 0, 0]), length: 8 }],
              },
            ],
          },
        ],
      },
    ],
  }),
);

describe('normalizeSnapshot', () => {
  it('drops defaults, names enums, prints IPs, sorts set-like lists and keys', () => {
    const n = normalizeSnapshot({
      addresses: new Map([
        ['demo/web.demo.svc.cluster.local', s],
        ['Kubernetes//Pod/demo/a', w],
      ]),
      authorizations: new Map([['demo/allow', p]]),
    });
    expect(Object.keys(n.addresses)).toEqual(['Kubernetes//Pod/demo/a', 'demo/web.demo.svc.cluster.local']);
    expect(n.addresses['Kubernetes//Pod/demo/a']).toEqual({
      workload: {
        addresses: ['10.244.0.5'],
        authorizationPolicies: ['demo/a', 'demo/z'],
        name: 'a',
        namespace: 'demo',
        networkMode: 'STANDARD',
        node: 'node-0',
        serviceAccount: 'web',
        services: { 'demo/web.demo.svc.cluster.local': [{ servicePort: 80, targetPort: 8080 }] },
        status: 'HEALTHY',
        tunnelProtocol: 'HBONE',
        uid: 'Kubernetes//Pod/demo/a',
        workloadType: 'POD',
      },
    });
    expect(n.addresses['demo/web.demo.svc.cluster.local']).toEqual({
      service: {
        addresses: ['10.96.0.20'],
        hostname: 'web.demo.svc.cluster.local',
        ipFamilies: 'IPV4_ONLY',
        name: 'web',
        namespace: 'demo',
        ports: [{ servicePort: 80 }],
      },
    });
    expect(n.authorizations['demo/allow']).toEqual({
      action: 'ALLOW',
      name: 'allow',
      namespace: 'demo',
      scope: 'WORKLOAD_SELECTOR',
      rules: [
        {
          clauses: [
            {
              matches: [
                {
                  namespaces: [{ exact: 'demo' }],
                  notPrincipals: [{ presence: true }],
                  sourceIps: ['10.0.0.0/8'],
                },
              ],
            },
          ],
        },
      ],
    });
    expect(snapshotToJson(n).endsWith('}\n')).toBe(true);
  });

  it('replaces aliased IPs and renamed resources', () => {
    const n = normalizeSnapshot(
      { addresses: new Map([['Kubernetes//Pod/demo/a', w]]), authorizations: new Map() },
      {
        ipAliases: new Map([['10.244.0.5', 'pod:a']]),
        renameResource: name => name.replace(/^Kubernetes\//, 'C/'),
      },
    );
    expect(Object.keys(n.addresses)).toEqual(['C//Pod/demo/a']);
    const wl = n.addresses['C//Pod/demo/a']?.workload as Record<string, unknown>;
    expect(wl.addresses).toEqual(['pod:a']);
    expect(wl.uid).toBe('C//Pod/demo/a');
  });

  it('formats IPv6 with zero compression', () => {
    const v6 = new Uint8Array(16);
    v6[0] = 0xfd;
    v6[15] = 1;
    expect(ipToString(v6)).toBe('fd00::1');
    expect(ipToString(Uint8Array.from([1, 2, 3]))).toBe('bytes:010203');
  });
});

describe('diffNormalized', () => {
  it('lists leaf differences with their paths and is empty for equal snapshots', () => {
    const a = normalizeSnapshot({ addresses: new Map([['x', w]]), authorizations: new Map() });
    const b = normalizeSnapshot({
      addresses: new Map([['x', w]]),
      authorizations: new Map([['demo/allow', p]]),
    });
    expect(diffNormalized(a, a)).toEqual([]);
    const d = diffNormalized(a, b);
    expect(d).toHaveLength(1);
    expect(d[0]?.path).toBe('authorizations/demo/allow');
    expect(d[0]?.left).toBeUndefined();
    expect(diffNormalized({ k: [1, 2] }, { k: [1, 3, 4] })).toEqual([
      { path: 'k[1]', left: 2, right: 3 },
      { path: 'k[2]', left: undefined, right: 4 },
    ]);
  });
});
