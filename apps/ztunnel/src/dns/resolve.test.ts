import { describe, expect, it } from 'vitest';
import { createProxyState } from '../state/proxy-state.ts';
import { ip4, serviceAddress, workloadAddress } from '../testing/wire-fixtures.ts';
import type { DnsDecision, ResolveContext } from './resolve.ts';
import { kubeFqdns, podSearchDomains, resolveQuestion, resolverQueries, wildcardsOf } from './resolve.ts';

const DOMAIN = 'cluster.local';

/** WDS state: a Service, a ServiceEntry host and a wildcard one with istiod's VIPs, a headless Service. */
function meshState() {
  const { state, mutator } = createProxyState();
  mutator.applyAddresses(
    [
      serviceAddress({
        name: 'reviews',
        namespace: 'bookinfo',
        hostname: 'reviews.bookinfo.svc.cluster.local',
        addresses: [{ network: '', address: ip4('10.96.0.20') }],
      }),
      serviceAddress({
        name: 'reviews',
        namespace: 'other',
        hostname: 'reviews.other.svc.cluster.local',
        addresses: [{ network: '', address: ip4('10.96.0.21') }],
      }),
      serviceAddress({
        name: 'api-example',
        namespace: 'egress',
        hostname: 'api.example.com',
        addresses: [{ network: '', address: ip4('240.240.0.1') }],
      }),
      serviceAddress({
        name: 'wild',
        namespace: 'egress',
        hostname: '*.wild.example',
        addresses: [{ network: '', address: ip4('240.240.0.2') }],
      }),
      serviceAddress({
        name: 'db',
        namespace: 'bookinfo',
        hostname: 'db.bookinfo.svc.cluster.local',
        addresses: [],
      }),
      serviceAddress({
        name: 'remote',
        namespace: 'bookinfo',
        hostname: 'remote.bookinfo.svc.cluster.local',
        addresses: [{ network: 'other-net', address: ip4('10.96.9.9') }],
      }),
      workloadAddress({
        uid: 'Kubernetes//Pod/bookinfo/db-0',
        name: 'db-0',
        namespace: 'bookinfo',
        hostname: 'db-0',
        addresses: [ip4('10.244.1.7')],
        services: { 'bookinfo/db.bookinfo.svc.cluster.local': { ports: [] } },
      }),
    ],
    [],
  );
  return state;
}

const ctx: ResolveContext = {
  client: { namespace: 'bookinfo', network: '' },
  clusterDomain: DOMAIN,
  searchDomains: podSearchDomains('bookinfo', DOMAIN),
};

function ask(name: string, type = 'A', context: ResolveContext = ctx): DnsDecision {
  return resolveQuestion({ name, type }, context, meshState());
}

describe('resolveQuestion', () => {
  it('answers a Service FQDN and its short forms with the VIP', () => {
    for (const name of [
      'reviews.bookinfo.svc.cluster.local',
      'reviews.bookinfo.svc.cluster.local.',
      'REVIEWS.Bookinfo.svc.cluster.local',
      'reviews',
      'reviews.bookinfo',
      'reviews.bookinfo.svc',
    ]) {
      const decision = ask(name);
      expect(decision.kind, name).toBe('answer');
      if (decision.kind !== 'answer') continue;
      expect(decision.answers.filter(a => a.type === 'A').map(a => a.data)).toEqual(['10.96.0.20']);
      expect(decision.matched).toEqual({ kind: 'service', host: 'reviews.bookinfo.svc.cluster.local' });
    }
  });

  it("prefers the client's namespace for a short name and reaches another namespace by name.namespace", () => {
    const other = ask('reviews.other');
    expect(other.kind === 'answer' && other.answers.map(a => a.data)).toEqual(['10.96.0.21']);
    const fromOther = ask('reviews', 'A', { ...ctx, client: { namespace: 'other', network: '' } });
    expect(fromOther.kind === 'answer' && fromOther.answers.map(a => a.data)).toEqual(['10.96.0.21']);
  });

  it("answers a ServiceEntry host with istiod's allocated VIP", () => {
    expect(ask('api.example.com')).toEqual({
      kind: 'answer',
      answers: [{ type: 'A', name: 'api.example.com', data: '240.240.0.1' }],
      matched: { kind: 'service', host: 'api.example.com' },
    });
  });

  it('answers a search-expanded ServiceEntry host with a CNAME to the host and its address', () => {
    const decision = ask('api.example.com.bookinfo.svc.cluster.local');
    expect(decision).toEqual({
      kind: 'answer',
      answers: [
        { type: 'CNAME', name: 'api.example.com.bookinfo.svc.cluster.local', data: 'api.example.com' },
        { type: 'A', name: 'api.example.com', data: '240.240.0.1' },
      ],
      matched: { kind: 'service', host: 'api.example.com' },
    });
  });

  it('answers names under a wildcard ServiceEntry host, without a CNAME', () => {
    const decision = ask('a.b.wild.example');
    expect(decision.kind === 'answer' && decision.answers).toEqual([
      { type: 'A', name: 'a.b.wild.example', data: '240.240.0.2' },
    ]);
    expect(decision.kind === 'answer' && decision.matched.host).toBe('*.wild.example');
    const expanded = ask('x.wild.example.svc.cluster.local');
    expect(expanded.kind === 'answer' && expanded.answers.map(a => a.type)).toEqual(['A']);
  });

  it('answers a pod hostname of a headless Service with the pod IP, and the headless Service with its endpoints', () => {
    for (const name of [
      'db-0.db.bookinfo.svc.cluster.local',
      'db-0.db',
      'db-0.db.bookinfo',
      'db-0.db.bookinfo.svc',
    ]) {
      const decision = ask(name);
      expect(decision.kind === 'answer' && decision.matched.kind, name).toBe('pod');
      expect(decision.kind === 'answer' && decision.answers.map(a => a.data), name).toEqual(['10.244.1.7']);
    }
    const service = ask('db.bookinfo.svc.cluster.local');
    expect(service.kind === 'answer' && service.answers.map(a => a.data)).toEqual(['10.244.1.7']);
  });

  it('gives an authoritative empty answer (NODATA) for AAAA of an IPv4 host', () => {
    expect(ask('reviews', 'AAAA')).toMatchObject({ kind: 'answer', answers: [] });
    expect(ask('api.example.com', 'AAAA')).toMatchObject({ kind: 'answer', answers: [] });
  });

  it("answers only the VIPs on the client's network", () => {
    expect(ask('remote.bookinfo')).toMatchObject({ kind: 'answer', answers: [] });
  });

  it('forwards unknown hosts and record types other than A/AAAA', () => {
    expect(ask('www.unknown.test')).toEqual({ kind: 'forward', reason: 'unknown-host' });
    expect(ask('www.unknown.test.bookinfo.svc.cluster.local')).toEqual({
      kind: 'forward',
      reason: 'unknown-host',
    });
    expect(ask('nope')).toEqual({ kind: 'forward', reason: 'unknown-host' });
    expect(ask('reviews.bookinfo.svc.cluster.local', 'SRV')).toEqual({
      kind: 'forward',
      reason: 'unsupported-type',
    });
    expect(ask('reviews', 'MX')).toEqual({ kind: 'forward', reason: 'unsupported-type' });
    expect(ask('.')).toEqual({ kind: 'forward', reason: 'unknown-host' });
  });
});

describe('the pod resolver model (search list and ndots)', () => {
  const search = podSearchDomains('bookinfo', DOMAIN);

  it('expands names with fewer than ndots dots through the search list first, and tries the rest as is first', () => {
    expect(resolverQueries('reviews', search, 5)).toEqual([
      'reviews.bookinfo.svc.cluster.local',
      'reviews.svc.cluster.local',
      'reviews.cluster.local',
      'reviews',
    ]);
    expect(resolverQueries('a.b.c.d.e.f', search, 5)[0]).toBe('a.b.c.d.e.f');
    expect(resolverQueries('api.example.com.', search, 5)).toEqual(['api.example.com']);
    expect(resolverQueries('api.example.com', search, 1)[0]).toBe('api.example.com');
  });

  it("the first query the pod's resolver sends already gets the answer for Services and ServiceEntry hosts", () => {
    for (const [name, vip] of [
      ['reviews', '10.96.0.20'],
      ['reviews.other', '10.96.0.21'],
      ['api.example.com', '240.240.0.1'],
    ] as const) {
      for (const ndots of [1, 5]) {
        const first = resolverQueries(name, search, ndots)[0] ?? '';
        const decision = ask(first);
        expect(decision.kind === 'answer' && decision.answers.at(-1)?.data, `${name} ndots:${ndots}`).toBe(
          vip,
        );
      }
    }
  });

  it('every query for an unknown name is forwarded, so the upstream gives its NXDOMAIN', () => {
    for (const query of resolverQueries('nothing.here', search, 5)) {
      expect(ask(query).kind, query).toBe('forward');
    }
  });
});

describe('name helpers', () => {
  it('lists the Kubernetes expansions of short names', () => {
    expect(kubeFqdns('name', 'ns1', DOMAIN)).toEqual([
      { name: 'name.ns1.svc.cluster.local', podHost: false },
    ]);
    expect(kubeFqdns('name.ns2', 'ns1', DOMAIN)).toEqual([
      { name: 'name.ns2.svc.cluster.local', podHost: false },
      { name: 'name.ns2.ns1.svc.cluster.local', podHost: true },
    ]);
    expect(kubeFqdns('name.ns2.svc', 'ns1', DOMAIN).map(f => f.name)).toEqual([
      'name.ns2.svc.cluster.local',
      'name.ns2.svc.svc.cluster.local',
    ]);
    expect(kubeFqdns('pod.sub.ns.not-svc', 'ns1', DOMAIN)).toEqual([]);
    expect(kubeFqdns('name.ns2.svc.cluster.local', 'ns1', DOMAIN)).toEqual([]);
  });

  it('lists wildcards of decreasing specificity', () => {
    expect(wildcardsOf('svc1')).toEqual(['svc1']);
    expect(wildcardsOf('a.b.c')).toEqual(['a.b.c', '*.b.c', '*.c']);
  });
});
