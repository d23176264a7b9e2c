/**
 * A response body copied to the downstream response: what `pipeline(src, dst, { end: false,
 * signal })` does, without the per-call cost of `stream.pipeline` (its own AbortController,
 * aborted with a `DOMException` when every pipeline finishes, and the premature-close errors it
 * prepares), which a CPU profile of the waypoint at 1000 requests/s showed as its top hot spot.
 */
import type { Readable, Writable } from 'node:stream';

/** The source ended (or the other side closed) before the body was complete. */
export class BodyRelayError extends Error {
  readonly code: 'SOURCE_CLOSED' | 'DESTINATION_CLOSED';
  constructor(code: 'SOURCE_CLOSED' | 'DESTINATION_CLOSED', message: string) {
    super(message);
    this.name = 'BodyRelayError';
    this.code = code;
  }
}

const ignore = (): void => undefined;

/**
 * Writes every chunk of `src` to `dst` with backpressure and leaves `dst` open. Resolves when
 * `src` ends; rejects, after destroying `src`, when `src` errors or closes before its end, when
 * `dst` errors or closes first, or when `signal` aborts (with its reason). `dst` is left to the
 * caller either way (it ends it, resets it or closes it with a code).
 */
export function relayBody(src: Readable, dst: Writable, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal.aborted) {
      src.on('error', ignore);
      src.destroy();
      reject(signal.reason as Error);
      return;
    }
    // Once settled, errors the streams still emit (an HTTP/2 stream destroyed by the per-try
    // abort emits its AbortError a tick later) are expected; without a listener they would be
    // uncaught. `stream.pipeline` leaves its error listeners in place for the same reason.
    const cleanup = (): void => {
      src.on('error', ignore);
      src.off('data', onData);
      src.off('end', onEnd);
      src.off('error', fail);
      src.off('close', onSourceClose);
      dst.off('drain', onDrain);
      dst.off('error', fail);
      dst.off('close', onDestinationClose);
      signal.removeEventListener('abort', onAbort);
    };
    function fail(err: unknown): void {
      cleanup();
      dst.on('error', ignore);
      src.destroy();
      reject(err instanceof Error ? err : new Error(String(err)));
    }
    function onData(chunk: Buffer): void {
      if (!dst.write(chunk)) src.pause();
    }
    function onDrain(): void {
      src.resume();
    }
    function onEnd(): void {
      cleanup();
      resolve();
    }
    function onSourceClose(): void {
      // `end` comes before `close` on a complete body; `close` alone is a premature end.
      if (!src.readableEnded)
        fail(new BodyRelayError('SOURCE_CLOSED', 'the response body closed before its end'));
    }
    function onDestinationClose(): void {
      fail(new BodyRelayError('DESTINATION_CLOSED', 'the downstream closed before the response body ended'));
    }
    function onAbort(): void {
      fail(signal.reason);
    }
    src.on('data', onData);
    src.once('end', onEnd);
    src.once('error', fail);
    src.once('close', onSourceClose);
    dst.on('drain', onDrain);
    dst.once('error', fail);
    dst.once('close', onDestinationClose);
    signal.addEventListener('abort', onAbort, { once: true });
    if (src.readableEnded) onEnd();
    else src.resume();
  });
}
