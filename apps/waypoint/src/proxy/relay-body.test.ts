import { PassThrough, Readable, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { BodyRelayError, relayBody } from './relay-body.ts';

/** A writable that keeps what it gets, with a small buffer so backpressure is exercised. */
function sink(): { stream: Writable; chunks: Buffer[] } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    highWaterMark: 16,
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk);
      setImmediate(done);
    },
  });
  return { stream, chunks };
}

describe('relayBody', () => {
  it('copies every chunk with backpressure, resolves on the end and leaves the destination open', async () => {
    const parts = Array.from({ length: 50 }, (_x, i) => Buffer.alloc(1024, i));
    const { stream, chunks } = sink();
    await relayBody(Readable.from(parts), stream, new AbortController().signal);
    expect(Buffer.concat(chunks)).toEqual(Buffer.concat(parts));
    expect(stream.writableEnded).toBe(false);
  });

  it('rejects when the source closes before its end, and destroys it', async () => {
    const src = new PassThrough();
    const { stream } = sink();
    const done = relayBody(src, stream, new AbortController().signal);
    src.write('partial');
    src.destroy();
    await expect(done).rejects.toMatchObject({ code: 'SOURCE_CLOSED' });
    await expect(done).rejects.toBeInstanceOf(BodyRelayError);
  });

  it('rejects when the destination closes first, and destroys the source', async () => {
    const src = new PassThrough();
    const { stream } = sink();
    const done = relayBody(src, stream, new AbortController().signal);
    stream.destroy();
    await expect(done).rejects.toMatchObject({ code: 'DESTINATION_CLOSED' });
    expect(src.destroyed).toBe(true);
  });

  it('rejects with the signal reason on abort, also when already aborted', async () => {
    const controller = new AbortController();
    const src = new PassThrough();
    const done = relayBody(src, sink().stream, controller.signal);
    controller.abort(new Error('per-try timeout'));
    await expect(done).rejects.toThrow('per-try timeout');
    expect(src.destroyed).toBe(true);
    await expect(relayBody(new PassThrough(), sink().stream, controller.signal)).rejects.toThrow(
      'per-try timeout',
    );
  });

  it('leaves no error of the streams uncaught after it settled (an HTTP/2 stream aborted a tick later)', async () => {
    const controller = new AbortController();
    const src = new PassThrough();
    const dst = sink().stream;
    const done = relayBody(src, dst, controller.signal);
    controller.abort(new Error('downstream reset'));
    await expect(done).rejects.toThrow('downstream reset');
    expect(() => src.emit('error', new Error('The operation was aborted'))).not.toThrow();
    expect(() => dst.emit('error', new Error('write after close'))).not.toThrow();
    const ended = new PassThrough();
    const ok = relayBody(ended, sink().stream, new AbortController().signal);
    ended.end('body');
    await ok;
    expect(() => ended.emit('error', new Error('reset after the end'))).not.toThrow();
  });
});
