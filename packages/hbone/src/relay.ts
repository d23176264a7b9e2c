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

/**
 * Relays until both directions ended or one side failed. Never rejects.
 *
 * A relay lives as long as its connection, and a proxy holds thousands: its state is one object,
 * and its listeners are shared by every relay and find that object through the emitter they are
 * called on, instead of a dozen closures per relay.
 */
export function relay(tunnel: Duplex, socket: Duplex, options: RelayOptions = {}): Promise<RelayResult> {
  return new Promise(resolve => {
    const state = new Relay(tunnel, socket, options, resolve);
    relays.set(tunnel, state);
    relays.set(socket, state);
    for (const side of [tunnel, socket]) {
      for (const [event, listener] of LISTENERS) side.on(event, listener);
    }
    if (tunnel.readableEnded) state.ended(tunnel);
    if (socket.readableEnded) state.ended(socket);
  });
}

/**
 * Chunks below this are written at once: request/response traffic pays no deferred write, and
 * a bulk stream's records (up to 16 KiB) cork the writes of their poll phase.
 */
const CORK_MIN_BYTES = 8 * 1024;

/** The relay each stream is part of (a stream is in at most one at a time). */
const relays = new WeakMap<Duplex, Relay>();

/** Payload bytes every relay of this process has read, both directions. */
let relayedTotal = 0;

/**
 * Payload bytes relayed by every `relay()` in this process since it started, both directions: a
 * signal of traffic that, unlike CPU time, garbage collection and timers never move.
 */
export function relayedBytes(): number {
  return relayedTotal;
}

class Relay {
  readonly tunnel: Duplex;
  readonly socket: Duplex;
  readonly options: RelayOptions;
  readonly resolve: (result: RelayResult) => void;
  sent = 0;
  received = 0;
  tunnelEnded = false;
  socketEnded = false;
  settled = false;

  constructor(tunnel: Duplex, socket: Duplex, options: RelayOptions, resolve: (result: RelayResult) => void) {
    this.tunnel = tunnel;
    this.socket = socket;
    this.options = options;
    this.resolve = resolve;
  }

  /** The other side of `side`. */
  peer(side: Duplex): Duplex {
    return side === this.tunnel ? this.socket : this.tunnel;
  }

  data(side: Duplex, chunk: Buffer): void {
    const { counters } = this.options;
    relayedTotal += chunk.length;
    if (side === this.tunnel) {
      this.received += chunk.length;
      if (counters) counters.bytesReceived += chunk.length;
      this.options.onTunnelData?.(chunk.length);
    } else {
      this.sent += chunk.length;
      if (counters) counters.bytesSent += chunk.length;
      this.options.onSocketData?.(chunk.length);
    }
    const peer = this.peer(side);
    // One TLS read yields several DATA chunks (a record is at most 16 KiB), each delivered in a
    // callback of its own: corked until the event loop's poll phase ends, they leave in one writev
    // instead of one write each.
    if (chunk.length >= CORK_MIN_BYTES && peer.writableCorked === 0) {
      peer.cork();
      setImmediate(uncork, peer);
    }
    if (!peer.write(chunk)) side.pause();
  }

  ended(side: Duplex): void {
    if (side === this.tunnel) this.tunnelEnded = true;
    else this.socketEnded = true;
    this.peer(side).end();
    if (this.tunnelEnded && this.socketEnded) this.finish();
  }

  closed(side: Duplex): void {
    if (this.tunnelEnded && this.socketEnded) return;
    this.finish(
      new Error(`${side === this.tunnel ? 'tunnel' : 'socket'} closed before both directions ended`),
    );
  }

  finish(error?: Error): void {
    if (this.settled) return;
    this.settled = true;
    const { tunnel, socket, sent, received } = this;
    if (error !== undefined) {
      tunnel.destroy();
      socket.destroy();
    }
    for (const side of [tunnel, socket]) {
      for (const [event, listener] of LISTENERS) side.off(event, listener);
      // Late errors after a clean finish must not become uncaught exceptions.
      side.on('error', ignore);
      relays.delete(side);
    }
    this.resolve(error === undefined ? { sent, received } : { sent, received, error });
  }
}

function onData(this: Duplex, chunk: Buffer): void {
  relays.get(this)?.data(this, chunk);
}

/** A side drained: the other side, paused for it, reads again. */
function onDrain(this: Duplex): void {
  relays.get(this)?.peer(this).resume();
}

function onEnd(this: Duplex): void {
  relays.get(this)?.ended(this);
}

function onError(this: Duplex, err: Error): void {
  relays.get(this)?.finish(err);
}

function onClose(this: Duplex): void {
  relays.get(this)?.closed(this);
}

function uncork(stream: Duplex): void {
  stream.uncork();
}

/** The listeners every relay puts on both its sides. */
const LISTENERS: readonly (readonly [string, Parameters<Duplex['on']>[1]])[] = [
  ['data', onData],
  ['drain', onDrain],
  ['end', onEnd],
  ['error', onError],
  ['close', onClose],
];

function ignore(): void {
  // Deliberately empty: see Relay.finish().
}
