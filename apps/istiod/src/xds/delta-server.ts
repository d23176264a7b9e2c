/**
 * The delta ADS service (`DeltaAggregatedResources`) on grpc-js.
 *
 * Each stream: the first request's node is parsed and validated, the bearer token is reviewed
 * (its namespace must be the proxy's namespace), then a `DeltaStream` owns the protocol state
 * until the stream ends. Requests that arrive while authentication is pending are queued in order.
 * Pushes come from the debounced `PushQueue`; encoded resources are cached per resource version.
 */
import type * as grpc from '@grpc/grpc-js';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { errorMessage } from '@ambient-mesh/errors';
import {
  AddressCodec,
  AggregatedDiscoveryService,
  AuthorizationCodec,
  type discovery,
} from '@ambient-mesh/xds-types';
import type { CallerIdentity, TokenReviewer } from '../auth/token-review.ts';
import { authenticateBearer } from '../auth/token-review.ts';
import type { Logger } from '@ambient-mesh/runtime';
import type { IstiodMetrics } from '../metrics.ts';
import type { WdsResource, WdsTypeUrl } from '../wds/wds-index.ts';
import { TypeUrls } from '../wds/wds-index.ts';
import type { ResourceSource, TypeSyncStatus } from './delta-stream.ts';
import { DeltaStream } from './delta-stream.ts';
import { parseNode, type ProxyInfo } from './node-info.ts';
import type { PushBatch, Timers } from './push-queue.ts';
import { systemTimers } from './push-queue.ts';

type DeltaCall = grpc.ServerDuplexStream<
  discovery.DeltaDiscoveryRequest,
  discovery.DeltaDiscoveryResponseInit
>;

export interface XdsServerOptions {
  readonly source: ResourceSource;
  readonly reviewer: TokenReviewer;
  readonly audiences: readonly string[];
  /** When false, streams are not authenticated (upstream `XDS_AUTH=false`; tests only). */
  readonly requireAuth: boolean;
  readonly enableAmbient: boolean;
  readonly metrics: IstiodMetrics;
  readonly logger: Logger;
  readonly timers?: Timers;
}

export interface ConnectionStatus {
  readonly connectionId: string;
  readonly proxy: ProxyInfo;
  readonly identity: CallerIdentity | undefined;
  readonly connectedAt: string;
  readonly types: TypeSyncStatus[];
}

interface Connection {
  readonly id: string;
  readonly proxy: ProxyInfo;
  readonly identity: CallerIdentity | undefined;
  readonly connectedAt: Date;
  readonly stream: DeltaStream;
}

export class XdsServer {
  readonly #opts: XdsServerOptions;
  readonly #timers: Timers;
  readonly #connections = new Map<string, Connection>();
  readonly #encoded = new WeakMap<WdsResource<unknown>, Uint8Array>();
  readonly #calls = new Set<DeltaCall>();
  #nextConnection = 0;
  #nonce = 0;

  constructor(opts: XdsServerOptions) {
    this.#opts = opts;
    this.#timers = opts.timers ?? systemTimers;
  }

  /** Registers the ADS service on a grpc-js server. */
  register(server: grpc.Server): void {
    server.addService(AggregatedDiscoveryService, {
      DeltaAggregatedResources: (call: DeltaCall) => {
        this.#handle(call);
      },
    });
  }

  get connectionCount(): number {
    return this.#connections.size;
  }

  /** Sends a debounced batch of changes to every connected proxy. */
  push(batch: PushBatch): void {
    for (const conn of this.#connections.values()) {
      try {
        const sent = conn.stream.push(batch);
        if (sent > 0) {
          this.#opts.metrics.pushTime.observe(
            { type: 'wds' },
            (this.#timers.now() - batch.firstQueuedAt) / 1000,
          );
        }
      } catch (err) {
        this.#opts.logger.error({ proxy: conn.proxy.id, err: errorMessage(err) }, 'push failed');
      }
    }
  }

  /** Per-proxy sync state, like upstream `/debug/syncz`. */
  syncz(): ConnectionStatus[] {
    return [...this.#connections.values()].map(c => ({
      connectionId: c.id,
      proxy: c.proxy,
      identity: c.identity,
      connectedAt: c.connectedAt.toISOString(),
      types: c.stream.status(),
    }));
  }

  /** Ends every open stream (on shutdown). */
  closeAll(): void {
    for (const call of [...this.#calls]) call.end();
  }

  #encode = (typeUrl: WdsTypeUrl, resource: WdsResource<unknown>): Uint8Array => {
    let bytes = this.#encoded.get(resource);
    if (bytes === undefined) {
      bytes =
        typeUrl === TypeUrls.ADDRESS
          ? AddressCodec.encode(resource.value as Parameters<typeof AddressCodec.encode>[0])
          : AuthorizationCodec.encode(resource.value as Parameters<typeof AuthorizationCodec.encode>[0]);
      this.#encoded.set(resource, bytes);
    }
    return bytes;
  };

  #handle(call: DeltaCall): void {
    const log = this.#opts.logger;
    this.#calls.add(call);
    let conn: Connection | undefined;
    let pending: discovery.DeltaDiscoveryRequest[] | undefined = [];
    let failed = false;
    const fail = (code: grpc.status, details: string): void => {
      if (failed) return;
      failed = true;
      const err = Object.assign(new Error(details), { code, details });
      call.emit('error', err);
    };
    const process = (req: discovery.DeltaDiscoveryRequest): void => {
      if (conn === undefined) return;
      try {
        conn.stream.handleRequest(req);
      } catch (err) {
        log.error({ proxy: conn.proxy.id, err: errorMessage(err) }, 'failed to handle a delta request');
        fail(GrpcStatus.INTERNAL, `istiod failed to handle the request: ${errorMessage(err)}`);
      }
    };
    const start = async (first: discovery.DeltaDiscoveryRequest): Promise<void> => {
      const parsed = parseNode(first.node, { enableAmbient: this.#opts.enableAmbient });
      if (!parsed.ok) {
        log.warn({ err: parsed.error.message }, 'rejecting xDS stream: invalid node');
        fail(GrpcStatus.INVALID_ARGUMENT, parsed.error.message);
        return;
      }
      const proxy = parsed.value;
      let identity: CallerIdentity | undefined;
      if (this.#opts.requireAuth) {
        const auth = await authenticateBearer(
          call.metadata.get('authorization')[0],
          this.#opts.reviewer,
          this.#opts.audiences,
        );
        if (!auth.ok) {
          this.#opts.metrics.authFailures.inc({ service: 'xds' });
          log.warn({ proxy: proxy.id, err: auth.error.message }, 'rejecting xDS stream: unauthenticated');
          fail(GrpcStatus.UNAUTHENTICATED, auth.error.message);
          return;
        }
        identity = auth.identity;
        if (identity.namespace !== proxy.namespace) {
          this.#opts.metrics.authFailures.inc({ service: 'xds' });
          log.warn(
            { proxy: proxy.id, tokenNamespace: identity.namespace },
            'rejecting xDS stream: namespace mismatch',
          );
          fail(
            GrpcStatus.UNAUTHENTICATED,
            `authentication failed: token namespace ${identity.namespace} is not the proxy namespace ${proxy.namespace}`,
          );
          return;
        }
        if (proxy.serviceAccount !== '' && proxy.serviceAccount !== identity.serviceAccount) {
          this.#opts.metrics.authFailures.inc({ service: 'xds' });
          fail(
            GrpcStatus.UNAUTHENTICATED,
            'authentication failed: token service account does not match SERVICE_ACCOUNT',
          );
          return;
        }
      }
      if (failed) return;
      const id = `${proxy.id}-${++this.#nextConnection}`;
      conn = {
        id,
        proxy,
        identity,
        connectedAt: new Date(),
        stream: new DeltaStream({
          source: this.#opts.source,
          encode: this.#encode,
          nextNonce: () => (++this.#nonce).toString(36),
          send: resp => {
            this.#opts.metrics.pushes.inc({ type: resp.typeUrl ?? '' });
            call.write(resp);
          },
          onNack: (typeUrl, nonce, message) => {
            this.#opts.metrics.nacks.inc({ type: typeUrl });
            log.warn(
              { proxy: id, typeUrl, nonce, message },
              'proxy rejected (NACKed) a response; not resending',
            );
          },
          onUnknownType: typeUrl => {
            log.warn({ proxy: id, typeUrl }, 'ignoring a request for an unsupported type URL');
          },
        }),
      };
      this.#connections.set(id, conn);
      this.#opts.metrics.connectedProxies.set(this.#connections.size);
      log.info({ proxy: id, node: proxy.nodeName }, 'proxy connected');
      const queued = pending ?? [];
      pending = undefined;
      for (const req of queued) process(req);
    };
    call.on('data', (req: discovery.DeltaDiscoveryRequest) => {
      if (failed) return;
      if (pending !== undefined) {
        pending.push(req);
        if (pending.length === 1) {
          start(req).catch((err: unknown) => {
            fail(GrpcStatus.INTERNAL, `istiod failed to start the stream: ${errorMessage(err)}`);
          });
        }
        return;
      }
      process(req);
    });
    const cleanup = (): void => {
      this.#calls.delete(call);
      if (conn !== undefined && this.#connections.delete(conn.id)) {
        this.#opts.metrics.connectedProxies.set(this.#connections.size);
        log.info({ proxy: conn.id }, 'proxy disconnected');
      }
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
