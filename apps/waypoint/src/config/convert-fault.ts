/**
 * Envoy's HTTP fault filter config (`envoy.extensions.filters.http.fault.v3.HTTPFault`), as the
 * filter's own `typed_config` in a listener and as a route's `typed_per_filter_config`: a fixed
 * delay and an HTTP abort, each with its `percentage`. Header-controlled faults, gRPC aborts,
 * response rate limits and node/cluster/header restrictions are reported (NACKed).
 */
import type { ProtoObject } from '../xds/envoy-protos.ts';
import type { ProtoReader } from './proto-reader.ts';
import type { FaultConfig } from './types.ts';

/** The filter's name, as Istio names it. */
export const FAULT_FILTER = 'envoy.filters.http.fault';

const PER_MILLION: Record<string, number> = { HUNDRED: 10_000, TEN_THOUSAND: 100, MILLION: 1 };

/** A `FractionalPercent` as parts per million (capped at 100 %); absent is 0, as in Envoy. */
export function perMillion(r: ProtoReader, o: ProtoObject | undefined, path: string): number {
  if (o === undefined) return 0;
  r.only(o, path, ['numerator', 'denominator']);
  const numerator = Number(o.numerator ?? 0);
  const denominator = typeof o.denominator === 'string' ? o.denominator : 'HUNDRED';
  const scale = PER_MILLION[denominator];
  if (scale === undefined || !Number.isFinite(numerator) || numerator < 0) {
    r.problem(path, `${JSON.stringify(o)} is not a fractional percent`);
    return 0;
  }
  return Math.min(1_000_000, numerator * scale);
}

export function convertFault(r: ProtoReader, o: ProtoObject, path: string): FaultConfig {
  r.only(o, path, ['delay', 'abort'], ['max_active_faults', 'disable_downstream_cluster_stats']);
  let delay: FaultConfig['delay'];
  let abort: FaultConfig['abort'];
  const d = r.object(o, 'delay');
  if (d !== undefined) {
    r.only(d, `${path}.delay`, ['fixed_delay', 'percentage']);
    const fixedDelayMs = r.durationMs(d, 'fixed_delay', `${path}.delay`);
    if (fixedDelayMs === undefined)
      r.problem(`${path}.delay`, 'needs fixed_delay (header_delay is not supported)');
    else
      delay = {
        fixedDelayMs,
        perMillion: perMillion(r, r.object(d, 'percentage'), `${path}.delay.percentage`),
      };
  }
  const a = r.object(o, 'abort');
  if (a !== undefined) {
    r.only(a, `${path}.abort`, ['http_status', 'percentage']);
    const httpStatus = r.number(a, 'http_status');
    if (httpStatus === undefined || !Number.isInteger(httpStatus) || httpStatus < 200 || httpStatus > 599)
      r.problem(
        `${path}.abort.http_status`,
        'needs an HTTP status 200..599 (grpc_status and header_abort are not supported)',
      );
    else
      abort = {
        httpStatus,
        perMillion: perMillion(r, r.object(a, 'percentage'), `${path}.abort.percentage`),
      };
  }
  return { delay, abort };
}
