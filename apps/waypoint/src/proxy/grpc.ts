/**
 * gRPC's length-prefixed messages in an HTTP/2 body: each is a 1-byte flag, a 4-byte big-endian
 * length and that many bytes. `GrpcMessageCounter` follows a body chunk by chunk (messages may
 * span chunks, and a chunk may hold several) and counts each message once its 5-byte prefix has
 * arrived, as Envoy's gRPC frame inspector does for the `istio_request_messages_total` and
 * `istio_response_messages_total` counters.
 */
export class GrpcMessageCounter {
  /** Messages whose prefix has been seen. */
  count = 0;
  /** Prefix bytes of the current message seen so far (0..4), then 5 while in its payload. */
  #prefixSeen = 0;
  #length = 0;
  /** Payload bytes of the current message still to come. */
  #remaining = 0;

  write(chunk: Uint8Array): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.#remaining > 0) {
        const take = Math.min(this.#remaining, chunk.length - i);
        this.#remaining -= take;
        i += take;
        continue;
      }
      // In a prefix: byte 0 is the flag, bytes 1..4 the length.
      const byte = chunk[i]!;
      if (this.#prefixSeen === 0) this.#length = 0;
      else this.#length = this.#length * 256 + byte;
      this.#prefixSeen++;
      i++;
      if (this.#prefixSeen === 5) {
        this.count++;
        this.#prefixSeen = 0;
        this.#remaining = this.#length;
      }
    }
  }
}

const GRPC_TIMEOUT_UNIT_MS: Readonly<Record<string, number>> = {
  H: 3_600_000,
  M: 60_000,
  S: 1_000,
  m: 1,
  u: 1e-3,
  n: 1e-6,
};

/**
 * A `grpc-timeout` header value (1 to 8 digits and a unit: H, M, S, m, u, n) in milliseconds;
 * undefined when absent or malformed (Envoy ignores a malformed one).
 */
export function parseGrpcTimeout(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(value.trim());
  if (m === null) return undefined;
  return Number(m[1]) * GRPC_TIMEOUT_UNIT_MS[m[2]!]!;
}

/**
 * The timeout of one request on a route (ms, 0 for none), as Envoy's router computes it: the
 * route's `timeout`, or for a gRPC request on a route that reads `grpc-timeout`, the client's
 * deadline (capped by the route's maximum when that is not 0).
 */
export function requestTimeoutMs(
  route: {
    readonly timeoutMs: number;
    readonly grpcTimeout: { readonly mode: 'replace' | 'limit'; readonly maxMs: number } | undefined;
  },
  grpcRequest: boolean,
  grpcTimeoutHeader: string | undefined,
): number {
  const g = route.grpcTimeout;
  if (!grpcRequest || g === undefined) return route.timeoutMs;
  const deadline = parseGrpcTimeout(grpcTimeoutHeader);
  const cap = (t: number): number => (g.maxMs > 0 && (t === 0 || t > g.maxMs) ? g.maxMs : t);
  if (g.mode === 'replace') return cap(deadline ?? 0);
  const limit = deadline === undefined ? 0 : cap(deadline);
  if (limit === 0) return route.timeoutMs;
  return route.timeoutMs > 0 ? Math.min(route.timeoutMs, limit) : limit;
}

/**
 * A `grpc-message` value as gRPC and Envoy percent-encode it: the UTF-8 bytes outside printable
 * ASCII (0x20–0x7E) and `%` itself become `%XX`; everything else (spaces and `/` included) stays.
 */
export function grpcPercentEncode(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    out +=
      byte < 0x20 || byte > 0x7e || byte === 0x25
        ? `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
        : String.fromCharCode(byte);
  }
  return out;
}
