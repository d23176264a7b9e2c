/** In-memory stream pairs for running Node's HTTP/2 over an HBONE tunnel. */
import { Duplex } from 'node:stream';

/**
 * A pair of connected Duplexes whose writes complete at once (the reader side buffers). Node's
 * HTTP/2 over a JS stream asserts when a write is still pending as the session closes, which
 * `duplexPair()`'s deferred callbacks cause; HTTP/2 flow control bounds what is buffered here.
 */
export function immediatePair(): [Duplex, Duplex] {
  const make = (): Duplex & { peer?: Duplex } =>
    new Duplex({
      read() {
        // Data is pushed by the peer's writes.
      },
      write(this: Duplex & { peer?: Duplex }, chunk: Buffer, _encoding, callback) {
        this.peer?.push(chunk);
        callback();
      },
      final(this: Duplex & { peer?: Duplex }, callback) {
        this.peer?.push(null);
        callback();
      },
      destroy(this: Duplex & { peer?: Duplex }, err, callback) {
        this.peer?.destroy();
        callback(err);
      },
    });
  const a = make();
  const b = make();
  a.peer = b;
  b.peer = a;
  return [a, b];
}
