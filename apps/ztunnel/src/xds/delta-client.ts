/**
 * The delta ADS client ztunnel uses to receive WDS from istiod (§3.1–3.2).
 *
 * Ownership: `DeltaXdsClient` is long-lived and holds the subscriptions (its handlers), the names
 * of every accepted resource per type (sent as `initial_resource_versions` on reconnect), and the
 * backoff. Each stream gets a fresh `StreamState` holding what dies with the stream: the stream
 * itself and whether a response has arrived yet.
 *
 * Handlers return per-resource rejections; the client never throws across the stream boundary.
 * Any rejection turns the reply into a NACK whose `error_detail.message` joins them with "; ",
 * while the resources that were valid are still applied (the last good version of a rejected one
 * stays in use).
 */
import type { discovery, protobuf } from '@ambient-mesh/xds-types';
import { errorMessage } from '@ambient-mesh/errors';
import type { Logger } from '@ambient-mesh/runtime';
import { Backoff, systemTimers } from '@ambient-mesh/runtime';
import type { BackoffOptions, TimerHandle, Timers } from '@ambient-mesh/runtime';

export interface RejectedResource {
  readonly name: string;
  readonly reason: string;
}

export interface IncomingResource {
  readonly name: string;
  readonly version: string;
  readonly resource: protobuf.Any | null;
}

/** Applies one response's resources of one type; returns the ones it rejected. */
export interface XdsResourceHandler {
  readonly typeUrl: string;
  handle(resources: readonly IncomingResource[], removed: readonly string[]): readonly RejectedResource[];
}

/** The slice of a grpc-js `ClientDuplexStream` the client uses. */
export interface DeltaStream {
  write(request: discovery.DeltaDiscoveryRequestInit): boolean;
  on(event: 'data', listener: (response: discovery.DeltaDiscoveryResponse) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: 'end' | 'close', listener: () => void): this;
  cancel(): void;
}

export type DeltaStreamFactory = () => DeltaStream;

export interface XdsClientObserver {
  /** A response arrived: one call per response, with the encoded size of its resources. */
  message?(typeUrl: string, bytes: number): void;
  /** A stream ended; `reason` is a short label (`error`, `end`). */
  terminated?(reason: string): void;
  /** Every subscribed type has had its first response handled. */
  synced?(): void;
}

export interface DeltaXdsClientOptions {
  readonly connect: DeltaStreamFactory;
  readonly node: NonNullable<discovery.DeltaDiscoveryRequestInit['node']>;
  readonly handlers: readonly XdsResourceHandler[];
  readonly logger: Logger;
  readonly timers?: Timers;
  readonly backoff?: BackoffOptions;
  readonly observer?: XdsClientObserver;
}

/** google.rpc.Code INVALID_ARGUMENT, as upstream puts in `error_detail.code` on a NACK. */
const NACK_CODE = 3;

interface StreamState {
  readonly stream: DeltaStream;
  receivedAny: boolean;
  ended: boolean;
}

export class DeltaXdsClient {
  readonly #options: DeltaXdsClientOptions;
  readonly #timers: Timers;
  readonly #backoff: Backoff;
  readonly #handlers = new Map<string, XdsResourceHandler>();
  /** type URL → names of resources currently accepted. Survives reconnects. */
  readonly #known = new Map<string, Set<string>>();
  readonly #firstHandled = new Set<string>();
  #current: StreamState | undefined;
  #retry: TimerHandle | undefined;
  #stopped = true;
  #synced = false;

  constructor(options: DeltaXdsClientOptions) {
    this.#options = options;
    this.#timers = options.timers ?? systemTimers;
    this.#backoff = new Backoff(options.backoff);
    for (const handler of options.handlers) {
      this.#handlers.set(handler.typeUrl, handler);
      this.#known.set(handler.typeUrl, new Set());
    }
  }

  /** True once the first response of every subscribed type has been handled (ACK or NACK). */
  get synced(): boolean {
    return this.#synced;
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#open();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#retry !== undefined) this.#timers.clearTimeout(this.#retry);
    this.#retry = undefined;
    const state = this.#current;
    this.#current = undefined;
    if (state !== undefined) {
      state.ended = true;
      state.stream.cancel();
    }
  }

  #open(): void {
    let stream: DeltaStream;
    try {
      stream = this.#options.connect();
    } catch (err) {
      this.#options.logger.warn({ error: errorMessage(err) }, 'xds stream could not be opened');
      this.#scheduleReconnect('connect');
      return;
    }
    const state: StreamState = { stream, receivedAny: false, ended: false };
    this.#current = state;
    stream.on('data', response => {
      this.#onResponse(state, response);
    });
    stream.on('error', err => {
      this.#onEnd(state, 'error', err);
    });
    stream.on('end', () => {
      this.#onEnd(state, 'end');
    });
    stream.on('close', () => {
      this.#onEnd(state, 'close');
    });
    for (const typeUrl of this.#handlers.keys()) {
      const known = this.#known.get(typeUrl) ?? new Set<string>();
      const initialResourceVersions = Object.fromEntries([...known].map(name => [name, '']));
      this.#send(state, {
        node: this.#options.node,
        typeUrl,
        resourceNamesSubscribe: [],
        resourceNamesUnsubscribe: [],
        initialResourceVersions,
      });
    }
  }

  #send(state: StreamState, request: discovery.DeltaDiscoveryRequestInit): void {
    if (state.ended) return;
    try {
      state.stream.write(request);
    } catch (err) {
      this.#onEnd(state, 'error', err);
    }
  }

  #onResponse(state: StreamState, response: discovery.DeltaDiscoveryResponse): void {
    if (state.ended) return;
    if (!state.receivedAny) {
      state.receivedAny = true;
      this.#backoff.reset();
    }
    const { typeUrl, nonce } = response;
    this.#options.observer?.message?.(
      typeUrl,
      response.resources.reduce((sum, r) => sum + (r.resource?.value.length ?? 0), 0),
    );
    const handler = this.#handlers.get(typeUrl);
    let rejected: readonly RejectedResource[];
    if (handler === undefined) {
      rejected = [{ name: '*', reason: `unsubscribed type ${typeUrl}` }];
    } else {
      try {
        rejected = handler.handle(
          response.resources.map(r => ({ name: r.name, version: r.version, resource: r.resource })),
          response.removedResources,
        );
      } catch (err) {
        rejected = [{ name: '*', reason: `BUG: handler threw: ${errorMessage(err)}` }];
      }
      this.#track(typeUrl, response, rejected);
    }
    if (rejected.length === 0) {
      this.#options.logger.debug({ typeUrl, nonce, resources: response.resources.length }, 'xds ACK');
      this.#send(state, { typeUrl, responseNonce: nonce });
    } else {
      const message = rejected.map(r => `${r.name}: ${r.reason}`).join('; ');
      this.#options.logger.warn({ typeUrl, nonce, error: message }, 'xds NACK');
      this.#send(state, { typeUrl, responseNonce: nonce, errorDetail: { code: NACK_CODE, message } });
    }
    if (handler !== undefined && !this.#firstHandled.has(typeUrl)) {
      this.#firstHandled.add(typeUrl);
      if (!this.#synced && this.#firstHandled.size === this.#handlers.size) {
        this.#synced = true;
        this.#options.logger.info('xds synced: first response of every type handled');
        this.#options.observer?.synced?.();
      }
    }
  }

  #track(
    typeUrl: string,
    response: discovery.DeltaDiscoveryResponse,
    rejected: readonly RejectedResource[],
  ): void {
    const known = this.#known.get(typeUrl);
    if (known === undefined) return;
    const rejectedNames = new Set(rejected.map(r => r.name));
    for (const resource of response.resources)
      if (!rejectedNames.has(resource.name)) known.add(resource.name);
    for (const name of response.removedResources) known.delete(name);
  }

  #onEnd(state: StreamState, reason: string, err?: unknown): void {
    if (state.ended) return;
    state.ended = true;
    if (this.#current === state) this.#current = undefined;
    state.stream.cancel();
    this.#options.observer?.terminated?.(reason);
    this.#options.logger.warn(
      err === undefined ? { reason } : { reason, error: errorMessage(err) },
      'xds stream ended; reconnecting',
    );
    this.#scheduleReconnect(reason);
  }

  #scheduleReconnect(reason: string): void {
    if (this.#stopped) return;
    const delay = this.#backoff.nextDelayMs();
    this.#options.logger.debug({ reason, delayMs: delay }, 'xds reconnect scheduled');
    const handle = this.#timers.setTimeout(() => {
      this.#retry = undefined;
      if (!this.#stopped) this.#open();
    }, delay);
    handle.unref?.();
    this.#retry = handle;
  }
}
