/**
 * The state of one delta ADS stream: it is created when a stream opens and dies with it.
 *
 * Per type URL it keeps the subscription (wildcard or explicit names) and the version of every
 * resource the client holds (`known`), seeded from `initial_resource_versions` on (re)connect.
 * A response carries only resources whose current version differs from `known`, and removals
 * only for names the client holds that no longer exist. ACKs and NACKs are recorded; a NACK
 * never triggers a resend (the next content change will), so a rejecting client cannot cause a
 * push loop.
 */
import type { discovery, protobuf } from '@ambient-mesh/xds-types';
import type { ChangeSet, WdsResource, WdsTypeUrl } from '../wds/wds-index.ts';
import { TypeUrls } from '../wds/wds-index.ts';

export interface ResourceSource {
  resources(typeUrl: WdsTypeUrl): ReadonlyMap<string, WdsResource<unknown>>;
}

/** Encodes a resource as the `Any` value bytes of its type (callers may cache by resource object). */
export type ResourceEncoder = (typeUrl: WdsTypeUrl, resource: WdsResource<unknown>) => Uint8Array;

export interface TypeSyncStatus {
  readonly typeUrl: string;
  readonly wildcard: boolean;
  readonly subscribedNames: number;
  readonly resourcesKnown: number;
  readonly lastNonceSent: string;
  readonly lastNonceAcked: string;
  readonly lastNack: string | undefined;
  readonly nacks: number;
}

export interface DeltaStreamOptions {
  readonly source: ResourceSource;
  readonly encode: ResourceEncoder;
  readonly send: (response: discovery.DeltaDiscoveryResponseInit) => void;
  readonly nextNonce: () => string;
  readonly onNack?: (typeUrl: string, nonce: string, message: string) => void;
  readonly onUnknownType?: (typeUrl: string) => void;
}

const SUPPORTED = new Set<string>([TypeUrls.ADDRESS, TypeUrls.AUTHORIZATION]);

class TypeState {
  wildcard = false;
  readonly names = new Set<string>();
  /** name → version the client holds ('' when it told us it has the name at an unknown version). */
  readonly known = new Map<string, string>();
  lastNonceSent = '';
  lastNonceAcked = '';
  lastNack: string | undefined;
  nacks = 0;

  subscribed(name: string): boolean {
    return this.wildcard || this.names.has(name);
  }
}

export class DeltaStream {
  readonly #opts: DeltaStreamOptions;
  readonly #types = new Map<WdsTypeUrl, TypeState>();

  constructor(opts: DeltaStreamOptions) {
    this.#opts = opts;
  }

  /** Handles one request from the client; may send one response. */
  handleRequest(req: discovery.DeltaDiscoveryRequest): void {
    const typeUrl = req.typeUrl;
    if (!SUPPORTED.has(typeUrl)) {
      this.#opts.onUnknownType?.(typeUrl);
      return;
    }
    const t = typeUrl as WdsTypeUrl;
    let state = this.#types.get(t);
    if (req.responseNonce !== '' && state !== undefined) {
      // ACK or NACK of an earlier response; it may also carry subscription changes.
      if (req.errorDetail !== null && (req.errorDetail.code !== 0 || req.errorDetail.message !== '')) {
        state.lastNack = req.errorDetail.message;
        state.nacks++;
        this.#opts.onNack?.(t, req.responseNonce, req.errorDetail.message);
      } else if (req.responseNonce === state.lastNonceSent) {
        state.lastNonceAcked = req.responseNonce;
        state.lastNack = undefined;
      }
      if (req.resourceNamesSubscribe.length === 0 && req.resourceNamesUnsubscribe.length === 0) return;
    }
    const fresh = state === undefined;
    if (state === undefined) {
      state = new TypeState();
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
      this.#respond(t, state, undefined);
    } else if (added.length > 0) {
      // A newly subscribed name is sent even if the client claims to know it.
      for (const n of added) state.known.delete(n);
      this.#respond(t, state, new Set(added));
    }
  }

  /** Sends what changed to this client; returns the number of resources and removals sent. */
  push(changes: ChangeSet): number {
    let count = 0;
    for (const [t, state] of this.#types) {
      const names = t === TypeUrls.ADDRESS ? changes.addresses : changes.authorizations;
      if (names.size > 0) count += this.#respond(t, state, names);
    }
    return count;
  }

  status(): TypeSyncStatus[] {
    return [...this.#types].map(([typeUrl, s]) => ({
      typeUrl,
      wildcard: s.wildcard,
      subscribedNames: s.names.size,
      resourcesKnown: s.known.size,
      lastNonceSent: s.lastNonceSent,
      lastNonceAcked: s.lastNonceAcked,
      lastNack: s.lastNack,
      nacks: s.nacks,
    }));
  }

  /** Builds and sends the response for `names` (all subscribed names when undefined). */
  #respond(t: WdsTypeUrl, state: TypeState, names: ReadonlySet<string> | undefined): number {
    const current = this.#opts.source.resources(t);
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
      const resource: protobuf.AnyInit = { type_url: t, value: this.#opts.encode(t, r) };
      resources.push({ name, version: r.version, resource });
      state.known.set(name, r.version);
    };
    if (names !== undefined) {
      for (const n of names) consider(n);
    } else {
      const candidates = state.wildcard ? current.keys() : state.names.values();
      for (const n of candidates) consider(n);
      for (const n of [...state.known.keys()]) if (!current.has(n)) consider(n);
    }
    // The first response of a type is always sent (even empty) so the client can become ready.
    const first = state.lastNonceSent === '';
    if (resources.length === 0 && removed.length === 0 && !first) return 0;
    const nonce = this.#opts.nextNonce();
    state.lastNonceSent = nonce;
    this.#opts.send({ typeUrl: t, nonce, resources, removedResources: removed });
    return resources.length + removed.length;
  }
}
