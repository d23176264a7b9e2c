/**
 * The delta-xDS client of the e2e tests, subscribing like a ztunnel (docs/protocols.md#wds):
 * `@ambient-mesh/xds`'s `XdsClient` over TLS 1.3 + ALPN h2 to istiod's 15012, a bearer token and
 * `clusterid` in the call metadata, wildcard subscriptions to Address and Authorization, and a
 * decoded snapshot the test can wait on. It never reconnects: a stream that ends fails the
 * client's waits. It keeps a log of every response so tests can assert what a push contained,
 * not only the resulting state.
 */
import { createSecureContext } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { errorMessage } from '@ambient-mesh/errors';
import { TypeUrl as MeshTypeUrl } from '@ambient-mesh/mesh-api';
import {
  XdsClient,
  deltaStreamFactory,
  type IncomingResource,
  type Rejection,
  type ResourceHandler,
} from '@ambient-mesh/xds';
import { TypeUrl, unpackAny, type core, type security, type workload } from '@ambient-mesh/xds-types';
import { XdsClientError, XdsClientErrorCode } from './errors.ts';

/** The two types a ztunnel subscribes to, in the order it sends them. */
export const ZTUNNEL_TYPE_URLS: readonly string[] = [MeshTypeUrl.address, MeshTypeUrl.authorization];

/** One resource as the client holds it. `value` is decoded for Address and Authorization. */
export interface XdsResourceEntry {
  readonly name: string;
  readonly version: string;
  readonly aliases: readonly string[];
  readonly value: workload.Address | security.Authorization | Uint8Array;
}

/** What one DeltaDiscoveryResponse carried, in arrival order. */
export interface XdsResponseRecord {
  /** 1-based position in this client's response log. */
  readonly seq: number;
  readonly typeUrl: string;
  readonly nonce: string;
  readonly systemVersionInfo: string;
  /** Names of the resources added or updated by this response (those that decoded). */
  readonly resourceNames: readonly string[];
  readonly removedResources: readonly string[];
  /** The NACK message sent back, or undefined when the response was ACKed. */
  readonly nack: string | undefined;
}

/** What a response of one type carried, as the `nack` option sees it. */
export interface XdsResponseContent {
  readonly typeUrl: string;
  readonly resources: readonly IncomingResource[];
  readonly removedResources: readonly string[];
}

/** Resources per type URL, name → entry; what `resumeState()` returns and `resume` takes. */
export type XdsResourceState = ReadonlyMap<string, ReadonlyMap<string, XdsResourceEntry>>;

export interface DeltaXdsClientOptions {
  /** `host:port` of istiod's secure gRPC port (15012). */
  readonly address: string;
  /** PEM root(s) to trust: istiod's `istio-ca-root-cert`. */
  readonly rootCert: string | Buffer;
  /** Name to verify the serving certificate against; default `istiod.istio-system.svc`. */
  readonly serverName?: string;
  /** Bearer token (pod-bound, audience `istio-ca`), or a function read for every stream. */
  readonly token: string | (() => string);
  /** `clusterid` call metadata; default `Kubernetes`. */
  readonly clusterId?: string;
  /** The node to present (see `ztunnelNode`). */
  readonly node: core.NodeInit;
  /** Type URLs to subscribe to (wildcard); default {@link ZTUNNEL_TYPE_URLS}. */
  readonly typeUrls?: readonly string[];
  /**
   * Resources known from an earlier stream (`resumeState()` of the previous client). They seed
   * the snapshot and are announced in `initial_resource_versions`.
   */
  readonly resume?: XdsResourceState;
  /**
   * Versions announced for resumed resources: `'empty'` sends `""` for each name, as ztunnel does
   * (default); `'recorded'` sends the version each resource last arrived with.
   */
  readonly resumeVersions?: 'empty' | 'recorded';
  /** Return a message to NACK a response instead of ACKing it (for NACK tests). */
  readonly nack?: (response: XdsResponseContent) => string | undefined;
  /** Extra grpc-js channel options. */
  readonly channelOptions?: grpc.ChannelOptions;
}

type Listener = () => void;

/** A delta-xDS stream to istiod holding a decoded snapshot. Call `start()`, then `waitFor(...)`. */
export class DeltaXdsClient {
  readonly options: DeltaXdsClientOptions;
  readonly #resources = new Map<string, Map<string, XdsResourceEntry>>();
  readonly #responses: XdsResponseRecord[] = [];
  readonly #decodeErrors: string[] = [];
  readonly #listeners = new Set<Listener>();
  /** Names each type's handler applied from the response being handled. */
  readonly #applied = new Map<string, string[]>();
  #grpcClient: grpc.Client | undefined;
  #xds: XdsClient | undefined;
  #failure: XdsClientError | undefined;
  #ended: Promise<void> | undefined;
  readonly #addressView = new ResourceView(
    () => this.#resources.get(TypeUrl.ADDRESS),
    e => e.value as workload.Address,
  );
  readonly #authorizationView = new ResourceView(
    () => this.#resources.get(TypeUrl.AUTHORIZATION),
    e => e.value as security.Authorization,
  );

  constructor(options: DeltaXdsClientOptions) {
    this.options = options;
    for (const typeUrl of this.typeUrls) this.#resources.set(typeUrl, new Map());
    for (const [typeUrl, entries] of options.resume ?? []) this.#resources.set(typeUrl, new Map(entries));
  }

  get typeUrls(): readonly string[] {
    return this.options.typeUrls ?? ZTUNNEL_TYPE_URLS;
  }

  /** Opens the stream and sends one wildcard request per type. Failures surface through `waitFor`. */
  start(): this {
    if (this.#grpcClient !== undefined) {
      throw new XdsClientError(XdsClientErrorCode.InvalidState, 'start() was already called on this client');
    }
    const root =
      typeof this.options.rootCert === 'string' ? Buffer.from(this.options.rootCert) : this.options.rootCert;
    const context = createSecureContext({ ca: root, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' });
    const serverName = this.options.serverName ?? 'istiod.istio-system.svc';
    const channel = new grpc.Client(this.options.address, grpc.credentials.createFromSecureContext(context), {
      'grpc.ssl_target_name_override': serverName,
      'grpc.default_authority': serverName,
      'grpc.max_receive_message_length': 200 * 1024 * 1024,
      ...this.options.channelOptions,
    });
    this.#grpcClient = channel;
    const open = deltaStreamFactory(channel, () => {
      const metadata = new grpc.Metadata();
      const token = typeof this.options.token === 'function' ? this.options.token() : this.options.token;
      metadata.set('authorization', `Bearer ${token}`);
      metadata.set('clusterid', this.options.clusterId ?? 'Kubernetes');
      return metadata;
    });
    const initialResources = new Map<string, Map<string, string>>();
    for (const [typeUrl, entries] of this.options.resume ?? []) {
      initialResources.set(typeUrl, new Map([...entries.values()].map(e => [e.name, e.version])));
    }
    this.#xds = new XdsClient({
      node: this.options.node,
      handlers: this.typeUrls.map(t => this.#handler(t)),
      reconnect: false,
      initialResources,
      resumeVersions: this.options.resumeVersions ?? 'empty',
      connect: () => {
        const stream = open();
        this.#ended = new Promise(resolve => {
          // 'status' is emitted exactly once when the call completes, cancelled or not.
          (stream as unknown as grpc.ClientDuplexStream<unknown, unknown>).on('status', () => {
            resolve();
          });
        });
        return stream;
      },
      observer: {
        response: record => {
          this.#responses.push({
            seq: this.#responses.length + 1,
            typeUrl: record.typeUrl,
            nonce: record.nonce,
            systemVersionInfo: record.version,
            resourceNames: this.#applied.get(record.typeUrl) ?? [],
            removedResources: record.removedResources,
            nack: record.nack,
          });
          this.#applied.delete(record.typeUrl);
          this.#notify();
        },
        terminated: (reason, err) => {
          if (err !== undefined) {
            const e = err as Partial<grpc.ServiceError>;
            this.#fail(
              `delta xDS stream to ${this.options.address} failed: ${e.code ?? ''} ${e.details ?? errorMessage(err)}`,
              err,
            );
          } else {
            this.#fail(`istiod at ${this.options.address} ended the delta xDS stream (${reason})`);
          }
        },
      },
    });
    this.#xds.start();
    return this;
  }

  /** Decodes each resource of `typeUrl` into the snapshot; what does not decode is rejected by name. */
  #handler(typeUrl: string): ResourceHandler {
    return {
      typeUrl,
      handle: (resources, removed) => {
        let entries = this.#resources.get(typeUrl);
        if (entries === undefined) {
          entries = new Map();
          this.#resources.set(typeUrl, entries);
        }
        const rejected: Rejection[] = [];
        const names: string[] = [];
        for (const resource of resources) {
          try {
            entries.set(resource.name, {
              name: resource.name,
              version: resource.version,
              aliases: [...resource.aliases],
              value: decodeResource(typeUrl, resource),
            });
            names.push(resource.name);
          } catch (err) {
            rejected.push({ name: resource.name, reason: errorMessage(err) });
          }
        }
        for (const name of removed) entries.delete(name);
        this.#decodeErrors.push(...rejected.map(r => `${r.name}: ${r.reason}`));
        this.#applied.set(typeUrl, names);
        if (rejected.length > 0) return rejected;
        const nack = this.options.nack?.({ typeUrl, resources, removedResources: removed });
        return nack === undefined ? [] : [{ name: '', reason: nack }];
      },
    };
  }

  #fail(message: string, cause?: unknown): void {
    this.#failure ??= new XdsClientError(XdsClientErrorCode.StreamFailed, message, { cause });
    this.#notify();
  }

  #notify(): void {
    for (const listener of [...this.#listeners]) listener();
  }

  /** The error that ended the stream, if it ended on its own. */
  get failure(): XdsClientError | undefined {
    return this.#failure;
  }

  /** Every response so far, oldest first. */
  get responses(): readonly XdsResponseRecord[] {
    return this.#responses;
  }

  /** Resources that could not be decoded (each was NACKed). */
  get decodeErrors(): readonly string[] {
    return this.#decodeErrors;
  }

  /**
   * Current Address resources by name (workload uid or `<ns>/<hostname>`): a live read-only view,
   * not a copy, so `get`/`has`/`size` cost O(1) in a wait condition. It follows later responses;
   * take `new Map(client.addresses)` to keep a snapshot.
   */
  get addresses(): ReadonlyMap<string, workload.Address> {
    return this.#addressView;
  }

  /** Current Authorization resources by name (`<ns>/<name>`): a live read-only view like `addresses`. */
  get authorizations(): ReadonlyMap<string, security.Authorization> {
    return this.#authorizationView;
  }

  /** One Address resource by name, without building a map. */
  address(name: string): workload.Address | undefined {
    return this.#resources.get(TypeUrl.ADDRESS)?.get(name)?.value as workload.Address | undefined;
  }

  /** One Authorization resource by name, without building a map. */
  authorization(name: string): security.Authorization | undefined {
    return this.#resources.get(TypeUrl.AUTHORIZATION)?.get(name)?.value as security.Authorization | undefined;
  }

  /** One resource entry of a type by name. */
  entry(typeUrl: string, name: string): XdsResourceEntry | undefined {
    return this.#resources.get(typeUrl)?.get(name);
  }

  /** How many resources of a type are held. */
  count(typeUrl: string): number {
    return this.#resources.get(typeUrl)?.size ?? 0;
  }

  /** Resource entries of one type, by name: a live read-only view like `addresses`. */
  entries(typeUrl: string): ReadonlyMap<string, XdsResourceEntry> {
    return new ResourceView(
      () => this.#resources.get(typeUrl),
      e => e,
    );
  }

  /** A copy of everything held, to pass as `resume` to the next client. */
  resumeState(): XdsResourceState {
    const out = new Map<string, ReadonlyMap<string, XdsResourceEntry>>();
    for (const [typeUrl, entries] of this.#resources) out.set(typeUrl, new Map(entries));
    return out;
  }

  /** True once at least one response of every subscribed type arrived (ztunnel's readiness rule). */
  get synced(): boolean {
    return this.typeUrls.every(t => this.#responses.some(r => r.typeUrl === t));
  }

  /**
   * Resolves with the first value `check` returns other than `undefined`/`false`, evaluating it now
   * and after every response. Rejects with XDS_CLIENT_TIMEOUT at the deadline, or with
   * XDS_CLIENT_STREAM_FAILED if the stream ends first.
   */
  waitFor<T>(
    what: string,
    check: (client: this) => T | undefined | false,
    options: { timeoutMs?: number } = {},
  ): Promise<T> {
    const timeoutMs = options.timeoutMs ?? 30_000;
    return new Promise<T>((resolve, reject) => {
      const finish = (fn: () => void): void => {
        this.#listeners.delete(evaluate);
        clearTimeout(timer);
        fn();
      };
      const evaluate = (): void => {
        let value: T | undefined | false;
        try {
          value = check(this);
        } catch (err) {
          finish(() => {
            reject(err instanceof Error ? err : new Error(errorMessage(err)));
          });
          return;
        }
        if (value !== undefined && value !== false) {
          const result = value;
          finish(() => {
            resolve(result);
          });
        } else if (this.#failure !== undefined) {
          const failure = this.#failure;
          finish(() => {
            reject(failure);
          });
        }
      };
      const timer = setTimeout(() => {
        finish(() => {
          reject(
            new XdsClientError(
              XdsClientErrorCode.Timeout,
              `timed out after ${timeoutMs} ms waiting for ${what} (${this.#responses.length} responses so far; ` +
                `${this.addresses.size} addresses, ${this.authorizations.size} authorizations)`,
            ),
          );
        });
      }, timeoutMs);
      this.#listeners.add(evaluate);
      evaluate();
    });
  }

  /** Waits until every subscribed type has had a response. */
  waitForSync(timeoutMs = 30_000): Promise<true> {
    return this.waitFor('a first response for every subscribed type', c => c.synced, { timeoutMs });
  }

  /** Cancels the stream and closes the channel. Safe to call twice. */
  async close(): Promise<void> {
    this.#xds?.stop();
    if (this.#ended !== undefined) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.#ended, new Promise(r => (timer = setTimeout(r, 5_000)))]);
      clearTimeout(timer);
    }
    this.#grpcClient?.close();
  }
}

/**
 * A read-only view of one type's entries, each mapped through `pick`. It reads the client's map on
 * every call, so it never copies and always shows the current state.
 */
class ResourceView<V> implements ReadonlyMap<string, V> {
  readonly #source: () => ReadonlyMap<string, XdsResourceEntry> | undefined;
  readonly #pick: (entry: XdsResourceEntry) => V;

  constructor(
    source: () => ReadonlyMap<string, XdsResourceEntry> | undefined,
    pick: (entry: XdsResourceEntry) => V,
  ) {
    this.#source = source;
    this.#pick = pick;
  }

  get size(): number {
    return this.#source()?.size ?? 0;
  }

  get(name: string): V | undefined {
    const entry = this.#source()?.get(name);
    return entry === undefined ? undefined : this.#pick(entry);
  }

  has(name: string): boolean {
    return this.#source()?.has(name) ?? false;
  }

  forEach(callback: (value: V, name: string, map: ReadonlyMap<string, V>) => void, thisArg?: unknown): void {
    for (const [name, value] of this.entries()) callback.call(thisArg, value, name, this);
  }

  *entries(): MapIterator<[string, V]> {
    for (const [name, entry] of this.#source() ?? []) yield [name, this.#pick(entry)];
  }

  *keys(): MapIterator<string> {
    yield* this.#source()?.keys() ?? [];
  }

  *values(): MapIterator<V> {
    for (const entry of this.#source()?.values() ?? []) yield this.#pick(entry);
  }

  [Symbol.iterator](): MapIterator<[string, V]> {
    return this.entries();
  }
}

function decodeResource(
  typeUrl: string,
  resource: IncomingResource,
): workload.Address | security.Authorization | Uint8Array {
  if (typeUrl === TypeUrl.ADDRESS) return unpackAny(resource.resource, TypeUrl.ADDRESS);
  if (typeUrl === TypeUrl.AUTHORIZATION) return unpackAny(resource.resource, TypeUrl.AUTHORIZATION);
  if (resource.resource === null) {
    throw new XdsClientError(XdsClientErrorCode.BadResponse, `resource ${resource.name} carries no Any`);
  }
  return resource.resource.value;
}
