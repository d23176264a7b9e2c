/**
 * A bare node:http2 client with a test identity, for sending requests our HboneClient would
 * refuse to send (other methods, bad authorities) and for abusive behaviour.
 */
import { connect as h2Connect } from 'node:http2';
import type { ClientHttp2Session, OutgoingHttpHeaders } from 'node:http2';
import { connect as tlsConnect } from 'node:tls';
import type { TLSSocket } from 'node:tls';
import { tlsContextOptions } from '../identity.ts';
import type { HboneIdentity } from '../identity.ts';

/** Opens a mutually authenticated TLS 1.3 socket with ALPN h2 (no server identity check). */
export function rawTls(port: number, identity: HboneIdentity): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port,
      ...tlsContextOptions(identity),
      ALPNProtocols: ['h2'],
      checkServerIdentity: () => undefined,
    });
    socket.once('secureConnect', () => {
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

export async function rawSession(port: number, identity: HboneIdentity): Promise<ClientHttp2Session> {
  const tls = await rawTls(port, identity);
  const session = h2Connect(`https://127.0.0.1:${port}`, { createConnection: () => tls });
  session.on('error', () => undefined);
  return session;
}

/** Sends one request and resolves with its `:status` (or the stream error's code). */
export function statusOf(
  session: ClientHttp2Session,
  headers: OutgoingHttpHeaders,
): Promise<number | string> {
  return new Promise(resolve => {
    const stream = session.request(headers, { endStream: false });
    stream.on('response', h => {
      resolve(Number(h[':status']));
      stream.end();
      stream.resume();
    });
    stream.on('error', (err: NodeJS.ErrnoException) => {
      resolve(err.code ?? err.message);
    });
  });
}
