/**
 * What a NACK carries, for both protocols and both sides: per-resource rejections joined into
 * `error_detail.message`, and the test for "this request is a NACK".
 */
import type { rpc } from '@ambient-mesh/xds-types';

/** One resource a client refused, and why. */
export interface Rejection {
  readonly name: string;
  readonly reason: string;
}

/** google.rpc.Code INVALID_ARGUMENT, which upstream puts in `error_detail.code` of a NACK. */
export const NACK_CODE = 3;

/** `a: reason; b: reason` (a rejection with an empty name contributes its reason alone). */
export function nackMessage(rejections: readonly Rejection[]): string {
  return rejections.map(r => (r.name === '' ? r.reason : `${r.name}: ${r.reason}`)).join('; ');
}

/** True when a request's `error_detail` makes it a NACK. */
export function isNack(errorDetail: rpc.Status | null): boolean {
  return errorDetail !== null && (errorDetail.code !== 0 || errorDetail.message !== '');
}
