/**
 * The state of one delta ADS stream: created when a stream is accepted and dropped with it.
 *
 * Per type URL it keeps the subscription (wildcard or explicit names) and the version of every
 * resource the client holds (`known`), seeded from `initial_resource_versions` on (re)connect.
 * A response carries only resources whose current version differs from `known`, and removals
 * only for names the client holds that no longer exist. ACKs and NACKs are recorded; a NACK
 * never triggers a resend (the next content change will), so a rejecting client cannot cause a
 * push loop. While the transport refuses writes, changes are coalesced and sent on `drained()`.
 */
import type { discovery, protobuf } from '@ambient-mesh/xds-types';
import { isNack } from '../nack.ts';
import type { ResourceChanges } from './push-queue.ts';
import type { StreamEvents, StreamServices } from './resource-source.ts';
import { TypeState, type TypeSyncStatus } from './sync-status.ts';

/** Writes one response; returns false when the transport wants the writer to wait for `drain`. */
export type DeltaSend = (response: discovery.DeltaDiscoveryResponseInit) => boolean;

export class DeltaStream {
  readonly #services: StreamServices;
  readonly #send: DeltaSend;
  readonly #events: StreamEvents;
  readonly #types = new Map<string, TypeState>();
  /** Generated types: the nonce of the last response per type URL (its ACK is not a new request). */
  readonly #generated = new Map<string, string>();
  #blocked = false;

  constructor(services: StreamServices, send: DeltaSend, events: StreamEvents = {}) {
    this.#services = services;
    this.#send = send;
    this.#events = events;
  }

  get backpressured(): boolean {
    return this.#blocked;
  }

  /** Handles one request from the client; may send one response. */
  handleRequest(req: discovery.DeltaDiscoveryRequest): void {
    const t = req.typeUrl;
    if (!this.#services.serves(t)) {
      if (!this.#answerGenerated(req)) this.#events.unknownType?.(t);
      return;
    }
    let state = this.#types.get(t);
    if (req.responseNonce !== '' && state !== undefined) {
      // ACK or NACK of an earlier response; it may also carry subscription changes.
      if (req.errorDetail !== null && isNack(req.errorDetail)) {
        state.recordNack(req.responseNonce, req.errorDetail.message);
        this.#events.nack?.(t, req.responseNonce, req.errorDetail.message);
      } else if (req.responseNonce === state.lastNonceSent) {
        state.recordAck(req.responseNonce, state.lastVersionSent);
      }
      if (req.resourceNamesSubscribe.length === 0 && req.resourceNamesUnsubscribe.length === 0) return;
    }
    const fresh = state === undefined;
    if (state === undefined) {
      state = new TypeState(t);
      this.#types.set(t, state);
      for (const [name, version] of Object.entries(req.initialResourceVersions))
        state.known.set(name, version);
      const sub = req.resourceNamesSubscribe;
      const unsub = req.resourceNamesUnsubscribe;
      // Empty lists on the first request mean wildcard; subscribe ["*"] + unsubscribe ["*"] means nothing.
      state.wildcard =
        (sub.length === 0 && unsub.length === 0) || (sub.includes('*') && !unsub.includes('*'));
    }
    const added: string[] = [];
    for (const name of req.resourceNamesSubscribe) {
      if (name === '*') {
        if (!fresh) state.wildcard = true;
        continue;
      }
      if (!state.names.has(name)) {
        state.names.add(name);
        added.push(name);
      }
    }
    for (const name of req.resourceNamesUnsubscribe) {
      if (name === '*') {
        state.wildcard = false;
        continue;
      }
      state.names.delete(name);
      if (!state.wildcard) state.known.delete(name);
    }
    if (fresh) {
      this.#respond(state, 'all');
    } else if (added.length > 0) {
      // A newly subscribed name is sent even if the client claims to know it.
      for (const n of added) state.known.delete(n);
      this.#respond(state, new Set(added));
    }
  }

  /** Sends what changed to this client; returns the number of resources and removals sent. */
  push(changes: ResourceChanges): number {
    let count = 0;
    for (const [t, state] of this.#types) {
      const names = changes.get(t);
      if (names !== undefined && names.size > 0) count += this.#respond(state, names);
    }
    return count;
  }

  /** The transport accepts writes again: sends what was coalesced meanwhile. */
  drained(): number {
    this.#blocked = false;
    let count = 0;
    for (const state of this.#types.values()) {
      const pending = state.pending;
      if (pending === undefined) continue;
      state.pending = undefined;
      count += this.#respond(state, pending);
    }
    return count;
  }

  status(): TypeSyncStatus[] {
    return [...this.#types.values()].map(s => s.status());
  }

  /** True when a generated type handled the request (answered, or recognised as its ACK/NACK). */
  #answerGenerated(req: discovery.DeltaDiscoveryRequest): boolean {
    const t = req.typeUrl;
    const lastNonce = this.#generated.get(t);
    if (lastNonce !== undefined && req.responseNonce === lastNonce) return true;
    const generated = this.#services.generate?.(t, req.resourceNamesSubscribe);
    if (generated === undefined) return false;
    const nonce = this.#services.nextNonce();
    this.#generated.set(t, nonce);
    const accepted = this.#send({
      typeUrl: t,
      nonce,
      systemVersionInfo: this.#services.version(),
      resources: generated.resources.map(r => ({ name: r.name, resource: r.resource })),
      controlPlane: generated.controlPlane ?? null,
    });
    if (!accepted) this.#blocked = true;
    return true;
  }

  /** Builds and sends the response for `names` (`all`: every subscribed and known name). */
  #respond(state: TypeState, names: ReadonlySet<string> | 'all'): number {
    // The first response of a type is always sent (even empty) so the client can become ready.
    const first = state.lastNonceSent === '';
    if (this.#blocked && !first) {
      state.addPending(names);
      return 0;
    }
    const t = state.typeUrl;
    const current = this.#services.source.resources(t);
    const resources: discovery.ResourceInit[] = [];
    const removed: string[] = [];
    const consider = (name: string): void => {
      if (!state.subscribed(name)) return;
      const r = current.get(name);
      if (r === undefined) {
        if (state.known.delete(name)) removed.push(name);
        return;
      }
      if (state.known.get(name) === r.version) return;
      const resource: protobuf.AnyInit = { type_url: t, value: this.#services.encode(t, r) };
      resources.push({ name, version: r.version, resource });
      state.known.set(name, r.version);
    };
    if (names !== 'all') {
      for (const n of names) consider(n);
    } else {
      const candidates = state.wildcard ? current.keys() : state.names.values();
      for (const n of candidates) consider(n);
      for (const n of [...state.known.keys()]) if (!current.has(n)) consider(n);
    }
    if (resources.length === 0 && removed.length === 0 && !first) return 0;
    const nonce = this.#services.nextNonce();
    const version = this.#services.version();
    state.lastNonceSent = nonce;
    state.lastVersionSent = version;
    state.lastSentAtMs = this.#services.now?.() ?? Date.now();
    const accepted = this.#send({
      typeUrl: t,
      nonce,
      systemVersionInfo: version,
      resources,
      removedResources: removed,
    });
    if (!accepted) this.#blocked = true;
    return resources.length + removed.length;
  }
}
