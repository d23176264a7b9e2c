/**
 * Joins a tunnel stream to a socket: bytes flow both ways with backpressure, and each direction
 * half-closes on its own (the end of one side's input ends the other side's output, which on an
 * HTTP/2 stream is END_STREAM, never RST_STREAM). On an error or a premature close of either side,
 * both are destroyed.
 *
 * The socket must allow half-open connections (`allowHalfOpen: true`), otherwise Node ends its
 * writable side as soon as the peer's FIN arrives and the other direction is cut short.
 */
import type { Duplex } from 'node:stream';
import type { HboneCounters } from './counters.ts';

export interface RelayOptions {
  /** `bytesSent` counts socket → tunnel, `bytesReceived` tunnel → socket. */
  readonly counters?: HboneCounters;
  /** Called with the size of each chunk read from the tunnel, as it is relayed. */
  readonly onTunnelData?: (bytes: number) => void;
  /** Called with the size of each chunk read from the socket, as it is relayed. */
  readonly onSocketData?: (bytes: number) => void;
}

export interface RelayResult {
  /** Bytes written into the tunnel. */
  readonly sent: number;
  /** Bytes read from the tunnel. */
  readonly received: number;
  /** Set when the relay was cut short; both streams are destroyed then. */
  readonly error?: Error;
}

/** Relays until both directions ended or one side failed. Never rejects. */
export function relay(tunnel: Duplex, socket: Duplex, options: RelayOptions = {}): Promise<RelayResult> {
  const counters = options.counters;
  return new Promise(resolve => {
    let sent = 0;
    let received = 0;
    let tunnelEnded = false;
    let socketEnded = false;
    let settled = false;

    const finish = (error?: Error): void => {
      if (settled) return;
      settled = true;
      if (error !== undefined) {
        tunnel.destroy();
        socket.destroy();
      }
      cleanup();
      resolve(error === undefined ? { sent, received } : { sent, received, error });
    };
    const maybeDone = (): void => {
      if (tunnelEnded && socketEnded) finish();
    };

    const onTunnelData = (chunk: Buffer): void => {
      received += chunk.length;
      if (counters) counters.bytesReceived += chunk.length;
      options.onTunnelData?.(chunk.length);
      if (!socket.write(chunk)) tunnel.pause();
    };
    const onSocketData = (chunk: Buffer): void => {
      sent += chunk.length;
      if (counters) counters.bytesSent += chunk.length;
      options.onSocketData?.(chunk.length);
      if (!tunnel.write(chunk)) socket.pause();
    };
    const onTunnelDrain = (): void => {
      socket.resume();
    };
    const onSocketDrain = (): void => {
      tunnel.resume();
    };
    const onTunnelEnd = (): void => {
      tunnelEnded = true;
      socket.end();
      maybeDone();
    };
    const onSocketEnd = (): void => {
      socketEnded = true;
      tunnel.end();
      maybeDone();
    };
    const onError = (err: Error): void => {
      finish(err);
    };
    const onTunnelClose = (): void => {
      if (!tunnelEnded || !socketEnded) finish(new Error('tunnel closed before both directions ended'));
    };
    const onSocketClose = (): void => {
      if (!tunnelEnded || !socketEnded) finish(new Error('socket closed before both directions ended'));
    };
    const cleanup = (): void => {
      tunnel.off('data', onTunnelData);
      socket.off('data', onSocketData);
      tunnel.off('drain', onTunnelDrain);
      socket.off('drain', onSocketDrain);
      tunnel.off('end', onTunnelEnd);
      socket.off('end', onSocketEnd);
      tunnel.off('error', onError);
      socket.off('error', onError);
      tunnel.off('close', onTunnelClose);
      socket.off('close', onSocketClose);
      // Late errors after a clean finish must not become uncaught exceptions.
      tunnel.on('error', ignore);
      socket.on('error', ignore);
    };

    tunnel.on('data', onTunnelData);
    socket.on('data', onSocketData);
    tunnel.on('drain', onTunnelDrain);
    socket.on('drain', onSocketDrain);
    tunnel.on('end', onTunnelEnd);
    socket.on('end', onSocketEnd);
    tunnel.on('error', onError);
    socket.on('error', onError);
    tunnel.on('close', onTunnelClose);
    socket.on('close', onSocketClose);
    if (tunnel.readableEnded) onTunnelEnd();
    if (socket.readableEnded) onSocketEnd();
  });
}

function ignore(): void {
  // Deliberately empty: see cleanup().
}
