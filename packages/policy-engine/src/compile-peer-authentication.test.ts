import { describe, expect, it } from 'vitest';
import {
  compilePeerAuthentications,
  convertPeerAuthentication,
  effectivePeerAuthenticationKeys,
  peerAuthenticationsForWorkload,
  staticStrictAuthorization,
} from './compile-peer-authentication.ts';
import type { MtlsMode, PeerAuthentication } from './policy-types.ts';
import type { security } from './wire.ts';
import { emptyMatch } from './wire.ts';

type Mode = MtlsMode | undefined;
function pa(
  name: string,
  namespace: string,
  mode: Mode,
  opts: { labels?: Record<string, string>; ports?: Record<string, Mode>; created?: string } = {},
): PeerAuthentication {
  const spec: PeerAuthentication['spec'] = {};
  if (opts.labels) spec.selector = { matchLabels: opts.labels };
  if (mode) spec.mtls = { mode };
  if (opts.ports) {
    spec.portLevelMtls = Object.fromEntries(
      Object.entries(opts.ports).map(([p, m]) => [p, m ? { mode: m } : {}]),
    );
  }
  return {
    metadata: { name, namespace, ...(opts.created ? { creationTimestamp: opts.created } : {}) },
    spec,
  };
}
const presence: security.StringMatch = { presence: {}, matchType: 'presence' };
const noId = (ports?: number[]): security.Match => ({
  ...emptyMatch(),
  notPrincipals: [presence],
  ...(ports ? { destinationPorts: ports } : {}),
});
const exempt = (port: number): security.Match => ({ ...emptyMatch(), notDestinationPorts: [port] });
const converted = (name: string, rules: security.Match[][][]): security.Authorization => ({
  name: `converted_peer_authentication_${name}`,
  namespace: 'app',
  scope: 2,
  action: 1,
  rules: rules.map(r => ({ clauses: r.map(matches => ({ matches })) })),
});
const sel = { labels: { app: 'a' } };

interface ConvertCase {
  name: string;
  policy: PeerAuthentication;
  ns?: PeerAuthentication;
  mesh?: PeerAuthentication;
  expected: security.Authorization | undefined;
}

const convertCases: ConvertCase[] = [
  {
    name: 'no port-level settings: nothing converted',
    policy: pa('w', 'app', 'STRICT', sel),
    expected: undefined,
  },
  {
    name: 'root-namespace policy: nothing converted',
    policy: pa('w', 'istio-system', 'STRICT', { ...sel, ports: { '80': 'PERMISSIVE' } }),
    expected: undefined,
  },
  {
    name: 'STRICT with all ports STRICT: covered by the static policy',
    policy: pa('w', 'app', 'STRICT', { ...sel, ports: { '80': 'STRICT' } }),
    expected: undefined,
  },
  {
    name: 'STRICT parent with a PERMISSIVE port: strict clause plus a port exemption',
    policy: pa('w', 'app', 'STRICT', { ...sel, ports: { '8080': 'PERMISSIVE' } }),
    expected: converted('w', [[[noId()], [exempt(8080)]]]),
  },
  {
    name: 'STRICT parent with a DISABLE port: same exemption',
    policy: pa('w', 'app', 'STRICT', { ...sel, ports: { '9000': 'DISABLE' } }),
    expected: converted('w', [[[noId()], [exempt(9000)]]]),
  },
  {
    name: 'PERMISSIVE parent with a STRICT port: one group per strict port, ports ascending',
    policy: pa('w', 'app', 'PERMISSIVE', { ...sel, ports: { '9090': 'STRICT', '80': 'STRICT' } }),
    expected: converted('w', [[[noId([80])]], [[noId([9090])]]]),
  },
  {
    name: 'DISABLE parent with PERMISSIVE port only: nothing converted',
    policy: pa('w', 'app', 'DISABLE', { ...sel, ports: { '80': 'PERMISSIVE' } }),
    expected: undefined,
  },
  {
    name: 'UNSET parent, no namespace or mesh policy, STRICT port: port group',
    policy: pa('w', 'app', undefined, { ...sel, ports: { '80': 'STRICT' } }),
    expected: converted('w', [[[noId([80])]]]),
  },
  {
    name: 'UNSET parent under a STRICT namespace, STRICT port: nothing (namespace enforces it)',
    policy: pa('w', 'app', undefined, { ...sel, ports: { '80': 'STRICT' } }),
    ns: pa('ns', 'app', 'STRICT'),
    expected: undefined,
  },
  {
    name: 'UNSET parent under a STRICT namespace, PERMISSIVE port: exemption merged with STRICT',
    policy: pa('w', 'app', undefined, { ...sel, ports: { '80': 'PERMISSIVE' } }),
    ns: pa('ns', 'app', 'STRICT'),
    expected: converted('w', [[[exempt(80)], [noId()]]]),
  },
  {
    name: 'UNSET parent under a STRICT mesh and no namespace policy, PERMISSIVE port: merged',
    policy: pa('w', 'app', undefined, { ...sel, ports: { '80': 'PERMISSIVE' } }),
    mesh: pa('mesh', 'istio-system', 'STRICT'),
    expected: converted('w', [[[exempt(80)], [noId()]]]),
  },
  {
    name: 'UNSET parent, PERMISSIVE namespace over STRICT mesh, PERMISSIVE port: nothing',
    policy: pa('w', 'app', undefined, { ...sel, ports: { '80': 'PERMISSIVE' } }),
    ns: pa('ns', 'app', 'PERMISSIVE'),
    mesh: pa('mesh', 'istio-system', 'STRICT'),
    expected: undefined,
  },
];

describe('convertPeerAuthentication (docs/protocols.md#peer-authentication port-level)', () => {
  it.each(convertCases)('$name', ({ policy, ns, mesh, expected }) => {
    expect(convertPeerAuthentication(policy, ns, mesh)).toEqual(expected);
  });
});

describe('static STRICT policy', () => {
  it('is a WORKLOAD_SELECTOR DENY of connections without identity, in the root namespace', () => {
    expect(staticStrictAuthorization('istio-system')).toEqual({
      name: 'istio_converted_static_strict',
      namespace: 'istio-system',
      scope: 2,
      action: 1,
      rules: [{ clauses: [{ matches: [noId()] }] }],
    });
  });

  it('is pushed only when at least one PeerAuthentication exists', () => {
    expect(compilePeerAuthentications([])).toEqual([]);
    const out = compilePeerAuthentications([pa('mesh', 'istio-system', 'PERMISSIVE')]);
    expect(out.map(a => a.name)).toEqual(['istio_converted_static_strict']);
  });

  it('is pushed together with converted port-level policies, using the oldest namespace policy', () => {
    const out = compilePeerAuthentications([
      pa('newer', 'app', 'PERMISSIVE', { created: '2024-02-01T00:00:00Z' }),
      pa('older', 'app', 'STRICT', { created: '2024-01-01T00:00:00Z' }),
      pa('w', 'app', undefined, { ...sel, ports: { '80': 'PERMISSIVE' } }),
    ]);
    expect(out).toEqual([converted('w', [[[exempt(80)], [noId()]]]), staticStrictAuthorization()]);
  });
});

interface KeysCase {
  name: string;
  policies: PeerAuthentication[];
  expected: string[];
}
const STRICT_KEY = 'istio-system/istio_converted_static_strict';
const keysCases: KeysCase[] = [
  { name: 'no policies: nothing', policies: [], expected: [] },
  {
    name: 'STRICT mesh: static STRICT',
    policies: [pa('m', 'istio-system', 'STRICT')],
    expected: [STRICT_KEY],
  },
  { name: 'PERMISSIVE mesh: nothing', policies: [pa('m', 'istio-system', 'PERMISSIVE')], expected: [] },
  {
    name: 'DISABLE namespace overrides STRICT mesh',
    policies: [pa('m', 'istio-system', 'STRICT'), pa('n', 'app', 'DISABLE')],
    expected: [],
  },
  {
    name: 'UNSET namespace inherits STRICT mesh',
    policies: [pa('m', 'istio-system', 'STRICT'), pa('n', 'app', 'UNSET')],
    expected: [STRICT_KEY],
  },
  {
    name: 'STRICT workload over PERMISSIVE namespace',
    policies: [pa('n', 'app', 'PERMISSIVE'), pa('w', 'app', 'STRICT', sel)],
    expected: [STRICT_KEY],
  },
  {
    name: 'PERMISSIVE workload over STRICT namespace',
    policies: [pa('n', 'app', 'STRICT'), pa('w', 'app', 'PERMISSIVE', sel)],
    expected: [],
  },
  {
    name: 'STRICT workload with a PERMISSIVE port: converted policy replaces the static one',
    policies: [pa('w', 'app', 'STRICT', { ...sel, ports: { '80': 'PERMISSIVE' } })],
    expected: ['app/converted_peer_authentication_w'],
  },
  {
    name: 'PERMISSIVE workload with a STRICT port: converted policy only',
    policies: [pa('w', 'app', 'PERMISSIVE', { ...sel, ports: { '80': 'STRICT' } })],
    expected: ['app/converted_peer_authentication_w'],
  },
  {
    name: 'UNSET workload under STRICT namespace with PERMISSIVE port: converted policy only',
    policies: [
      pa('n', 'app', 'STRICT'),
      pa('w', 'app', undefined, { ...sel, ports: { '80': 'PERMISSIVE' } }),
    ],
    expected: ['app/converted_peer_authentication_w'],
  },
  {
    name: 'UNSET workload under STRICT namespace with only STRICT ports: static STRICT',
    policies: [pa('n', 'app', 'STRICT'), pa('w', 'app', undefined, { ...sel, ports: { '80': 'STRICT' } })],
    expected: [STRICT_KEY],
  },
  {
    name: 'oldest namespace policy wins',
    policies: [
      pa('a', 'app', 'PERMISSIVE', { created: '2024-03-01T00:00:00Z' }),
      pa('b', 'app', 'STRICT', { created: '2023-03-01T00:00:00Z' }),
    ],
    expected: [STRICT_KEY],
  },
];

describe('effectivePeerAuthenticationKeys (docs/protocols.md#peer-authentication precedence)', () => {
  it.each(keysCases)('$name', ({ policies, expected }) => {
    const applicable = peerAuthenticationsForWorkload(policies, { namespace: 'app', labels: { app: 'a' } });
    expect(effectivePeerAuthenticationKeys(applicable)).toEqual(expected);
  });

  it('applies mesh-level, own-namespace and selected policies only', () => {
    const all = [
      pa('m', 'istio-system', 'STRICT'),
      pa('other-ns', 'other', 'DISABLE'),
      pa('n', 'app', 'STRICT'),
      pa('mine', 'app', 'STRICT', sel),
      pa('not-mine', 'app', 'STRICT', { labels: { app: 'b' } }),
    ];
    const names = peerAuthenticationsForWorkload(all, { namespace: 'app', labels: { app: 'a' } }).map(
      p => p.metadata.name,
    );
    expect(names).toEqual(['m', 'n', 'mine']);
  });
});
