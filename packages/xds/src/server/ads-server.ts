/**
 * The Aggregated Discovery Service on grpc-js: `DeltaAggregatedResources` and
 * `StreamAggregatedResources` over every type URL of a `ResourceTypeRegistry`.
 *
 * Each stream: its first request's node and the call's metadata and peer go to the
 * authentication hook; requests that arrive meanwhile are queued in order. Once accepted, a
 * `DeltaStream` or `SotwStream` owns the protocol state until the stream ends. `push()` sends
 * changes to every stream (a backpressured stream coalesces them instead of blocking the
 * others); `syncStatus()` shows per stream and type what was sent, ACKed and NACKed. Encoded
 * resources are cached per resource object.
 */
import type { PeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { errorMessage } from '@ambient-mesh/errors';
import { AggregatedDiscoveryService, codecFor, type core, type discovery } from '@ambient-mesh/xds-types';
import { XdsError, XdsErrorCode } from '../errors.ts';
import type { ResourceTypeRegistry } from '../resource-types.ts';
import { DeltaStream } from './delta-stream.ts';
import type { ResourceChanges } from './push-queue.ts';
import type {
  GeneratedResponse,
  ResourceSource,
  StreamServices,
  VersionedResource,
} from './resource-source.ts';
import { SotwStream } from './sotw-stream.ts';
import type { AdsProtocol, ConnectionSyncStatus } from './sync-status.ts';

type DeltaCall = grpc.ServerDuplexStream<
  discovery.DeltaDiscoveryRequest,
  discovery.DeltaDiscoveryResponseInit
>;
type SotwCall = grpc.ServerDuplexStream<discovery.DiscoveryRequest, discovery.DiscoveryResponseInit>;
type AnyCall = DeltaCall | SotwCall;

/** What the authentication hook sees of a new stream. */
export interface StreamAuthRequest {
  readonly protocol: AdsProtocol;
  /** The node of the stream's first request. */
  readonly node: core.Node | null;
  readonly metadata: grpc.Metadata;
  readonly peer: string;
  /** The client's TLS certificate, when it presented one. */
  readonly peerCertificate: PeerCertificate | undefined;
}

/** Accept (with what the server should remember of the client) or reject with a gRPC status. */
export type AuthDecision<C> =
  | {
      readonly ok: true;
      readonly client: C;
      /** Names the connection; default the node id. */ readonly label?: string;
    }
  | { readonly ok: false; readonly code: grpc.status; readonly message: string };

export type Authenticate<C> = (request: StreamAuthRequest) => AuthDecision<C> | Promise<AuthDecision<C>>;

export interface ConnectionInfo<C> {
  readonly id: string;
  readonly protocol: AdsProtocol;
  readonly nodeId: string;
  readonly client: C;
}

/** Hooks for logs and metrics; each is optional and must not throw. */
export interface AdsServerObserver<C> {
  connected?(connection: ConnectionInfo<C>): void;
  disconnected?(connection: ConnectionInfo<C>): void;
  /** The authentication hook refused a stream. */
  rejected?(request: StreamAuthRequest, code: grpc.status, message: string): void;
  /** One response was written. */
  sent?(connection: ConnectionInfo<C>, typeUrl: string, resources: number): void;
  nack?(connection: ConnectionInfo<C>, typeUrl: string, nonce: string, message: string): void;
  unknownType?(connection: ConnectionInfo<C>, typeUrl: string): void;
  /** A request could not be handled; the stream is ended with INTERNAL. */
  failed?(connection: ConnectionInfo<C> | undefined, message: string): void;
}

/**
 * Builds the response to a request for a type URL the registry does not serve (debug types),
 * for the client the authentication hook accepted; `undefined` when it does not handle it either.
 */
export type GenerateFor<C> = (
  client: C,
  typeUrl: string,
  resourceNames: readonly string[],
) => GeneratedResponse | undefined;

export interface AdsServerOptions<C> {
  readonly registry: ResourceTypeRegistry;
  readonly source: ResourceSource;
  /**
   * The resources one accepted client sees, when they differ per client (for example each
   * Envoy proxy its own listeners and routes); default `source` for every client.
   */
  readonly sourceFor?: (client: C) => ResourceSource;
  /** Types answered on request (never pushed, not in the sync status); none by default. */
  readonly generate?: GenerateFor<C>;
  /** Milliseconds since the epoch, for each type's last send time; default `Date.now`. */
  readonly now?: () => number;
  /** Decides whether a stream may subscribe; default: every stream, `client` undefined. */
  readonly authenticate?: Authenticate<C>;
  readonly observer?: AdsServerObserver<C>;
}

interface ServerStream {
  handleRequest(request: discovery.DeltaDiscoveryRequest | discovery.DiscoveryRequest): void;
  push(changes: ResourceChanges): number;
  drained(): number;
  readonly backpressured: boolean;
  status(): ConnectionSyncStatus['types'];
}

interface Connection<C> {
  readonly info: ConnectionInfo<C>;
  readonly connectedAt: Date;
  readonly stream: ServerStream;
}

export class AdsServer<C = undefined> {
  readonly #opts: AdsServerOptions<C>;
  readonly #connections = new Map<string, Connection<C>>();
  readonly #encoded = new WeakMap<object, Uint8Array>();
  readonly #wrapped = new WeakMap<object, Uint8Array>();
  readonly #calls = new Set<AnyCall>();
  readonly #services: StreamServices;
  #nextConnection = 0;
  #nonce = 0;
  #version = 1;

  constructor(opts: AdsServerOptions<C>) {
    this.#opts = opts;
    const registry = opts.registry;
    this.#services = {
      source: opts.source,
      serves: typeUrl => registry.has(typeUrl),
      nextNonce: () => (++this.#nonce).toString(36),
      version: () => String(this.#version),
      now: opts.now ?? Date.now,
      encode: (typeUrl, resource) => this.#encode(typeUrl, resource),
      encodeWrapped: (typeUrl, name, resource) => {
        let bytes = this.#wrapped.get(resource);
        if (bytes === undefined) {
          bytes = codecFor('envoy.service.discovery.v3.Resource').encode({
            name,
            version: resource.version,
            resource: { type_url: typeUrl, value: this.#encode(typeUrl, resource) },
          });
          this.#wrapped.set(resource, bytes);
        }
        return bytes;
      },
    };
  }

  /** Registers both ADS methods on a grpc-js server. */
  register(server: grpc.Server): void {
    server.addService(AggregatedDiscoveryService, {
      DeltaAggregatedResources: (call: DeltaCall) => {
        this.#handle('delta', call);
      },
      StreamAggregatedResources: (call: SotwCall) => {
        this.#handle('sotw', call);
      },
    });
  }

  get connectionCount(): number {
    return this.#connections.size;
  }

  /**
   * Sends changed names (per type URL) to every stream subscribed to them (with `only`, just
   * to the clients it accepts). Returns how many streams were sent something. Never waits for a
   * slow stream.
   */
  push(changes: ResourceChanges, only?: (client: C) => boolean): number {
    this.#version++;
    let pushed = 0;
    for (const conn of this.#connections.values()) {
      if (only !== undefined && !only(conn.info.client)) continue;
      try {
        if (conn.stream.push(changes) > 0) pushed++;
      } catch (err) {
        this.#opts.observer?.failed?.(conn.info, `push failed: ${errorMessage(err)}`);
      }
    }
    return pushed;
  }

  /** Per connected stream and type: the subscription, what was sent, ACKed and NACKed. */
  syncStatus(): ConnectionSyncStatus<C>[] {
    return [...this.#connections.values()].map(c => ({
      connectionId: c.info.id,
      protocol: c.info.protocol,
      nodeId: c.info.nodeId,
      client: c.info.client,
      connectedAt: c.connectedAt.toISOString(),
      backpressured: c.stream.backpressured,
      types: c.stream.status(),
    }));
  }

  /** Ends every open stream (on shutdown). */
  closeAll(): void {
    for (const call of [...this.#calls]) call.end();
  }

  #encode(typeUrl: string, resource: VersionedResource): Uint8Array {
    let bytes = this.#encoded.get(resource);
    if (bytes === undefined) {
      const type = this.#opts.registry.get(typeUrl);
      if (type === undefined) throw new XdsError(XdsErrorCode.UnknownType, `no encoder for ${typeUrl}`);
      bytes = type.encode(resource.value);
      this.#encoded.set(resource, bytes);
    }
    return bytes;
  }

  #handle(protocol: AdsProtocol, call: AnyCall): void {
    const observer = this.#opts.observer;
    this.#calls.add(call);
    let conn: Connection<C> | undefined;
    let pending: (discovery.DeltaDiscoveryRequest | discovery.DiscoveryRequest)[] | undefined = [];
    let failed = false;
    const fail = (code: grpc.status, details: string): void => {
      if (failed) return;
      failed = true;
      call.emit('error', Object.assign(new Error(details), { code, details }));
    };
    const process = (req: discovery.DeltaDiscoveryRequest | discovery.DiscoveryRequest): void => {
      if (conn === undefined) return;
      try {
        conn.stream.handleRequest(req);
      } catch (err) {
        observer?.failed?.(conn.info, `failed to handle a request: ${errorMessage(err)}`);
        fail(grpc.status.INTERNAL, `failed to handle the request: ${errorMessage(err)}`);
      }
    };
    const start = async (
      first: discovery.DeltaDiscoveryRequest | discovery.DiscoveryRequest,
    ): Promise<void> => {
      const request: StreamAuthRequest = {
        protocol,
        node: first.node,
        metadata: call.metadata,
        peer: call.getPeer(),
        peerCertificate: peerCertificate(call),
      };
      const decision: AuthDecision<C> =
        this.#opts.authenticate === undefined
          ? { ok: true, client: undefined as C }
          : await this.#opts.authenticate(request);
      if (!decision.ok) {
        observer?.rejected?.(request, decision.code, decision.message);
        fail(decision.code, decision.message);
        return;
      }
      if (failed) return;
      const nodeId = first.node?.id ?? '';
      const label = decision.label ?? (nodeId === '' ? 'anonymous' : nodeId);
      const info: ConnectionInfo<C> = {
        id: `${label}-${++this.#nextConnection}`,
        protocol,
        nodeId,
        client: decision.client,
      };
      const events = {
        nack: (typeUrl: string, nonce: string, message: string) =>
          observer?.nack?.(info, typeUrl, nonce, message),
        unknownType: (typeUrl: string) => observer?.unknownType?.(info, typeUrl),
      };
      const generate = this.#opts.generate;
      const sourceFor = this.#opts.sourceFor;
      const services: StreamServices = {
        ...this.#services,
        ...(sourceFor === undefined ? {} : { source: sourceFor(decision.client) }),
        ...(generate === undefined ? {} : { generate: (t, names) => generate(info.client, t, names) }),
      };
      const stream: ServerStream =
        protocol === 'delta'
          ? new DeltaStream(
              services,
              resp => {
                observer?.sent?.(
                  info,
                  resp.typeUrl ?? '',
                  (resp.resources?.length ?? 0) + (resp.removedResources?.length ?? 0),
                );
                return (call as DeltaCall).write(resp);
              },
              events,
            )
          : new SotwStream(
              services,
              resp => {
                observer?.sent?.(info, resp.typeUrl ?? '', resp.resources?.length ?? 0);
                return (call as SotwCall).write(resp);
              },
              events,
            );
      conn = { info, connectedAt: new Date(), stream };
      this.#connections.set(info.id, conn);
      call.on('drain', () => {
        if (conn !== undefined && !failed) conn.stream.drained();
      });
      observer?.connected?.(info);
      const queued = pending ?? [];
      pending = undefined;
      for (const req of queued) process(req);
    };
    call.on('data', (req: discovery.DeltaDiscoveryRequest | discovery.DiscoveryRequest) => {
      if (failed) return;
      if (pending !== undefined) {
        pending.push(req);
        if (pending.length === 1) {
          start(req).catch((err: unknown) => {
            observer?.failed?.(undefined, `failed to start a stream: ${errorMessage(err)}`);
            fail(grpc.status.INTERNAL, `failed to start the stream: ${errorMessage(err)}`);
          });
        }
        return;
      }
      process(req);
    });
    const cleanup = (): void => {
      this.#calls.delete(call);
      if (conn !== undefined && this.#connections.delete(conn.info.id)) observer?.disconnected?.(conn.info);
    };
    call.on('end', () => {
      cleanup();
      if (!failed) call.end();
    });
    call.on('cancelled', cleanup);
    call.on('close', cleanup);
    call.on('error', cleanup);
  }
}

function peerCertificate(call: AnyCall): PeerCertificate | undefined {
  try {
    return call.getAuthContext().sslPeerCertificate;
  } catch {
    return undefined;
  }
}
