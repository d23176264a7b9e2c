import { describe, expect, it } from 'vitest';
import { convertListener } from '../config/convert-listener.ts';
import { convertRouteConfiguration } from '../config/convert-route.ts';
import type { Converted, ForwardAction, HttpChain, LocalRateLimitConfig, Route } from '../config/types.ts';
import { any, httpListener, ms, router } from '../testing/fixtures.ts';
import { EnvoyType, decodeEnvoy, encodeEnvoy } from '../xds/envoy-protos.ts';
import type { ProtoObject } from '../xds/envoy-protos.ts';
import { LocalRateLimiter, TokenBucket } from './local-ratelimit.ts';
import { drawMirrors, shadowHost } from './mirror.ts';

const wire = (type: string, value: ProtoObject): ProtoObject => decodeEnvoy(type, encodeEnvoy(type, value));
const FILTER = 'envoy.filters.http.local_ratelimit';
const ALL = { default_value: { numerator: 100, denominator: 'HUNDRED' }, runtime_key: 'k' };

function listenerWith(filters: ProtoObject[]): Converted<unknown> & { chain?: HttpChain } {
  const l = httpListener('l', '10.0.0.1', 80, 'r');
  const hcm = ((l.filter_chains as ProtoObject[])[0]!.filters as ProtoObject[])[0]!
    .typed_config as ProtoObject;
  hcm.http_filters = [...filters, router];
  const c = convertListener('l', '1', wire(EnvoyType.listener, l));
  const action = c.ok ? c.value.chains[0]?.action : undefined;
  return action?.kind === 'http' ? { ...c, chain: action } : c;
}

const rl = (value: ProtoObject): ProtoObject => ({
  name: FILTER,
  typed_config: any(EnvoyType.localRateLimit, value),
});

describe('local rate limit config', () => {
  it("converts Istio's documented filter after the wire (status enum, wrappers, fractions, headers)", () => {
    const c = listenerWith([
      rl({
        stat_prefix: 'http_local_rate_limiter',
        token_bucket: { max_tokens: 4, tokens_per_fill: { value: 2 }, fill_interval: ms(60_000) },
        filter_enabled: ALL,
        filter_enforced: { default_value: { numerator: 50, denominator: 'HUNDRED' } },
        status: { code: 'ServiceUnavailable' },
        response_headers_to_add: [
          {
            append_action: 'OVERWRITE_IF_EXISTS_OR_ADD',
            header: { key: 'x-local-rate-limit', value: 'true' },
          },
        ],
      }),
    ]);
    expect(c.ok).toBe(true);
    expect(c.chain?.localRateLimits).toEqual([
      {
        name: FILTER,
        beforeAuth: true,
        config: {
          statPrefix: 'http_local_rate_limiter',
          bucket: { maxTokens: 4, tokensPerFill: 2, fillIntervalMs: 60_000 },
          enabledPerMillion: 1_000_000,
          enforcedPerMillion: 500_000,
          status: 503,
          responseHeaders: {
            add: [{ name: 'x-local-rate-limit', value: 'true', mode: 'overwrite' }],
            remove: [],
          },
        },
      },
    ]);
  });

  it('NACKs a bad bucket, descriptors and per-connection buckets, naming the fields', () => {
    const c = listenerWith([
      rl({
        stat_prefix: 's',
        token_bucket: { max_tokens: 0, fill_interval: ms(10) },
        local_rate_limit_per_downstream_connection: true,
        descriptors: [
          { entries: [{ key: 'a', value: 'b' }], token_bucket: { max_tokens: 1, fill_interval: ms(1000) } },
        ],
      }),
    ]);
    expect(c.ok).toBe(false);
    const text = c.ok ? '' : c.problems.join('\n');
    expect(text).toContain('token_bucket.max_tokens: must be at least 1');
    expect(text).toContain('token_bucket.fill_interval: is required and must be at least 50ms');
    expect(text).toContain(
      'local_rate_limit_per_downstream_connection: per-connection buckets are not supported',
    );
    expect(text).toContain('typed_config.descriptors: is not supported by the waypoint');
  });

  it('converts per-route configs and request mirror policies after the wire', () => {
    const table = convertRouteConfiguration(
      'r',
      '1',
      wire(EnvoyType.routeConfiguration, {
        name: 'r',
        virtual_hosts: [
          {
            name: 'v',
            domains: ['*'],
            routes: [
              {
                match: { prefix: '/' },
                route: {
                  cluster: 'a',
                  request_mirror_policies: [
                    { cluster: 'm1', runtime_fraction: { default_value: { numerator: 25 } } },
                    { cluster: 'm2' },
                  ],
                },
                typed_per_filter_config: {
                  [FILTER]: any(EnvoyType.localRateLimit, {
                    stat_prefix: 'route',
                    token_bucket: { max_tokens: 1, fill_interval: ms(1000) },
                  }),
                },
              },
            ],
          },
        ],
      }),
    );
    if (!table.ok) throw new Error(table.problems.join('; '));
    const route = table.value.virtualHosts[0]!.routes[0]!;
    expect((route.action as ForwardAction).mirrors).toEqual([
      { cluster: 'm1', perMillion: 250_000 },
      { cluster: 'm2', perMillion: 1_000_000 },
    ]);
    const config = route.localRateLimit?.get(FILTER);
    expect(config?.bucket).toEqual({ maxTokens: 1, tokensPerFill: 1, fillIntervalMs: 1000 });
    // Envoy's defaults: filter_enabled and filter_enforced absent are 0 %.
    expect(config?.enabledPerMillion).toBe(0);
    expect(config?.status).toBe(429);
  });
});

const config = (over: Partial<LocalRateLimitConfig> = {}): LocalRateLimitConfig => ({
  statPrefix: 's',
  bucket: { maxTokens: 2, tokensPerFill: 1, fillIntervalMs: 1000 },
  enabledPerMillion: 1_000_000,
  enforcedPerMillion: 1_000_000,
  status: 429,
  responseHeaders: { add: [{ name: 'x-local-rate-limit', value: 'true', mode: 'overwrite' }], remove: [] },
  ...over,
});

const chainOf = (c: LocalRateLimitConfig, name = FILTER): HttpChain => ({
  kind: 'http',
  statPrefix: 'x',
  routes: { rds: 'r' },
  jwt: [],
  rbac: [],
  fault: undefined,
  localRateLimits: [{ name, config: c, beforeAuth: false }],
  pathNormalization: 'BASE',
});

describe('the local rate limit decision', () => {
  it('a bucket starts full, refills tokens_per_fill per fill_interval, never above max_tokens', () => {
    const b = new TokenBucket({ maxTokens: 3, tokensPerFill: 2, fillIntervalMs: 100 }, 0);
    expect([b.consume(0), b.consume(0), b.consume(0), b.consume(0)]).toEqual([true, true, true, false]);
    expect(b.consume(99)).toBe(false);
    expect([b.consume(100), b.consume(100), b.consume(100)]).toEqual([true, true, false]);
    expect(b.consume(10_000)).toBe(true);
    expect(b.tokens).toBe(2);
  });

  it('limits with the status and headers when enforced; only counts when not enforced; passes when not enabled', () => {
    let now = 0;
    const limiter = new LocalRateLimiter({ now: () => now, random: () => 0.5 });
    const enforced = chainOf(config());
    const kinds = [0, 1, 2].map(() => limiter.decide(enforced, undefined, false).kind);
    expect(kinds).toEqual(['pass', 'pass', 'limited']);
    expect(limiter.decide(enforced, undefined, false)).toEqual({
      kind: 'limited',
      status: 429,
      headers: { 'x-local-rate-limit': 'true' },
      statPrefix: 's',
    });
    now = 1000;
    expect(limiter.decide(enforced, undefined, false).kind).toBe('pass');
    const counted: string[] = [];
    const counting = new LocalRateLimiter({
      now: () => now,
      random: () => 0.5,
      counters: { count: (prefix, stat) => counted.push(`${prefix}.${stat}`) },
    });
    const shadowMode = chainOf(config({ enforcedPerMillion: 0, statPrefix: 'shadow' }));
    for (let i = 0; i < 4; i++) expect(counting.decide(shadowMode, undefined, false).kind).toBe('pass');
    // Envoy's counters: every request `enabled`, then `ok` or `rate_limited`; none `enforced`.
    expect(counted).toEqual([
      'shadow.enabled',
      'shadow.ok',
      'shadow.enabled',
      'shadow.ok',
      'shadow.enabled',
      'shadow.rate_limited',
      'shadow.enabled',
      'shadow.rate_limited',
    ]);
    counted.length = 0;
    for (let i = 0; i < 3; i++) counting.decide(enforced, undefined, false);
    expect(counted.filter(c => c.endsWith('.enforced'))).toEqual(['s.enforced']);
    const off = chainOf(config({ enabledPerMillion: 0 }));
    for (let i = 0; i < 4; i++) expect(limiter.decide(off, undefined, false).kind).toBe('pass');
  });

  it('keeps a spent bucket when a push re-sends the same token bucket; a changed bucket starts full', () => {
    let now = 0;
    const limiter = new LocalRateLimiter({ now: () => now });
    const bucket = { maxTokens: 1, tokensPerFill: 1, fillIntervalMs: 60_000 };
    const routeOf = (c: LocalRateLimitConfig): Route =>
      ({ name: 'r1', localRateLimit: new Map([[FILTER, c]]) }) as unknown as Route;
    // Each push converts the config anew: new objects with the same content.
    expect(limiter.decide(chainOf(config({ bucket })), routeOf(config({ bucket })), false).kind).toBe('pass');
    expect(limiter.decide(chainOf(config({ bucket })), routeOf(config({ bucket })), false).kind).toBe(
      'limited',
    );
    expect(limiter.decide(chainOf(config()), undefined, false).kind).toBe('pass');
    expect(limiter.decide(chainOf(config()), undefined, false).kind).toBe('pass');
    expect(limiter.decide(chainOf(config()), undefined, false).kind).toBe('limited');
    // Another filter chain (same HCM stat prefix) has its own bucket.
    expect(limiter.decide(chainOf(config()), undefined, false, 'other-chain').kind).toBe('pass');
    // Another route with the same settings has its own bucket.
    const other = { name: 'r2', localRateLimit: new Map([[FILTER, config({ bucket })]]) } as unknown as Route;
    expect(limiter.decide(chainOf(config()), other, false).kind).toBe('pass');
    // New settings: a new, full bucket.
    const bigger = { ...bucket, maxTokens: 2 };
    expect(limiter.decide(chainOf(config()), routeOf(config({ bucket: bigger })), false).kind).toBe('pass');
    expect(limiter.decide(chainOf(config()), routeOf(config({ bucket: bigger })), false).kind).toBe('pass');
    expect(limiter.decide(chainOf(config()), routeOf(config({ bucket: bigger })), false).kind).toBe(
      'limited',
    );
    // Full buckets are dropped when many are held (a full bucket is a new one).
    const spend = (from: number, to: number): void => {
      for (let i = from; i < to; i++) {
        const r = {
          name: `many-${i}`,
          localRateLimit: new Map([[FILTER, config({ bucket })]]),
        } as unknown as Route;
        limiter.decide(chainOf(config()), r, false);
      }
    };
    spend(0, 200);
    expect(limiter.size).toBeGreaterThanOrEqual(200);
    now = 240_000;
    spend(200, 300);
    expect(limiter.size).toBeLessThan(150);
  });

  it("a route's config has its own bucket and replaces the filter's; ignored when the chain lacks the filter", () => {
    const limiter = new LocalRateLimiter({ now: () => 0 });
    const routeConfig = config({
      bucket: { maxTokens: 1, tokensPerFill: 1, fillIntervalMs: 1000 },
      status: 503,
    });
    const route = { localRateLimit: new Map([[FILTER, routeConfig]]) } as unknown as Route;
    const chain = chainOf(config());
    expect(limiter.decide(chain, route, false).kind).toBe('pass');
    expect(limiter.decide(chain, route, false)).toMatchObject({ kind: 'limited', status: 503 });
    // The filter's own bucket is untouched by the route's requests.
    expect(limiter.decide(chain, undefined, false).kind).toBe('pass');
    expect(limiter.decide(chain, undefined, false).kind).toBe('pass');
    expect(limiter.decide(chain, undefined, false).kind).toBe('limited');
    const other = chainOf(config(), 'another.name');
    const fresh = new LocalRateLimiter({ now: () => 0 });
    expect(fresh.decide(other, route, false).kind).toBe('pass');
    expect(fresh.decide(other, route, false).kind).toBe('pass');
  });
});

describe('request mirroring helpers', () => {
  it("appends -shadow to the host, before the port (Envoy's shadow host)", () => {
    expect(shadowHost('reviews.default.svc.cluster.local')).toBe('reviews.default.svc.cluster.local-shadow');
    expect(shadowHost('reviews:9080')).toBe('reviews-shadow:9080');
    expect(shadowHost('10.0.0.1:80')).toBe('10.0.0.1-shadow:80');
    expect(shadowHost('[fd00::1]:80')).toBe('[fd00::1]-shadow:80');
  });

  it('draws each policy against its fraction', () => {
    const mirrors = [
      { cluster: 'all', perMillion: 1_000_000 },
      { cluster: 'quarter', perMillion: 250_000 },
      { cluster: 'none', perMillion: 0 },
    ];
    let quarter = 0;
    let x = 0;
    const random = (): number => (x = (x * 16807 + 7) % 2147483647) / 2147483647;
    let all = 0;
    let none = 0;
    for (let i = 0; i < 10_000; i++) {
      const drawn = drawMirrors(mirrors, random).map(m => m.cluster);
      if (drawn.includes('all')) all++;
      if (drawn.includes('none')) none++;
      if (drawn.includes('quarter')) quarter++;
    }
    expect(all).toBe(10_000);
    expect(none).toBe(0);
    expect(quarter).toBeGreaterThan(2000);
    expect(quarter).toBeLessThan(3000);
  });
});
