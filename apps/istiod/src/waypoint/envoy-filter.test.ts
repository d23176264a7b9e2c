import { describe, expect, it } from 'vitest';
import { makeBackendPod, makeBoundService, makeWaypointGateway } from '../testing/waypoint-fixtures.ts';
import { waypointIndexes } from '../testing/waypoint-indexes.ts';
import {
  applyHttpFilterPatches,
  applyRoutePatches,
  envoyFilterSelects,
  validateEnvoyFilter,
  type EnvoyFilterPatch,
  type HttpFilterValue,
  type SkippedPatch,
} from './envoy-filter.ts';
import { EnvoyType, EnvoyTypeUrls, decodeEnvoy, unpackTyped } from './envoy-protos.ts';
import { WaypointKinds as K } from './waypoint-index.ts';

const LRL = 'envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit';
const HCM = 'envoy.filters.network.http_connection_manager';
const reviews = 'inbound-vip|80|http|reviews.ns1.svc.cluster.local';

/** The value of Istio's rate-limit task (TypedStruct form, snake_case, "60s"). */
const documented = {
  stat_prefix: 'http_local_rate_limiter',
  token_bucket: { max_tokens: 4, tokens_per_fill: 4, fill_interval: '60s' },
  filter_enabled: {
    runtime_key: 'local_rate_limit_enabled',
    default_value: { numerator: 100, denominator: 'HUNDRED' },
  },
  filter_enforced: {
    runtime_key: 'local_rate_limit_enforced',
    default_value: { numerator: 100, denominator: 'HUNDRED' },
  },
  response_headers_to_add: [
    { append_action: 'OVERWRITE_IF_EXISTS_OR_ADD', header: { key: 'x-local-rate-limit', value: 'true' } },
  ],
};

function envoyFilter(
  name: string,
  namespace: string,
  spec: Record<string, unknown>,
  created = '2026-01-01T00:00:00Z',
): never {
  return {
    apiVersion: 'networking.istio.io/v1alpha3',
    kind: 'EnvoyFilter',
    metadata: { name, namespace, creationTimestamp: created },
    spec,
  } as never;
}

const insertPatch = (typedConfig: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  applyTo: 'HTTP_FILTER',
  match: { context: 'SIDECAR_INBOUND', listener: { filterChain: { filter: { name: HCM } } } },
  patch: {
    operation: 'INSERT_BEFORE',
    value: { name: 'envoy.filters.http.local_ratelimit', typed_config: typedConfig },
  },
  ...extra,
});

const typedStruct = {
  '@type': 'type.googleapis.com/udpa.type.v1.TypedStruct',
  type_url: `type.googleapis.com/${LRL}`,
  value: documented,
};

describe('EnvoyFilter validation', () => {
  it("encodes Istio's documented local rate limit patch (TypedStruct, snake_case, durations) and the direct @type form", () => {
    for (const typed of [typedStruct, { '@type': `type.googleapis.com/${LRL}`, ...documented }]) {
      const { value, issues } = validateEnvoyFilter(
        envoyFilter('rl', 'ns1', {
          targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'wp1' }],
          configPatches: [insertPatch(typed)],
        }),
      );
      expect(issues).toEqual([]);
      const patch = value!.patches[0]!;
      expect(patch).toMatchObject({ kind: 'http-filter', operation: 'INSERT_BEFORE', subFilter: undefined });
      const any = (patch as { value: HttpFilterValue }).value.typedConfig!;
      expect(any.type_url).toBe(`type.googleapis.com/${LRL}`);
      expect(decodeEnvoy(LRL, any.value)).toEqual({
        statPrefix: 'http_local_rate_limiter',
        tokenBucket: { maxTokens: 4, tokensPerFill: 4, fillInterval: { seconds: 60 } },
        filterEnabled: { runtimeKey: 'local_rate_limit_enabled', defaultValue: { numerator: 100 } },
        filterEnforced: { runtimeKey: 'local_rate_limit_enforced', defaultValue: { numerator: 100 } },
        responseHeadersToAdd: [
          {
            appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD',
            header: { key: 'x-local-rate-limit', value: 'true' },
          },
        ],
      });
    }
  });

  it('skips patches it cannot apply (unknown type, unknown field, bad duration, other applyTo) and keeps the good ones', () => {
    const { value, issues } = validateEnvoyFilter(
      envoyFilter('bad', 'ns1', {
        configPatches: [
          insertPatch({ '@type': 'type.googleapis.com/envoy.extensions.filters.http.nope.v3.Nope' }),
          insertPatch({ ...typedStruct, value: { ...documented, no_such_field: 1 } }),
          insertPatch({
            ...typedStruct,
            value: { ...documented, token_bucket: { max_tokens: 1, fill_interval: 'soon' } },
          }),
          { applyTo: 'CLUSTER', patch: { operation: 'MERGE', value: {} } },
          insertPatch(typedStruct),
        ],
      }),
    );
    expect(value!.patches).toHaveLength(1);
    const text = issues.map(i => `${i.path}: ${i.message}`).join('\n');
    expect(text).toContain('type envoy.extensions.filters.http.nope.v3.Nope is not known to istiod');
    expect(text).toContain('no_such_field: no such field in');
    expect(text).toContain('"soon" is not a duration');
    expect(text).toContain('spec.configPatches[3].applyTo: CLUSTER is not supported');
  });

  it('selects by targetRefs, else workloadSelector, else namespace (root namespace: every waypoint)', () => {
    const wp = {
      namespace: 'ns1',
      name: 'wp1',
      podLabels: { 'gateway.networking.k8s.io/gateway-name': 'wp1' },
    };
    const sel = (spec: Record<string, unknown>, ns = 'ns1'): boolean =>
      envoyFilterSelects(
        validateEnvoyFilter(envoyFilter('f', ns, { ...spec, configPatches: [insertPatch(typedStruct)] }))
          .value!,
        wp,
        'istio-system',
      );
    expect(sel({ targetRefs: [{ kind: 'Gateway', name: 'wp1' }] })).toBe(true);
    expect(sel({ targetRefs: [{ kind: 'Gateway', name: 'wp2' }] })).toBe(false);
    // A target that is no Gateway selects nothing (not the whole namespace).
    expect(sel({ targetRefs: [{ kind: 'Service', name: 'reviews' }] })).toBe(false);
    expect(sel({ workloadSelector: { labels: { 'gateway.networking.k8s.io/gateway-name': 'wp1' } } })).toBe(
      true,
    );
    expect(sel({ workloadSelector: { labels: { app: 'productpage' } } })).toBe(false);
    expect(sel({})).toBe(true);
    expect(sel({}, 'ns2')).toBe(false);
    expect(sel({}, 'istio-system')).toBe(true);
  });
});

describe('EnvoyFilter patch application', () => {
  const f = (name: string): HttpFilterValue => ({ name });
  const base = [f('envoy.filters.http.rbac'), f('envoy.filters.http.router')];
  const patch = (operation: string, subFilter?: string, name = 'x'): EnvoyFilterPatch => ({
    kind: 'http-filter',
    source: 'ns/f#0',
    operation: operation as never,
    subFilter,
    portNumber: undefined,
    filterChain: undefined,
    value: { name },
  });
  const names = (patches: EnvoyFilterPatch[], skipped?: (s: SkippedPatch) => void): string[] =>
    applyHttpFilterPatches(base, patches, { name: 'c', port: 80 }, skipped).map(x => x.name);

  it('inserts before/after a subfilter, first, or (without a subfilter) first/last; REPLACE and REMOVE', () => {
    expect(names([patch('INSERT_BEFORE', 'envoy.filters.http.router')])).toEqual([
      'envoy.filters.http.rbac',
      'x',
      'envoy.filters.http.router',
    ]);
    expect(names([patch('INSERT_AFTER', 'envoy.filters.http.rbac')])).toEqual([
      'envoy.filters.http.rbac',
      'x',
      'envoy.filters.http.router',
    ]);
    expect(names([patch('INSERT_BEFORE')])).toEqual([
      'x',
      'envoy.filters.http.rbac',
      'envoy.filters.http.router',
    ]);
    expect(names([patch('INSERT_FIRST')])).toEqual([
      'x',
      'envoy.filters.http.rbac',
      'envoy.filters.http.router',
    ]);
    expect(names([patch('REPLACE', 'envoy.filters.http.rbac')])).toEqual(['x', 'envoy.filters.http.router']);
    expect(names([patch('REMOVE', 'envoy.filters.http.rbac')])).toEqual(['envoy.filters.http.router']);
    // A subfilter that is not in the chain: the patch does not apply (Istio's behaviour).
    expect(names([patch('INSERT_BEFORE', 'envoy.filters.http.fault')])).toEqual([
      'envoy.filters.http.rbac',
      'envoy.filters.http.router',
    ]);
  });

  it('skips a patch that would leave the router not last (ADD, INSERT_AFTER the router), keeping the chain', () => {
    const skipped: SkippedPatch[] = [];
    expect(
      names(
        [
          patch('ADD'),
          patch('INSERT_AFTER', 'envoy.filters.http.router'),
          patch('INSERT_FIRST', undefined, 'y'),
        ],
        s => skipped.push(s),
      ),
    ).toEqual(['y', 'envoy.filters.http.rbac', 'envoy.filters.http.router']);
    expect(skipped.map(s => s.reason)).toEqual([
      'the router would not be the last HTTP filter',
      'the router would not be the last HTTP filter',
    ]);
  });

  it('merges typed_per_filter_config into the matching routes (by port, vhost and route name)', () => {
    const rc = {
      name: 'r',
      virtualHosts: [
        { name: 'v:80', routes: [{ name: 'a' }, { name: 'b', typedPerFilterConfig: { other: 1 } }] },
      ],
    };
    const any = { type_url: 't', value: new Uint8Array() };
    const p = (route?: string, port?: number): EnvoyFilterPatch => ({
      kind: 'route',
      source: 's',
      portNumber: port,
      vhost: undefined,
      route,
      typedPerFilterConfig: { rl: any },
    });
    expect(applyRoutePatches(rc, [p('b')], 80)).toEqual({
      name: 'r',
      virtualHosts: [
        { name: 'v:80', routes: [{ name: 'a' }, { name: 'b', typedPerFilterConfig: { other: 1, rl: any } }] },
      ],
    });
    expect(applyRoutePatches(rc, [p(undefined, 9080)], 80)).toBe(rc);
  });
});

describe('EnvoyFilter in the waypoint index', () => {
  function setup() {
    const skipped: string[] = [];
    const h = waypointIndexes();
    h.upsert(K.GATEWAY, makeWaypointGateway('wp1', 'ns1'));
    h.upsert(K.GATEWAY, makeWaypointGateway('wp2', 'ns2'));
    h.upsert(K.SERVICE, makeBoundService('reviews', 'ns1', 'wp1', '10.96.0.10'));
    h.upsert(K.SERVICE, makeBoundService('details', 'ns2', 'wp2', '10.96.0.12'));
    h.upsert(K.POD, makeBackendPod('reviews', 'ns1', '10.244.0.5'));
    const filters = (wp: string, chain: string): { name: string; typedConfig: unknown }[] => {
      const main = decodeEnvoy(
        EnvoyType.listener,
        h.waypoints.resourcesFor(wp, EnvoyTypeUrls.listener).get('main_internal')!.value,
      ) as {
        filterChains: { name: string; filters: { typedConfig: unknown }[] }[];
      };
      const c = main.filterChains.find(x => x.name === chain)!;
      return (
        unpackTyped(c.filters[0]!.typedConfig) as { httpFilters: { name: string; typedConfig: unknown }[] }
      ).httpFilters;
    };
    return { h, filters, skipped };
  }
  const details = 'inbound-vip|80|http|details.ns2.svc.cluster.local';

  it('programs the documented EnvoyFilter into the targeted waypoint only, before the router; deleting it takes it out', () => {
    const { h, filters } = setup();
    const ef = envoyFilter('filter-local-ratelimit', 'ns1', {
      targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'wp1' }],
      configPatches: [
        insertPatch(typedStruct, {
          patch: {
            operation: 'INSERT_BEFORE',
            value: { name: 'envoy.filters.http.local_ratelimit', typed_config: typedStruct },
          },
          match: {
            context: 'SIDECAR_INBOUND',
            listener: {
              filterChain: { filter: { name: HCM, subFilter: { name: 'envoy.filters.http.router' } } },
            },
          },
        }),
      ],
    });
    h.upsert(K.ENVOY_FILTER, ef);
    const wp1 = filters('ns1/wp1', reviews);
    expect(wp1.map(f => f.name)).toEqual(['envoy.filters.http.local_ratelimit', 'envoy.filters.http.router']);
    expect(unpackTyped(wp1[0]!.typedConfig)).toMatchObject({
      statPrefix: 'http_local_rate_limiter',
      tokenBucket: { maxTokens: 4 },
    });
    expect(filters('ns2/wp2', details).map(f => f.name)).toEqual(['envoy.filters.http.router']);
    h.delete(K.ENVOY_FILTER, ef);
    expect(filters('ns1/wp1', reviews).map(f => f.name)).toEqual(['envoy.filters.http.router']);
  });

  it('a root-namespace EnvoyFilter without selector applies to every waypoint; an invalid one changes nothing and is reported', () => {
    const { h, filters } = setup();
    const before = h.waypoints.resourcesFor('ns1/wp1', EnvoyTypeUrls.listener).get('main_internal')!.version;
    h.upsert(
      K.ENVOY_FILTER,
      envoyFilter('broken', 'istio-system', {
        configPatches: [insertPatch({ '@type': 'type.googleapis.com/not.a.Type' })],
      }),
    );
    expect(h.waypoints.resourcesFor('ns1/wp1', EnvoyTypeUrls.listener).get('main_internal')!.version).toBe(
      before,
    );
    expect(h.waypoints.issues(K.ENVOY_FILTER, 'istio-system/broken')?.[0]?.message).toContain(
      'not.a.Type is not known to istiod',
    );
    h.upsert(
      K.ENVOY_FILTER,
      envoyFilter('all', 'istio-system', { configPatches: [insertPatch(typedStruct)] }),
    );
    expect(filters('ns1/wp1', reviews)[0]!.name).toBe('envoy.filters.http.local_ratelimit');
    expect(filters('ns2/wp2', details)[0]!.name).toBe('envoy.filters.http.local_ratelimit');
  });

  it('HTTP_ROUTE MERGE puts a per-route local rate limit on the waypoint routes', () => {
    const { h } = setup();
    h.upsert(
      K.ENVOY_FILTER,
      envoyFilter('per-route', 'ns1', {
        targetRefs: [{ kind: 'Gateway', name: 'wp1' }],
        configPatches: [
          {
            applyTo: 'HTTP_ROUTE',
            match: { context: 'ANY', routeConfiguration: { vhost: { route: { name: 'default' } } } },
            patch: {
              operation: 'MERGE',
              value: { typed_per_filter_config: { 'envoy.filters.http.local_ratelimit': typedStruct } },
            },
          },
        ],
      }),
    );
    const rc = decodeEnvoy(
      EnvoyType.routeConfiguration,
      h.waypoints.resourcesFor('ns1/wp1', EnvoyTypeUrls.routeConfiguration).get(reviews)!.value,
    ) as {
      virtualHosts: { routes: { name: string; typedPerFilterConfig?: Record<string, unknown> }[] }[];
    };
    const route = rc.virtualHosts[0]!.routes[0]!;
    expect(route.name).toBe('default');
    expect(unpackTyped(route.typedPerFilterConfig!['envoy.filters.http.local_ratelimit'])).toMatchObject({
      statPrefix: 'http_local_rate_limiter',
    });
  });
});
