import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { relay, relayedBytes } from './relay.ts';

/** A duplex whose readable side is driven by the test and whose writes are recorded as batches. */
class RecordingDuplex extends Duplex {
  readonly batches: string[][] = [];

  constructor() {
    super({ allowHalfOpen: true });
  }

  override _read(): void {
    // Data is pushed by the test.
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.batches.push([chunk.toString()]);
    callback();
  }

  override _writev(
    chunks: { chunk: Buffer; encoding: BufferEncoding }[],
    callback: (error?: Error | null) => void,
  ): void {
    this.batches.push(chunks.map(c => c.chunk.toString()));
    callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    callback();
  }
}

describe('relay', () => {
  it('writes the bulk chunks that arrive in one turn of the event loop as one batch', async () => {
    const tunnel = new RecordingDuplex();
    const socket = new RecordingDuplex();
    const done = relay(tunnel, socket);
    // Three records' worth in separate callbacks of the same turn, as one TLS read delivers them.
    const [a, b, c] = ['a', 'b', 'c'].map(x => x.repeat(16 * 1024)) as [string, string, string];
    await new Promise<void>(resolve => {
      process.nextTick(() => tunnel.push(a));
      process.nextTick(() => tunnel.push(b));
      process.nextTick(() => {
        tunnel.push(c);
        resolve();
      });
    });
    await new Promise(resolve => setImmediate(resolve));
    await new Promise(resolve => setImmediate(resolve));
    expect(socket.batches).toEqual([[a, b, c]]);

    tunnel.push(null);
    socket.push(null);
    const result = await done;
    expect(result).toEqual({ sent: 0, received: 3 * 16 * 1024 });
  });

  it('writes a small chunk at once, without waiting for the turn to end', async () => {
    const tunnel = new RecordingDuplex();
    const socket = new RecordingDuplex();
    const done = relay(tunnel, socket);
    tunnel.push('GET / HTTP/1.1');
    await new Promise<void>(resolve => {
      process.nextTick(resolve);
    });
    expect(socket.batches).toEqual([['GET / HTTP/1.1']]);
    tunnel.push(null);
    socket.push(null);
    await done;
  });

  it('adds every relayed byte, both directions, to the process-wide total', async () => {
    const before = relayedBytes();
    const tunnel = new RecordingDuplex();
    const socket = new RecordingDuplex();
    const done = relay(tunnel, socket);
    tunnel.push('x'.repeat(20 * 1024));
    socket.push('request');
    tunnel.push(null);
    socket.push(null);
    await done;
    expect(relayedBytes() - before).toBe(20 * 1024 + 'request'.length);
  });

  it('ends each side when the other side ends, and reports the bytes both ways', async () => {
    const tunnel = new RecordingDuplex();
    const socket = new RecordingDuplex();
    const done = relay(tunnel, socket);
    socket.push('request');
    socket.push(null);
    await new Promise(resolve => setImmediate(resolve));
    tunnel.push('response!');
    tunnel.push(null);
    expect(await done).toEqual({ sent: 7, received: 9 });
    expect(tunnel.batches.flat().join('')).toBe('request');
    expect(socket.batches.flat().join('')).toBe('response!');
    expect(tunnel.writableFinished && socket.writableFinished).toBe(true);
  });

  it('destroys both sides and reports the error when one fails', async () => {
    const tunnel = new RecordingDuplex();
    const socket = new RecordingDuplex();
    const done = relay(tunnel, socket);
    socket.destroy(new Error('connection reset'));
    const result = await done;
    expect(result.error?.message).toBe('connection reset');
    expect(tunnel.destroyed).toBe(true);
  });
});
