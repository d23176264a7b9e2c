/**
 * The xDS client: one long-lived subscriber over delta or state-of-the-world ADS.
 *
 * Ownership: `XdsClient` is long-lived and holds the handlers (one per type URL), the name and
 * version of every accepted resource per type (announced in `initial_resource_versions`, or as
 * the SotW `version_info`, on reconnect) and the backoff. Each stream gets a fresh `StreamState`
 * with what dies with the stream: the stream itself and whether a response arrived on it.
 *
 * Handlers return per-resource rejections; the client never throws across the stream boundary.
 * Any rejection turns the reply into a NACK whose `error_detail.message` joins them with "; ",
 * while the valid resources are still applied and a rejected one keeps its last good version.
 */
import { errorMessage } from '@ambient-mesh/errors';
import { codecFor, type core, type discovery, type protobuf } from '@ambient-mesh/xds-types';
import { XdsError, XdsErrorCode } from '../errors.ts';
import { NACK_CODE, nackMessage, type Rejection } from '../nack.ts';
import { RESOURCE_WRAPPER_TYPE_URL } from '../server/sotw-stream.ts';
import {
  Backoff,
  DEFAULT_CLIENT_BACKOFF,
  systemTimers,
  type BackoffOptions,
  type TimerHandle,
  type Timers,
} from '../timers.ts';
import type { IncomingResource, ResourceHandler } from './handlers.ts';
import type { AdsStream, DeltaStreamFactory, SotwStreamFactory } from './transport.ts';

/** The structured logger the client writes to (pino's `Logger` fits). */
export interface XdsLogger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

/** What one response carried and how it was answered. */
export interface ResponseRecord {
  readonly typeUrl: string;
  readonly nonce: string;
  /** `system_version_info` (delta) or `version_info` (SotW). */
  readonly version: string;
  /** Names of the resources added or updated by the response (SotW: every resource in it). */
  readonly resourceNames: readonly string[];
  readonly removedResources: readonly string[];
  /** The NACK message sent back; undefined when the response was ACKed. */
  readonly nack: string | undefined;
}

export interface XdsClientObserver {
  /** A response arrived: one call per response, with the encoded size of its resources. */
  message?(typeUrl: string, bytes: number): void;
  /** A response was handled and answered. */
  response?(record: ResponseRecord): void;
  /** A stream ended; `reason` is a short label (`error`, `end`, `close`, `connect`). */
  terminated?(reason: string, error?: unknown): void;
  /** Every subscribed type has had its first response handled. */
  synced?(): void;
}

/** Resources known per type URL: name → version. */
export type KnownResources = ReadonlyMap<string, ReadonlyMap<string, string>>;

interface CommonOptions {
  readonly node: core.NodeInit;
  readonly handlers: readonly ResourceHandler[];
  readonly logger?: XdsLogger;
  readonly timers?: Timers;
  readonly backoff?: BackoffOptions;
  readonly observer?: XdsClientObserver;
  /** Open a new stream when one ends (default true). */
  readonly reconnect?: boolean;
  /**
   * Versions announced in `initial_resource_versions`: `empty` sends "" for every held name,
   * as ztunnel does (default); `recorded` sends the version each resource arrived with.
   */
  readonly resumeVersions?: 'empty' | 'recorded';
  /** Resources held before the first stream (from an earlier client), announced on connect. */
  readonly initialResources?: KnownResources;
}

export type XdsClientOptions = CommonOptions &
  (
    | { readonly protocol?: 'delta'; readonly connect: DeltaStreamFactory }
    | { readonly protocol: 'sotw'; readonly connect: SotwStreamFactory }
  );

type AnyStream = AdsStream<never, never> & {
  write(request: discovery.DeltaDiscoveryRequestInit | discovery.DiscoveryRequestInit): boolean;
};

type Response = discovery.DeltaDiscoveryResponse | discovery.DiscoveryResponse;

interface StreamState {
  readonly stream: AnyStream;
  receivedAny: boolean;
  ended: boolean;
}

const silent: XdsLogger = { debug: () => undefined, info: () => undefined, warn: () => undefined };

export class XdsClient {
  readonly #options: XdsClientOptions;
  readonly #protocol: 'delta' | 'sotw';
  readonly #timers: Timers;
  readonly #backoff: Backoff;
  readonly #log: XdsLogger;
  readonly #handlers = new Map<string, ResourceHandler>();
  /** type URL → accepted resources (name → version). Survives reconnects. */
  readonly #known = new Map<string, Map<string, string>>();
  /** SotW: type URL → `version_info` of the last accepted response. */
  readonly #acceptedVersion = new Map<string, string>();
  readonly #firstHandled = new Set<string>();
  #current: StreamState | undefined;
  /** A handler's asynchronous `handle` is running: later responses wait here, in order. */
  #busy = false;
  readonly #backlog: { readonly state: StreamState; readonly response: Response }[] = [];
  #retry: TimerHandle | undefined;
  #stopped = true;
  #synced = false;

  constructor(options: XdsClientOptions) {
    if (options.handlers.length === 0) {
      throw new XdsError(XdsErrorCode.InvalidOptions, 'an xDS client needs at least one handler');
    }
    this.#options = options;
    this.#protocol = options.protocol ?? 'delta';
    this.#timers = options.timers ?? systemTimers;
    this.#backoff = new Backoff({ ...DEFAULT_CLIENT_BACKOFF, ...options.backoff });
    this.#log = options.logger ?? silent;
    for (const handler of options.handlers) {
      if (this.#handlers.has(handler.typeUrl)) {
        throw new XdsError(XdsErrorCode.DuplicateHandler, `two handlers for ${handler.typeUrl}`);
      }
      this.#handlers.set(handler.typeUrl, handler);
      this.#known.set(handler.typeUrl, new Map(options.initialResources?.get(handler.typeUrl)));
    }
  }

  get protocol(): 'delta' | 'sotw' {
    return this.#protocol;
  }

  /** True once the first response of every subscribed type has been handled (ACK or NACK). */
  get synced(): boolean {
    return this.#synced;
  }

  /** The accepted resources of every type (name → version); a copy. */
  known(): KnownResources {
    return new Map([...this.#known].map(([t, m]) => [t, new Map(m)]));
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
    let stream: AnyStream;
    try {
      stream = this.#options.connect() as unknown as AnyStream;
    } catch (err) {
      this.#log.warn({ error: errorMessage(err) }, 'xds stream could not be opened');
      this.#options.observer?.terminated?.('connect', err);
      this.#scheduleReconnect('connect');
      return;
    }
    const state: StreamState = { stream, receivedAny: false, ended: false };
    this.#current = state;
    const s = stream as unknown as AdsStream<
      never,
      discovery.DeltaDiscoveryResponse & discovery.DiscoveryResponse
    >;
    s.on('data', response => {
      this.#onResponse(state, response);
    });
    s.on('error', err => {
      this.#onEnd(state, 'error', err);
    });
    s.on('end', () => {
      this.#onEnd(state, 'end');
    });
    s.on('close', () => {
      this.#onEnd(state, 'close');
    });
    for (const [typeUrl, handler] of this.#handlers) {
      const names = handler.resourceNames ?? [];
      if (this.#protocol === 'delta') {
        this.#send(state, {
          node: this.#options.node,
          typeUrl,
          resourceNamesSubscribe: names,
          resourceNamesUnsubscribe: [],
          initialResourceVersions: this.#initialVersions(typeUrl),
        });
      } else {
        this.#send(state, {
          node: this.#options.node,
          typeUrl,
          resourceNames: names,
          versionInfo: this.#acceptedVersion.get(typeUrl) ?? '',
        });
      }
    }
  }

  #initialVersions(typeUrl: string): Record<string, string> {
    const recorded = this.#options.resumeVersions === 'recorded';
    const out: Record<string, string> = {};
    for (const [name, version] of this.#known.get(typeUrl) ?? []) out[name] = recorded ? version : '';
    return out;
  }

  #send(
    state: StreamState,
    request: discovery.DeltaDiscoveryRequestInit | discovery.DiscoveryRequestInit,
  ): void {
    if (state.ended) return;
    try {
      state.stream.write(request);
    } catch (err) {
      this.#onEnd(state, 'error', err);
    }
  }

  /**
   * Responses are handled one at a time, in arrival order: while a handler's asynchronous
   * `handle` runs (its ACK or NACK waits for it), later responses are queued.
   */
  #onResponse(state: StreamState, response: Response): void {
    if (this.#busy) {
      this.#backlog.push({ state, response });
      return;
    }
    const pending = this.#handleResponse(state, response);
    if (pending !== undefined) this.#drainAfter(pending);
  }

  #drainAfter(pending: Promise<void>): void {
    this.#busy = true;
    void pending.then(() => {
      this.#busy = false;
      for (let next = this.#backlog.shift(); next !== undefined; next = this.#backlog.shift()) {
        const more = this.#handleResponse(next.state, next.response);
        if (more !== undefined) {
          this.#drainAfter(more);
          return;
        }
      }
    });
  }

  #handleResponse(state: StreamState, response: Response): Promise<void> | undefined {
    if (state.ended) return undefined;
    if (!state.receivedAny) {
      state.receivedAny = true;
      this.#backoff.reset();
    }
    const { typeUrl } = response;
    const isDelta = 'removedResources' in response;
    this.#options.observer?.message?.(
      typeUrl,
      isDelta
        ? response.resources.reduce((sum, r) => sum + (r.resource?.value.length ?? 0), 0)
        : response.resources.reduce((sum, r) => sum + r.value.length, 0),
    );
    const handler = this.#handlers.get(typeUrl);
    const known = this.#known.get(typeUrl);
    let rejected: Rejection[] = [];
    let resources: IncomingResource[] = [];
    let removed: readonly string[] = [];
    if (handler === undefined || known === undefined) {
      rejected = [{ name: '*', reason: `unsubscribed type ${typeUrl}` }];
    } else {
      if (isDelta) {
        resources = response.resources.map(r => ({
          name: r.name,
          version: r.version,
          aliases: r.aliases,
          resource: r.resource,
        }));
        removed = response.removedResources;
      } else {
        const unwrapped = unwrapSotw(response, handler);
        resources = unwrapped.resources;
        rejected.push(...unwrapped.rejected);
        const present = new Set([...resources.map(r => r.name), ...unwrapped.rejected.map(r => r.name)]);
        removed = [...known.keys()].filter(n => !present.has(n));
      }
      let result: ReturnType<ResourceHandler['handle']>;
      try {
        result = handler.handle(resources, removed);
      } catch (err) {
        result = [{ name: '*', reason: `BUG: handler threw: ${errorMessage(err)}` }];
      }
      if (!Array.isArray(result)) {
        const bug = (err: unknown): Rejection[] => [
          { name: '*', reason: `BUG: handler failed: ${errorMessage(err)}` },
        ];
        return Promise.resolve(result)
          .then(r => r, bug)
          .then(more => {
            this.#answer(state, response, handler, [...rejected, ...more], resources, removed);
          });
      }
      rejected.push(...(result as readonly Rejection[]));
    }
    this.#answer(state, response, handler, rejected, resources, removed);
    return undefined;
  }

  /** Records what was accepted, sends the ACK or NACK and tells the observer. */
  #answer(
    state: StreamState,
    response: Response,
    handler: ResourceHandler | undefined,
    rejected: readonly Rejection[],
    resources: readonly IncomingResource[],
    removed: readonly string[],
  ): void {
    const { typeUrl, nonce } = response;
    const isDelta = 'removedResources' in response;
    const known = this.#known.get(typeUrl);
    if (handler !== undefined && known !== undefined) {
      const rejectedNames = new Set(rejected.map(r => r.name));
      for (const r of resources) if (!rejectedNames.has(r.name)) known.set(r.name, r.version);
      for (const name of removed) known.delete(name);
    }
    const version = isDelta ? response.systemVersionInfo : response.versionInfo;
    const nack = rejected.length === 0 ? undefined : nackMessage(rejected);
    if (nack === undefined) {
      this.#log.debug({ typeUrl, nonce, resources: response.resources.length }, 'xds ACK');
      if (!isDelta) this.#acceptedVersion.set(typeUrl, version);
    } else {
      this.#log.warn({ typeUrl, nonce, error: nack }, 'xds NACK');
    }
    const errorDetail = nack === undefined ? undefined : { code: NACK_CODE, message: nack };
    if (isDelta) {
      this.#send(state, { typeUrl, responseNonce: nonce, ...(errorDetail ? { errorDetail } : {}) });
    } else {
      this.#send(state, {
        typeUrl,
        responseNonce: nonce,
        versionInfo: this.#acceptedVersion.get(typeUrl) ?? '',
        resourceNames: handler?.resourceNames ?? [],
        ...(errorDetail ? { errorDetail } : {}),
      });
    }
    this.#options.observer?.response?.({
      typeUrl,
      nonce,
      version,
      resourceNames: resources.map(r => r.name),
      removedResources: [...removed],
      nack,
    });
    if (handler !== undefined && !this.#firstHandled.has(typeUrl)) {
      this.#firstHandled.add(typeUrl);
      if (!this.#synced && this.#firstHandled.size === this.#handlers.size) {
        this.#synced = true;
        this.#log.info({}, 'xds synced: first response of every type handled');
        this.#options.observer?.synced?.();
      }
    }
  }

  #onEnd(state: StreamState, reason: string, err?: unknown): void {
    if (state.ended) return;
    state.ended = true;
    if (this.#current === state) this.#current = undefined;
    state.stream.cancel();
    this.#options.observer?.terminated?.(reason, err);
    this.#log.warn(
      err === undefined ? { reason } : { reason, error: errorMessage(err) },
      this.#options.reconnect === false ? 'xds stream ended' : 'xds stream ended; reconnecting',
    );
    this.#scheduleReconnect(reason);
  }

  #scheduleReconnect(reason: string): void {
    if (this.#stopped || this.#options.reconnect === false) return;
    const delay = this.#backoff.nextDelayMs();
    this.#log.debug({ reason, delayMs: delay }, 'xds reconnect scheduled');
    const handle = this.#timers.setTimeout(() => {
      this.#retry = undefined;
      if (!this.#stopped) this.#open();
    }, delay);
    (handle as { unref?: () => unknown } | undefined)?.unref?.();
    this.#retry = handle;
  }
}

/** SotW resources with their names: from the `Resource` wrapper, else from `handler.nameOf`. */
function unwrapSotw(
  response: discovery.DiscoveryResponse,
  handler: ResourceHandler,
): { resources: IncomingResource[]; rejected: Rejection[] } {
  const resources: IncomingResource[] = [];
  const rejected: Rejection[] = [];
  response.resources.forEach((any: protobuf.Any, i) => {
    try {
      if (any.type_url === RESOURCE_WRAPPER_TYPE_URL) {
        const r = codecFor('envoy.service.discovery.v3.Resource').decode(any.value);
        resources.push({
          name: r.name,
          version: r.version || response.versionInfo,
          aliases: [],
          resource: r.resource,
        });
      } else if (handler.nameOf !== undefined) {
        resources.push({
          name: handler.nameOf(any),
          version: response.versionInfo,
          aliases: [],
          resource: any,
        });
      } else {
        rejected.push({ name: `#${i}`, reason: `cannot name a bare ${any.type_url} resource` });
      }
    } catch (err) {
      rejected.push({ name: `#${i}`, reason: errorMessage(err) });
    }
  });
  return { resources, rejected };
}
