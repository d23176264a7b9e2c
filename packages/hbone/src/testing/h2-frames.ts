/**
 * A hand-written HTTP/2 frame encoder (RFC 9113 §4, HPACK literals from RFC 7541 §6.2) for abuse
 * tests: it writes what a well-behaved client library would refuse to send.
 */

export const FrameType = {
  Data: 0x0,
  Headers: 0x1,
  RstStream: 0x3,
  Settings: 0x4,
  Ping: 0x6,
  GoAway: 0x7,
  WindowUpdate: 0x8,
  Continuation: 0x9,
} as const;

export const Flag = {
  EndStream: 0x1,
  Ack: 0x1,
  EndHeaders: 0x4,
} as const;

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export function frame(
  type: number,
  flags: number,
  streamId: number,
  payload: Buffer = Buffer.alloc(0),
): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([header, payload]);
}

/** HPACK integer with an N-bit prefix (RFC 7541 §5.1); `first` carries the pattern bits. */
function hpackInt(value: number, prefixBits: number, first: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([first | value]);
  const bytes = [first | max];
  let rest = value - max;
  while (rest >= 128) {
    bytes.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

function hpackString(text: string): Buffer {
  const raw = Buffer.from(text, 'latin1');
  return Buffer.concat([hpackInt(raw.length, 7, 0), raw]);
}

/** A header block of literal fields without indexing, new names (no Huffman). */
export function headerBlock(headers: readonly (readonly [string, string])[]): Buffer {
  return Buffer.concat(
    headers.flatMap(([name, value]) => [Buffer.from([0]), hpackString(name), hpackString(value)]),
  );
}

export function settings(entries: readonly (readonly [number, number])[] = []): Buffer {
  const payload = Buffer.alloc(entries.length * 6);
  entries.forEach(([id, value], i) => {
    payload.writeUInt16BE(id, i * 6);
    payload.writeUInt32BE(value, i * 6 + 2);
  });
  return frame(FrameType.Settings, 0, 0, payload);
}

export function ping(data = 0): Buffer {
  const payload = Buffer.alloc(8);
  payload.writeUInt32BE(data >>> 0, 4);
  return frame(FrameType.Ping, 0, 0, payload);
}

export function rstStream(streamId: number, code = 0x8 /* CANCEL */): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(code, 0);
  return frame(FrameType.RstStream, 0, streamId, payload);
}

/** A CONNECT HEADERS frame (END_HEADERS, no END_STREAM). */
export function connectHeaders(streamId: number, authority: string): Buffer {
  return frame(
    FrameType.Headers,
    Flag.EndHeaders,
    streamId,
    headerBlock([
      [':method', 'CONNECT'],
      [':authority', authority],
    ]),
  );
}

/** Splits a header block into HEADERS + CONTINUATION frames of at most `chunk` bytes. */
export function fragmentedHeaders(
  streamId: number,
  block: Buffer,
  chunk: number,
  endHeaders = true,
): Buffer[] {
  const frames: Buffer[] = [];
  for (let at = 0; at < block.length || at === 0; at += chunk) {
    const part = block.subarray(at, at + chunk);
    const last = at + chunk >= block.length;
    const type = at === 0 ? FrameType.Headers : FrameType.Continuation;
    frames.push(frame(type, last && endHeaders ? Flag.EndHeaders : 0, streamId, part));
    if (block.length === 0) break;
  }
  return frames;
}
