/**
 * Envoy's HTTP local rate limit config
 * (`envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit`), as the filter's own
 * `typed_config` and as a route's `typed_per_filter_config`: `stat_prefix`, `token_bucket`,
 * `filter_enabled` / `filter_enforced` (their `default_value`; runtime keys have no runtime here),
 * `status`, `response_headers_to_add`. Descriptors, per-connection buckets, rate-limit headers
 * and the headers added when not enforced are reported (NACKed).
 */
import { envoyRoot } from '../xds/envoy-protos.ts';
import type { ProtoObject } from '../xds/envoy-protos.ts';
import { perMillion } from './convert-fault.ts';
import { convertHeaderMods } from './matchers.ts';
import type { ProtoReader } from './proto-reader.ts';
import type { LocalRateLimitConfig } from './types.ts';

/** The filter's name, as Istio's documentation names it. */
export const LOCAL_RATELIMIT_FILTER = 'envoy.filters.http.local_ratelimit';

/** Envoy's smallest `fill_interval`. */
const MIN_FILL_INTERVAL_MS = 50;

/** A `RuntimeFractionalPercent`'s `default_value` in parts per million; absent is 0 (Envoy: off). */
function runtimePerMillion(r: ProtoReader, o: ProtoObject | undefined, path: string): number {
  if (o === undefined) return 0;
  r.only(o, path, ['default_value'], ['runtime_key']);
  return perMillion(r, r.object(o, 'default_value'), `${path}.default_value`);
}

export function convertLocalRateLimit(r: ProtoReader, o: ProtoObject, path: string): LocalRateLimitConfig {
  r.only(
    o,
    path,
    [
      'stat_prefix',
      'token_bucket',
      'filter_enabled',
      'filter_enforced',
      'status',
      'response_headers_to_add',
      'local_rate_limit_per_downstream_connection',
      'enable_x_ratelimit_headers',
    ],
    // No effect here: the stage and the default-bucket accounting matter only with descriptors.
    ['stage', 'always_consume_default_token_bucket', 'vh_rate_limits', 'rate_limited_as_resource_exhausted'],
  );
  const statPrefix = r.string(o, 'stat_prefix') ?? '';
  if (statPrefix === '') r.problem(`${path}.stat_prefix`, 'is required');
  if (r.bool(o, 'local_rate_limit_per_downstream_connection') === true)
    r.problem(
      `${path}.local_rate_limit_per_downstream_connection`,
      'per-connection buckets are not supported (one bucket per filter or route)',
    );
  const xHeaders = r.string(o, 'enable_x_ratelimit_headers');
  if (xHeaders !== undefined && xHeaders !== 'OFF')
    r.problem(`${path}.enable_x_ratelimit_headers`, `${xHeaders} is not supported (OFF only)`);
  let bucket: LocalRateLimitConfig['bucket'];
  const tb = r.object(o, 'token_bucket');
  if (tb !== undefined) {
    const tp = `${path}.token_bucket`;
    r.only(tb, tp, ['max_tokens', 'tokens_per_fill', 'fill_interval']);
    const maxTokens = r.number(tb, 'max_tokens') ?? 0;
    const tokensPerFill = r.wrappedNumber(tb, 'tokens_per_fill') ?? 1;
    const fillIntervalMs = r.durationMs(tb, 'fill_interval', tp);
    if (!Number.isInteger(maxTokens) || maxTokens < 1) r.problem(`${tp}.max_tokens`, 'must be at least 1');
    if (!Number.isInteger(tokensPerFill) || tokensPerFill < 1)
      r.problem(`${tp}.tokens_per_fill`, 'must be at least 1');
    if (fillIntervalMs === undefined || fillIntervalMs < MIN_FILL_INTERVAL_MS)
      r.problem(`${tp}.fill_interval`, `is required and must be at least ${MIN_FILL_INTERVAL_MS}ms`);
    else bucket = { maxTokens, tokensPerFill, fillIntervalMs };
  }
  let status = 429;
  const s = r.object(o, 'status');
  if (s !== undefined) {
    r.only(s, `${path}.status`, ['code']);
    const code = s.code;
    // The decoder gives Envoy's `StatusCode` enum by name (`TooManyRequests`).
    const n =
      typeof code === 'number'
        ? code
        : typeof code === 'string'
          ? (envoyRoot().lookupEnum('envoy.type.v3.StatusCode').values[code] ?? NaN)
          : NaN;
    if (Number.isInteger(n) && n >= 200 && n <= 599) status = n;
    else if (code !== undefined && code !== 0 && code !== 'Empty')
      r.problem(`${path}.status.code`, `${JSON.stringify(code)} is not an HTTP status 200..599`);
  }
  return {
    statPrefix,
    bucket,
    enabledPerMillion: runtimePerMillion(r, r.object(o, 'filter_enabled'), `${path}.filter_enabled`),
    enforcedPerMillion: runtimePerMillion(r, r.object(o, 'filter_enforced'), `${path}.filter_enforced`),
    status,
    responseHeaders: convertHeaderMods(r, o, 'response', path),
  };
}
