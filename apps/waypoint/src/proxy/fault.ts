/**
 * Envoy's HTTP fault filter, as a pure decision per request: which fault config applies (the
 * route's `typed_per_filter_config`, else the filter's own; none when the chain has no fault
 * filter, as Envoy ignores per-route config of a filter it does not run), and whether this
 * request is delayed and/or aborted, each drawn on its own against its percentage.
 */
import type { FaultConfig, HttpChain, Route } from '../config/types.ts';

export interface FaultDecision {
  /** 0: no delay. */
  readonly delayMs: number;
  /** The status to answer with instead of forwarding, if aborted. */
  readonly abortStatus: number | undefined;
}

export const NO_FAULT: FaultDecision = Object.freeze({ delayMs: 0, abortStatus: undefined });

/** The fault config in force for a request of `chain` that matched `route`. */
export function faultFor(chain: HttpChain, route: Route | undefined): FaultConfig | undefined {
  if (chain.fault === undefined) return undefined;
  return route?.fault ?? chain.fault;
}

/** Draws the faults of one request; `random` gives [0, 1). */
export function decideFault(fault: FaultConfig | undefined, random: () => number): FaultDecision {
  if (fault === undefined) return NO_FAULT;
  const hit = (perMillion: number): boolean => perMillion > 0 && random() * 1_000_000 < perMillion;
  const delayMs = fault.delay !== undefined && hit(fault.delay.perMillion) ? fault.delay.fixedDelayMs : 0;
  const abortStatus =
    fault.abort !== undefined && hit(fault.abort.perMillion) ? fault.abort.httpStatus : undefined;
  return { delayMs, abortStatus };
}
