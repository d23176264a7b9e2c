import { describe, expect, it } from 'vitest';
import { convertCluster } from '../config/convert-cluster.ts';
import { convertListener } from '../config/convert-listener.ts';
import { convertRouteConfiguration } from '../config/convert-route.ts';
import type { Converted, HttpChain, ListenerConfig, RouteTable, WaypointConfig } from '../config/types.ts';
import { edsCluster, httpListener } from '../testing/fixtures.ts';
import type { ProtoObject } from '../xds/envoy-protos.ts';
import {
  decideRequest,
  selectChain,
  selectGatewayChain,
  selectRoute,
  selectVirtualHost,
  serverNameScore,
} from './route.ts';
import type { RequestInfo } from './route.ts';

function ok<T>(c: Converted<T>): T {
  if (!c.ok) throw new Error(c.problems.join('; '));
  return c.value;
}

function table(virtualHosts: ProtoObject[]): RouteTable {
  return ok(convertRouteConfiguration('r', '1', { name: 'r', virtual_hosts: virtualHosts }));
}

function request(
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
  host = 'reviews',
): RequestInfo & { scheme: string; pathAndQuery: string } {
  const q = path.indexOf('?');
  const map = new Map(Object.entries(headers));
  map.set(':method', method);
  return {
    method,
    host,
    path: q < 0 ? path : path.slice(0, q),
    query: new URLSearchParams(q < 0 ? '' : path.slice(q + 1)),
    headers: map,
    scheme: 'http',
    pathAndQuery: path,
  };
}

const c = (cluster: string, extra: ProtoObject = {}): ProtoObject => ({ cluster, ...extra });

describe('selectVirtualHost', () => {
  const t = table([
    { name: 'exact', domains: ['reviews.default.svc.cluster.local', 'reviews'], routes: [] },
    { name: 'suffix', domains: ['*.default.svc.cluster.local'], routes: [] },
    { name: 'long-suffix', domains: ['*.svc.cluster.local'], routes: [] },
    { name: 'prefix', domains: ['api.*'], routes: [] },
    { name: 'any', domains: ['*'], routes: [] },
  ]);
  it.each([
    ['reviews', 'exact'],
    // As Envoy: a port in the Host is part of the name (Istio lists `host:port` domains).
    ['reviews:80', 'any'],
    ['ratings.default.svc.cluster.local', 'suffix'],
    ['ratings.other.svc.cluster.local', 'long-suffix'],
    ['api.example.com', 'prefix'],
    ['elsewhere', 'any'],
  ])('%s → %s', (host, name) => {
    expect(selectVirtualHost(t, host)?.name).toBe(name);
  });
});

it('falls back to the Host without its port when no domain matches it', () => {
  const t = table([{ name: 'exact', domains: ['reviews'], routes: [] }]);
  expect(selectVirtualHost(t, 'reviews:80')?.name).toBe('exact');
  expect(selectVirtualHost(t, 'ratings:80')).toBeUndefined();
});

describe('selectRoute', () => {
  const t = table([
    {
      name: 'v',
      domains: ['*'],
      routes: [
        {
          name: 'post-only',
          match: { prefix: '/', headers: [{ name: ':method', string_match: { exact: 'POST' } }] },
          route: c('p'),
        },
        { name: 'exact', match: { path: '/login' }, route: c('l') },
        { name: 'regex', match: { safe_regex: { regex: '/users/[0-9]+' } }, route: c('u') },
        {
          name: 'query',
          match: { prefix: '/', query_parameters: [{ name: 'debug', string_match: { exact: '1' } }] },
          route: c('d'),
        },
        { name: 'separated', match: { path_separated_prefix: '/api' }, route: c('a') },
        {
          name: 'not-header',
          match: { prefix: '/', headers: [{ name: 'x-beta', present_match: true, invert_match: true }] },
          route: c('n'),
        },
      ],
    },
  ]);
  it.each([
    ['/anything', {}, 'POST', 'post-only'],
    ['/login', {}, 'GET', 'exact'],
    ['/users/42', {}, 'GET', 'regex'],
    ['/x?debug=1', { 'x-beta': '1' }, 'GET', 'query'],
    ['/api', { 'x-beta': '1' }, 'GET', 'separated'],
    ['/api/v1', { 'x-beta': '1' }, 'GET', 'separated'],
    ['/other', {}, 'GET', 'not-header'],
  ] as const)('%s %j %s → %s', (path, headers, method, name) => {
    const r = selectRoute(t, request(path, headers, method));
    expect(r.kind === 'route' ? r.route.name : r.kind).toBe(name);
  });

  it('reports no-route when nothing matches, in order', () => {
    expect(selectRoute(t, request('/apiv2', { 'x-beta': '1' })).kind).toBe('no-route');
    expect(selectRoute(t, request('/users/42/x', { 'x-beta': '1' })).kind).toBe('no-route');
  });
});

describe('decideRequest', () => {
  const listener = ok(convertListener('l', '1', httpListener('l', '10.96.0.10', 80, 'r')));
  const routeTable = table([
    {
      name: 'v',
      domains: ['*'],
      routes: [
        {
          name: 'split',
          match: { prefix: '/split' },
          route: {
            weighted_clusters: {
              clusters: [
                { name: 'a', weight: { value: 3 } },
                { name: 'b', weight: { value: 1 } },
              ],
            },
          },
        },
        {
          name: 'rw',
          match: { prefix: '/v1/' },
          route: c('a', { prefix_rewrite: '/v2/', host_rewrite_literal: 'new-host' }),
        },
        {
          name: 'rx',
          match: { prefix: '/r/' },
          route: c('a', { regex_rewrite: { pattern: { regex: '^/r/([a-z]+)$' }, substitution: '/x/\\1' } }),
        },
        { name: 'missing', match: { prefix: '/missing' }, route: c('nope') },
        {
          name: 'moved',
          match: { prefix: '/moved' },
          redirect: { prefix_rewrite: '/new', port_redirect: 8443, scheme_redirect: 'https' },
        },
        {
          name: 'prefix-redirect',
          match: { path_separated_prefix: '/original-prefix' },
          redirect: { prefix_rewrite: '/replacement-prefix' },
        },
        {
          name: 'strip-redirect',
          match: { path_separated_prefix: '/foo' },
          redirect: {
            regex_rewrite: { pattern: { regex: '^/foo(/?)(.*)' }, substitution: '/\\2' },
            response_code: 'FOUND',
          },
        },
        {
          name: 'strip',
          match: { path_separated_prefix: '/strip-prefix' },
          route: c('a', {
            regex_rewrite: { pattern: { regex: '^/strip-prefix(/?)(.*)' }, substitution: '/\\2' },
          }),
        },
        {
          name: 'teapot',
          match: { prefix: '/tea' },
          direct_response: { status: 418, body: { inline_string: 'short and stout' } },
        },
      ],
    },
  ]);
  const config: WaypointConfig = {
    listeners: new Map([['l', listener]]),
    routes: new Map([['r', routeTable]]),
    clusters: new Map(['a', 'b'].map(n => [n, ok(convertCluster(n, '1', edsCluster(n)))])),
    endpoints: new Map(),
  };
  const chain = listener.chains[0]!.action as HttpChain;

  it('splits by weight over the random draw', () => {
    const pick = (rnd: number): string => {
      const d = decideRequest(config, chain, request('/split'), rnd);
      return d.kind === 'forward' ? d.cluster.name : d.kind;
    };
    expect([0, 0.5, 0.74, 0.75, 0.99].map(pick)).toEqual(['a', 'a', 'a', 'b', 'b']);
  });

  it('rewrites prefix, regex and host', () => {
    const d = decideRequest(config, chain, request('/v1/items?q=1'), 0);
    expect(d).toMatchObject({ kind: 'forward', path: '/v2/items?q=1', host: 'new-host' });
    expect(decideRequest(config, chain, request('/r/abc'), 0)).toMatchObject({ path: '/x/abc' });
  });

  it('strips a path-separated prefix to exactly one slash (istiod\'s ReplacePrefixMatch "/")', () => {
    expect(decideRequest(config, chain, request('/strip-prefix/three?x=1'), 0)).toMatchObject({
      kind: 'forward',
      path: '/three?x=1',
    });
    expect(decideRequest(config, chain, request('/strip-prefix'), 0)).toMatchObject({ path: '/' });
    expect(decideRequest(config, chain, request('/strip-prefix/'), 0)).toMatchObject({ path: '/' });
  });

  it('replaces a path-separated prefix in a redirect (ReplacePrefixMatch on the ingress)', () => {
    expect(decideRequest(config, chain, request('/original-prefix/lemon'), 0)).toMatchObject({
      kind: 'redirect',
      status: 301,
      location: 'http://reviews/replacement-prefix/lemon',
    });
    expect(decideRequest(config, chain, request('/original-prefix'), 0)).toMatchObject({
      location: 'http://reviews/replacement-prefix',
    });
  });

  it('strips a prefix replaced by "/" in a redirect to exactly one slash (regex_rewrite)', () => {
    expect(decideRequest(config, chain, request('/foo/x?y=1'), 0)).toMatchObject({
      kind: 'redirect',
      status: 302,
      location: 'http://reviews/x?y=1',
    });
    expect(decideRequest(config, chain, request('/foo'), 0)).toMatchObject({ location: 'http://reviews/' });
    expect(decideRequest(config, chain, request('/foo/'), 0)).toMatchObject({ location: 'http://reviews/' });
  });

  it('redirects, answers directly, and reports a missing cluster or route table', () => {
    expect(decideRequest(config, chain, request('/moved/a?b=1', {}, 'GET', 'reviews:80'), 0)).toMatchObject({
      kind: 'redirect',
      status: 301,
      location: 'https://reviews:8443/new/a?b=1',
    });
    expect(decideRequest(config, chain, request('/tea'), 0)).toMatchObject({
      kind: 'direct-response',
      status: 418,
      body: 'short and stout',
    });
    expect(decideRequest(config, chain, request('/missing'), 0)).toMatchObject({
      kind: 'no-cluster',
      cluster: 'nope',
    });
    expect(decideRequest({ ...config, routes: new Map() }, chain, request('/'), 0)).toEqual({
      kind: 'no-route-config',
      name: 'r',
    });
  });
});

describe('selectChain', () => {
  const listener = (name: string, vip: string, port: number): [string, ListenerConfig] => [
    name,
    ok(convertListener(name, '1', httpListener(name, vip, port, `${name}-routes`))),
  ];
  const config: WaypointConfig = {
    listeners: new Map([listener('a', '10.96.0.10', 80), listener('b', '10.96.0.11', 80)]),
    routes: new Map(),
    clusters: new Map(),
    endpoints: new Map(),
  };
  it('matches the destination port and address', () => {
    const r = selectChain(config, '10.96.0.11', 80);
    expect(
      r.kind === 'chain' && r.chain.action.kind === 'http' && 'rds' in r.chain.action.routes
        ? r.chain.action.routes.rds
        : r.kind,
    ).toBe('b-routes');
  });
  it('says why nothing matched', () => {
    expect(selectChain(config, '10.96.0.10', 81)).toEqual({
      kind: 'no-chain',
      reason: 'no filter chain matches 10.96.0.10:81',
    });
    expect(selectChain({ ...config, listeners: new Map() }, '10.96.0.10', 80)).toEqual({
      kind: 'no-chain',
      reason: 'no listener configured yet',
    });
  });
});

describe('selectGatewayChain', () => {
  const hcm = {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: {
      '@type':
        'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
      rds: { route_config_name: 'r' },
      http_filters: [
        {
          name: 'envoy.filters.http.router',
          typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' },
        },
      ],
    },
  };
  const tls = {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
      common_tls_context: {
        tls_certificates: [
          { certificate_chain: { inline_string: 'C' }, private_key: { inline_string: 'K' } },
        ],
      },
    },
  };
  const chain = (name: string, serverNames: string[] | undefined, withTls = true): ProtoObject => ({
    name,
    filter_chain_match: serverNames === undefined ? {} : { server_names: serverNames },
    ...(withTls ? { transport_socket: tls } : {}),
    filters: [hcm],
  });
  const listener = (chains: ProtoObject[]): ListenerConfig =>
    ok(
      convertListener('l', '1', {
        name: 'l',
        address: { socket_address: { address: '0.0.0.0', port_value: 443 } },
        filter_chains: chains,
      }),
    );
  const pick = (l: ListenerConfig, sni: string | undefined, tlsConn = true): string => {
    const r = selectGatewayChain(l, { tls: tlsConn, sni, port: 443 });
    return r.kind === 'chain' ? r.chain.name : `none: ${r.reason}`;
  };

  it('prefers an exact name, then the longest wildcard, then the chain without names', () => {
    const l = listener([
      chain('wild', ['*.example.com']),
      chain('deeper', ['*.a.example.com']),
      chain('exact', ['x.a.example.com']),
      chain('default', undefined),
      chain('plain', undefined, false),
    ]);
    expect(pick(l, 'x.a.example.com')).toBe('exact');
    expect(pick(l, 'y.a.example.com')).toBe('deeper');
    expect(pick(l, 'b.example.com')).toBe('wild');
    expect(pick(l, 'example.com')).toBe('default');
    expect(pick(l, undefined)).toBe('default');
    expect(pick(l, undefined, false)).toBe('plain');
    expect(serverNameScore(['*.example.com'], 'example.com')).toBe(-1);
  });

  it('finds nothing for an unknown SNI without a default chain', () => {
    const l = listener([chain('exact', ['a.example.com'])]);
    expect(pick(l, 'b.example.com')).toMatch(
      /^none: no filter chain of listener l matches TLS with SNI "b\.example\.com" on port 443/,
    );
    expect(pick(l, undefined)).toMatch(/^none: /);
    expect(pick(l, undefined, false)).toMatch(/^none: .*plaintext/);
  });
});
