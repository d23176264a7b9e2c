/**
 * The state of one state-of-the-world ADS stream: created when a stream is accepted and dropped
 * with it.
 *
 * Per type URL it keeps the subscription (`resource_names`; empty on the first request means
 * wildcard) and what was sent last. Every response of a type carries every subscribed resource
 * that exists, each wrapped in an `envoy.service.discovery.v3.Resource` so it keeps its name and
 * version. A request echoing the last nonce without `error_detail` is an ACK (its `version_info`
 * is recorded), with `error_detail` a NACK (recorded, never resent); a request with an older
 * nonce is stale and ignored. A change of `resource_names` is answered with a new response.
 */
import type { discovery, protobuf } from '@ambient-mesh/xds-types';
import { isNack } from '../nack.ts';
import type { ResourceChanges } from './push-queue.ts';
import type { StreamEvents, StreamServices } from './resource-source.ts';
import { TypeState, type TypeSyncStatus } from './sync-status.ts';

/** The type URL of the wrapper that carries a resource's name and version in SotW. */
export const RESOURCE_WRAPPER_TYPE_URL = 'type.googleapis.com/envoy.service.discovery.v3.Resource';

/** Writes one response; returns false when the transport wants the writer to wait for `drain`. */
export type SotwSend = (response: discovery.DiscoveryResponseInit) => boolean;

export class SotwStream {
  readonly #services: StreamServices;
  readonly #send: SotwSend;
  readonly #events: StreamEvents;
  readonly #types = new Map<string, TypeState>();
  /** Generated types: the nonce of the last response per type URL (its ACK is not a new request). */
  readonly #generated = new Map<string, string>();
  #blocked = false;

  constructor(services: StreamServices, send: SotwSend, events: StreamEvents = {}) {
    this.#services = services;
    this.#send = send;
    this.#events = events;
  }

  get backpressured(): boolean {
    return this.#blocked;
  }

  handleRequest(req: discovery.DiscoveryRequest): void {
    const t = req.typeUrl;
    if (!this.#services.serves(t)) {
      if (!this.#answerGenerated(req)) this.#events.unknownType?.(t);
      return;
    }
    let state = this.#types.get(t);
    if (state !== undefined && req.responseNonce !== '') {
      if (req.responseNonce !== state.lastNonceSent) return; // stale: superseded by a later response
      if (req.errorDetail !== null && isNack(req.errorDetail)) {
        state.recordNack(req.responseNonce, req.errorDetail.message);
        this.#events.nack?.(t, req.responseNonce, req.errorDetail.message);
        return;
      }
      state.recordAck(req.responseNonce, req.versionInfo);
      if (state.wildcard || sameNames(state.names, req.resourceNames)) return;
      setNames(state, req.resourceNames);
      this.#respond(state);
      return;
    }
    if (state === undefined) {
      state = new TypeState(t);
      this.#types.set(t, state);
    }
    setNames(state, req.resourceNames);
    this.#respond(state);
  }

  /** Sends the full subscribed set of every type with a subscribed change; returns resources sent. */
  push(changes: ResourceChanges): number {
    let count = 0;
    for (const [t, state] of this.#types) {
      const names = changes.get(t);
      if (names === undefined) continue;
      let relevant = false;
      for (const n of names) {
        if (state.subscribed(n) || state.known.has(n)) {
          relevant = true;
          break;
        }
      }
      if (relevant) count += this.#respond(state);
    }
    return count;
  }

  drained(): number {
    this.#blocked = false;
    let count = 0;
    for (const state of this.#types.values()) {
      if (state.pending === undefined) continue;
      state.pending = undefined;
      count += this.#respond(state);
    }
    return count;
  }

  status(): TypeSyncStatus[] {
    return [...this.#types.values()].map(s => s.status());
  }

  /** True when a generated type handled the request (answered, or recognised as its ACK/NACK). */
  #answerGenerated(req: discovery.DiscoveryRequest): boolean {
    const t = req.typeUrl;
    const lastNonce = this.#generated.get(t);
    if (lastNonce !== undefined && req.responseNonce === lastNonce) return true;
    const generated = this.#services.generate?.(t, req.resourceNames);
    if (generated === undefined) return false;
    const nonce = this.#services.nextNonce();
    this.#generated.set(t, nonce);
    const response: discovery.DiscoveryResponseInit = {
      typeUrl: t,
      versionInfo: this.#services.version(),
      nonce,
      resources: generated.resources.map(r => r.resource),
      controlPlane: generated.controlPlane ?? null,
    };
    if (!this.#send(response)) this.#blocked = true;
    return true;
  }

  #respond(state: TypeState): number {
    if (this.#blocked && state.lastNonceSent !== '') {
      state.addPending('all');
      return 0;
    }
    const t = state.typeUrl;
    const current = this.#services.source.resources(t);
    const resources: protobuf.AnyInit[] = [];
    state.known.clear();
    const add = (name: string): void => {
      const r = current.get(name);
      if (r === undefined) return;
      resources.push({
        type_url: RESOURCE_WRAPPER_TYPE_URL,
        value: this.#services.encodeWrapped(t, name, r),
      });
      state.known.set(name, r.version);
    };
    if (state.wildcard) for (const n of current.keys()) add(n);
    else for (const n of state.names) add(n);
    const nonce = this.#services.nextNonce();
    const version = this.#services.version();
    state.lastNonceSent = nonce;
    state.lastVersionSent = version;
    state.lastSentAtMs = this.#services.now?.() ?? Date.now();
    if (!this.#send({ typeUrl: t, versionInfo: version, nonce, resources })) this.#blocked = true;
    return resources.length;
  }
}

function sameNames(current: ReadonlySet<string>, requested: readonly string[]): boolean {
  if (requested.length !== current.size) return false;
  return requested.every(n => current.has(n));
}

function setNames(state: TypeState, names: readonly string[]): void {
  state.wildcard = names.length === 0 || names.includes('*');
  state.names.clear();
  for (const n of names) if (n !== '*') state.names.add(n);
}
