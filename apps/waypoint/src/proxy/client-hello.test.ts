/**
 * The ClientHello reader on real ClientHellos (Node's TLS client on loopback): the SNI whole and
 * fed byte by byte, no SNI, and bytes that are not TLS.
 */
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { MAX_CLIENT_HELLO_BYTES, peekClientHello } from './client-hello.ts';

/** The first bytes a TLS client sends (its ClientHello), with `servername` or none. */
async function clientHello(servername: string | undefined): Promise<Buffer> {
  const server = createServer();
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  try {
    const got = new Promise<Buffer>(resolve => {
      server.once('connection', socket => {
        const chunks: Buffer[] = [];
        socket.on('data', (c: Buffer) => {
          chunks.push(c);
          const all = Buffer.concat(chunks);
          if (all.length >= 5 && all.length >= 5 + all.readUInt16BE(3)) {
            resolve(all);
            socket.destroy();
          }
        });
      });
    });
    const client = connect({
      host: '127.0.0.1',
      port: (server.address() as AddressInfo).port,
      rejectUnauthorized: false,
      ...(servername === undefined ? {} : { servername }),
    });
    client.on('error', () => undefined);
    const bytes = await got;
    client.destroy();
    return bytes;
  } finally {
    server.close();
  }
}

describe('peekClientHello', () => {
  it('reads the SNI of a real ClientHello, lowercased', async () => {
    const hello = await clientHello('Pt.Example.COM');
    expect(peekClientHello(hello)).toEqual({ kind: 'hello', sni: 'pt.example.com' });
  });

  it('says incomplete until the whole ClientHello is in, fed a byte at a time', async () => {
    const hello = await clientHello('a.example.com');
    for (let n = 1; n < hello.length; n++)
      expect(peekClientHello(hello.subarray(0, n)).kind).toBe('incomplete');
    expect(peekClientHello(hello)).toEqual({ kind: 'hello', sni: 'a.example.com' });
  });

  it('reassembles a ClientHello split over two TLS records', async () => {
    const hello = await clientHello('split.example.com');
    const body = hello.subarray(5);
    const cut = 40;
    const record = (fragment: Buffer): Buffer =>
      Buffer.concat([
        Buffer.from([0x16, hello[1]!, hello[2]!, fragment.length >> 8, fragment.length & 0xff]),
        fragment,
      ]);
    const split = Buffer.concat([record(body.subarray(0, cut)), record(body.subarray(cut))]);
    expect(peekClientHello(split.subarray(0, 5 + cut + 3))).toEqual({ kind: 'incomplete' });
    expect(peekClientHello(split)).toEqual({ kind: 'hello', sni: 'split.example.com' });
  });

  it('has no SNI when the client sends none (an IP address)', async () => {
    expect(peekClientHello(await clientHello(undefined))).toEqual({ kind: 'hello', sni: undefined });
  });

  it('calls bytes that are not a TLS handshake invalid, and gives up past the size bound', () => {
    expect(peekClientHello(Buffer.from('GET / HTTP/1.1\r\n'))).toMatchObject({ kind: 'invalid' });
    expect(peekClientHello(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 0x02, 0, 0, 1, 0]))).toMatchObject({
      kind: 'invalid',
    });
    const endless = Buffer.alloc(MAX_CLIENT_HELLO_BYTES);
    endless.set([0x16, 0x03, 0x01, 0x48, 0x00, 0x01, 0xff, 0xff, 0xff]);
    expect(peekClientHello(endless)).toMatchObject({ kind: 'invalid' });
  });
});
