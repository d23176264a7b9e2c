/**
 * The W3C `traceparent` header ztunnel sends on each CONNECT (docs/protocols.md#hbone-connect-request):
 * `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`, random IDs per connection, flags 00.
 * The receiver logs the trace id and makes up a new one when the header is missing or malformed
 * (its length must be exactly 55). Parsing is strict: lowercase hex, version 00, non-zero IDs.
 */
import { randomFillSync } from 'node:crypto';
import { HboneInvalidHeaderError } from './errors.ts';

export const TRACEPARENT_LENGTH = 55;

export interface Traceparent {
  readonly traceId: string;
  readonly parentId: string;
  readonly flags: number;
}

export type TraceparentResult =
  { readonly ok: true; readonly traceparent: Traceparent } | { readonly ok: false; readonly reason: string };

const FORMAT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_PARENT = '0'.repeat(16);

/** A source of random bytes, injectable for tests. */
export type RandomBytes = (size: number) => Uint8Array;

/**
 * Random bytes cut from one pooled buffer, refilled from the CSPRNG when used up: one call per 170
 * traceparents instead of one per CONNECT (as `crypto.randomUUID` pools its entropy). The bytes
 * are only valid until the next call; `newTraceparent` turns them into strings at once.
 */
const POOL_BYTES = 24 * 170;
const pool = Buffer.allocUnsafe(POOL_BYTES);
let poolOffset = POOL_BYTES;

function pooledRandomBytes(size: number): Uint8Array {
  if (poolOffset + size > POOL_BYTES) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const bytes = pool.subarray(poolOffset, poolOffset + size);
  poolOffset += size;
  return bytes;
}

/** A fresh traceparent with random IDs and flags 00. */
export function newTraceparent(random: RandomBytes = pooledRandomBytes): Traceparent {
  for (let attempt = 0; attempt < 8; attempt++) {
    const raw = random(24);
    const bytes = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    const traceId = bytes.subarray(0, 16).toString('hex');
    const parentId = bytes.subarray(16, 24).toString('hex');
    if (
      traceId.length === 32 &&
      parentId.length === 16 &&
      traceId !== ZERO_TRACE &&
      parentId !== ZERO_PARENT
    ) {
      return { traceId, parentId, flags: 0 };
    }
  }
  throw new HboneInvalidHeaderError(
    'traceparent',
    'the random source returned all-zero or short IDs 8 times',
  );
}

export function buildTraceparent(tp: Traceparent): string {
  const flags = tp.flags.toString(16).padStart(2, '0');
  const text = `00-${tp.traceId}-${tp.parentId}-${flags}`;
  if (!Number.isInteger(tp.flags) || tp.flags < 0 || tp.flags > 255 || !FORMAT.test(text)) {
    throw new HboneInvalidHeaderError(
      'traceparent',
      'IDs must be lowercase hex (32 and 16 digits), flags 0–255',
    );
  }
  if (tp.traceId === ZERO_TRACE || tp.parentId === ZERO_PARENT) {
    throw new HboneInvalidHeaderError('traceparent', 'all-zero IDs are invalid');
  }
  return text;
}

/** Parses a `traceparent` header value strictly. Never throws. */
export function parseTraceparent(header: string): TraceparentResult {
  if (header.length !== TRACEPARENT_LENGTH)
    return { ok: false, reason: `length is not ${TRACEPARENT_LENGTH}` };
  const m = FORMAT.exec(header);
  if (m === null) return { ok: false, reason: 'not 00-<32 hex>-<16 hex>-<2 hex> in lowercase' };
  const [, traceId = '', parentId = '', flags = ''] = m;
  if (traceId === ZERO_TRACE) return { ok: false, reason: 'all-zero trace id' };
  if (parentId === ZERO_PARENT) return { ok: false, reason: 'all-zero parent id' };
  return { ok: true, traceparent: { traceId, parentId, flags: parseInt(flags, 16) } };
}
