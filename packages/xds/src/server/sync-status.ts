/**
 * What a server knows about each subscribed type of one stream, and its read-only view: the
 * subscription, what was sent last (nonce, version), what the client ACKed and what it NACKed.
 * The stream objects own the `TypeState`s; `status()` copies them out for `syncStatus()`.
 */

/** `synced`: the last response was ACKed; `nacked`: it was rejected; `stale`: no answer yet. */
export type SyncState = 'synced' | 'nacked' | 'stale' | 'not-sent';

export interface TypeSyncStatus {
  readonly typeUrl: string;
  readonly wildcard: boolean;
  /** Explicitly subscribed names. */
  readonly subscribedNames: number;
  /** Resources the client holds as far as the server knows (delta) or was last sent (SotW). */
  readonly resourcesKnown: number;
  readonly lastNonceSent: string;
  readonly lastVersionSent: string;
  readonly lastNonceAcked: string;
  readonly lastVersionAcked: string;
  /** When the last response was sent (ms since the epoch); 0 before the first. */
  readonly lastSentAtMs: number;
  /** The message of the last NACK, until a later ACK. */
  readonly lastNack: string | undefined;
  readonly lastNackNonce: string;
  readonly nacks: number;
  readonly state: SyncState;
}

export type AdsProtocol = 'delta' | 'sotw';

export interface ConnectionSyncStatus<C = unknown> {
  readonly connectionId: string;
  readonly protocol: AdsProtocol;
  readonly nodeId: string;
  /** What the authentication hook returned for this stream. */
  readonly client: C;
  readonly connectedAt: string;
  /** True while the stream's transport refuses writes and pushes are being coalesced. */
  readonly backpressured: boolean;
  readonly types: readonly TypeSyncStatus[];
}

/** The per-type state of one stream. */
export class TypeState {
  wildcard = false;
  readonly names = new Set<string>();
  /** Delta: name → version the client holds. SotW: name → version last sent. */
  readonly known = new Map<string, string>();
  lastNonceSent = '';
  lastVersionSent = '';
  lastNonceAcked = '';
  lastVersionAcked = '';
  lastSentAtMs = 0;
  lastNack: string | undefined;
  lastNackNonce = '';
  nacks = 0;
  /** Names changed while the stream was backpressured; `all` = resend the whole subscription. */
  pending: Set<string> | 'all' | undefined;

  readonly typeUrl: string;

  constructor(typeUrl: string) {
    this.typeUrl = typeUrl;
  }

  subscribed(name: string): boolean {
    return this.wildcard || this.names.has(name);
  }

  recordAck(nonce: string, version: string): void {
    if (nonce !== this.lastNonceSent) return;
    this.lastNonceAcked = nonce;
    this.lastVersionAcked = version;
    this.lastNack = undefined;
  }

  recordNack(nonce: string, message: string): void {
    this.lastNack = message;
    this.lastNackNonce = nonce;
    this.nacks++;
  }

  addPending(names: ReadonlySet<string> | 'all'): void {
    if (names === 'all' || this.pending === 'all') {
      this.pending = 'all';
      return;
    }
    this.pending ??= new Set();
    for (const n of names) this.pending.add(n);
  }

  status(): TypeSyncStatus {
    let state: SyncState;
    if (this.lastNonceSent === '') state = 'not-sent';
    else if (this.lastNonceAcked === this.lastNonceSent) state = 'synced';
    else if (this.lastNack !== undefined && this.lastNackNonce === this.lastNonceSent) state = 'nacked';
    else state = 'stale';
    return {
      typeUrl: this.typeUrl,
      wildcard: this.wildcard,
      subscribedNames: this.names.size,
      resourcesKnown: this.known.size,
      lastNonceSent: this.lastNonceSent,
      lastVersionSent: this.lastVersionSent,
      lastNonceAcked: this.lastNonceAcked,
      lastVersionAcked: this.lastVersionAcked,
      lastSentAtMs: this.lastSentAtMs,
      lastNack: this.lastNack,
      lastNackNonce: this.lastNackNonce,
      nacks: this.nacks,
      state,
    };
  }
}
