import { describe, expect, it } from 'vitest';
import { MAX_INSPECT_BYTES, inspectHttp } from './http-inspector.ts';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

describe('inspectHttp (http_inspector)', () => {
  it('finds h2c by the whole connection preface, and waits for the rest of a partial one', () => {
    expect(inspectHttp(b('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00'))).toEqual({
      kind: 'protocol',
      protocol: 'h2c',
    });
    expect(inspectHttp(b('PRI * HTTP/2.0\r\n'))).toEqual({ kind: 'incomplete' });
  });

  it('finds HTTP/1.1 and HTTP/1.0 by the request line', () => {
    expect(inspectHttp(b('GET /a?b=c HTTP/1.1\r\nhost: x\r\n\r\n'))).toEqual({
      kind: 'protocol',
      protocol: 'http/1.1',
    });
    expect(inspectHttp(b('POST / HTTP/1.0\r\n'))).toEqual({ kind: 'protocol', protocol: 'http/1.0' });
    expect(inspectHttp(b('GET /partial'))).toEqual({ kind: 'incomplete' });
    expect(inspectHttp(b(''))).toEqual({ kind: 'incomplete' });
  });

  it('finds no protocol for anything else, as early as the bytes tell', () => {
    expect(inspectHttp(Buffer.from([0x16, 0x03, 0x01, 0x00]))).toEqual({ kind: 'none' });
    expect(inspectHttp(b('hello\n'))).toEqual({ kind: 'none' });
    expect(inspectHttp(b('PING\r\n'))).toEqual({ kind: 'none' });
    expect(inspectHttp(b('GET / HTTP/2.0\r\n'))).toEqual({ kind: 'none' });
    expect(inspectHttp(b(' GET / HTTP/1.1\r\n'))).toEqual({ kind: 'none' });
    expect(inspectHttp(b(`GET /${'a'.repeat(MAX_INSPECT_BYTES)}`))).toEqual({ kind: 'none' });
  });
});
