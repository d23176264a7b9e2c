/**
 * istiod's xDS service: the `@ambient-mesh/xds` ADS server (delta and SotW) serving WDS
 * (`Address`, `Authorization`) from the index, with istiod's stream authentication plugged in.
 *
 * What istiod owns here: the first request's node is parsed and validated, the bearer token is
 * reviewed (its namespace must be the proxy's namespace, its service account the node's
 * SERVICE_ACCOUNT when set), and metrics and logs. The package owns the streams, ACK/NACK,
 * backpressure and the sync status; `push-queue.ts` adapts its debouncing to WDS change sets.
 */
import type * as grpc from '@grpc/grpc-js';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { TypeUrl } from '@ambient-mesh/mesh-api';
import {
  AdsServer,
  ResourceTypeRegistry,
  resourceType,
  type AuthDecision,
  type GeneratedResponse,
  type StreamAuthRequest,
  type TypeSyncStatus,
  type VersionedResource,
} from '@ambient-mesh/xds';
import { AddressCodec, AuthorizationCodec } from '@ambient-mesh/xds-types';
import type { CallerIdentity, TokenReviewer } from '../auth/token-review.ts';
import { authenticateBearer } from '../auth/token-review.ts';
import type { Logger } from '@ambient-mesh/runtime';
import type { IstiodMetrics } from '../metrics.ts';
import type { WdsResource, WdsTypeUrl } from '../wds/wds-index.ts';
import { TypeUrls } from '../wds/wds-index.ts';
import { answerDebugRequest } from './debug-types.ts';
import { parseNode, type ProxyInfo } from './node-info.ts';
import type { PushBatch, Timers } from './push-queue.ts';
import { systemTimers, toResourceChanges } from './push-queue.ts';
import {
  envoyResourceTypes,
  isEnvoyTypeUrl,
  waypointOfProxy,
  type WaypointBatch,
} from '../waypoint/serving.ts';

export type { TypeSyncStatus } from '@ambient-mesh/xds';

/** The WDS resources by type (the index). */
export interface ResourceSource {
  resources(typeUrl: WdsTypeUrl): ReadonlyMap<string, WdsResource<unknown>>;
}

/** Each waypoint's Envoy resources (the waypoint index). */
export interface WaypointResourceSource {
  resourcesFor(waypoint: string, typeUrl: string): ReadonlyMap<string, VersionedResource>;
}

export interface XdsServerOptions {
  readonly source: ResourceSource;
  /** Serves `Listener`/`RouteConfiguration`/`Cluster`/`ClusterLoadAssignment` to waypoint and gateway proxies. */
  readonly waypoints?: WaypointResourceSource;
  readonly reviewer: TokenReviewer;
  readonly audiences: readonly string[];
  /** When false, streams are not authenticated (upstream `XDS_AUTH=false`; tests only). */
  readonly requireAuth: boolean;
  readonly enableAmbient: boolean;
  readonly metrics: IstiodMetrics;
  readonly logger: Logger;
  readonly timers?: Timers;
  /** Answers istioctl's `istio.io/debug/...` requests (debug-types.ts); none when absent. */
  readonly debug?: {
    /** istiod's namespace: its callers see every proxy, others only their own namespace. */
    readonly systemNamespace: string;
    /** `controlPlaneIdentifier()` of this istiod. */
    readonly controlPlane: string;
  };
}

export interface ConnectionStatus {
  readonly connectionId: string;
  readonly protocol: 'delta' | 'sotw';
  readonly proxy: ProxyInfo;
  readonly identity: CallerIdentity | undefined;
  readonly connectedAt: string;
  readonly backpressured: boolean;
  readonly types: readonly TypeSyncStatus[];
}

/** What istiod remembers of an accepted stream. */
interface ProxyClient {
  readonly proxy: ProxyInfo;
  readonly identity: CallerIdentity | undefined;
  /** `namespace/name` of the Gateway a waypoint or gateway proxy serves. */
  readonly waypoint?: string | undefined;
}

const EMPTY: ReadonlyMap<string, VersionedResource> = new Map();
const WDS_TYPES: ReadonlySet<string> = new Set([TypeUrls.ADDRESS, TypeUrls.AUTHORIZATION]);

export class XdsServer {
  readonly #opts: XdsServerOptions;
  readonly #timers: Timers;
  readonly #ads: AdsServer<ProxyClient>;
  readonly #wdsSource: { resources(typeUrl: string): ReadonlyMap<string, VersionedResource> };

  constructor(opts: XdsServerOptions) {
    this.#opts = opts;
    this.#wdsSource = {
      resources: typeUrl => (WDS_TYPES.has(typeUrl) ? opts.source.resources(typeUrl as WdsTypeUrl) : EMPTY),
    };
    this.#timers = opts.timers ?? systemTimers;
    const log = opts.logger;
    const metrics = opts.metrics;
    this.#ads = new AdsServer<ProxyClient>({
      registry: new ResourceTypeRegistry([
        resourceType(TypeUrl.address, AddressCodec),
        resourceType(TypeUrl.authorization, AuthorizationCodec),
        ...(opts.waypoints !== undefined ? envoyResourceTypes() : []),
      ]),
      source: this.#wdsSource,
      sourceFor: client => {
        const waypoints = opts.waypoints;
        const wp = client.waypoint;
        if (waypoints === undefined || wp === undefined) return this.#wdsSource;
        // A waypoint gets its own Envoy resources, and WDS like any other proxy.
        return {
          resources: typeUrl =>
            isEnvoyTypeUrl(typeUrl)
              ? waypoints.resourcesFor(wp, typeUrl)
              : this.#wdsSource.resources(typeUrl),
        };
      },
      authenticate: request => this.#authenticate(request),
      ...(opts.debug === undefined
        ? {}
        : {
            generate: (client: ProxyClient, typeUrl: string, resourceNames: readonly string[]) =>
              this.#answerDebug(client, typeUrl, resourceNames),
          }),
      observer: {
        connected: c => {
          metrics.connectedProxies.set(this.#ads.connectionCount);
          log.info({ proxy: c.id, node: c.client.proxy.nodeName, protocol: c.protocol }, 'proxy connected');
        },
        disconnected: c => {
          metrics.connectedProxies.set(this.#ads.connectionCount);
          log.info({ proxy: c.id }, 'proxy disconnected');
        },
        sent: (_c, typeUrl) => {
          metrics.pushes.inc({ type: typeUrl });
        },
        nack: (c, typeUrl, nonce, message) => {
          metrics.nacks.inc({ type: typeUrl });
          log.warn(
            { proxy: c.id, typeUrl, nonce, message },
            'proxy rejected (NACKed) a response; not resending',
          );
        },
        unknownType: (c, typeUrl) => {
          log.warn({ proxy: c.id, typeUrl }, 'ignoring a request for an unsupported type URL');
        },
        failed: (c, message) => {
          log.error({ proxy: c?.id, err: message }, 'xDS stream failed');
        },
      },
    });
  }

  /** Registers the ADS service (delta and SotW) on a grpc-js server. */
  register(server: grpc.Server): void {
    this.#ads.register(server);
  }

  get connectionCount(): number {
    return this.#ads.connectionCount;
  }

  /** Sends a debounced batch of changes to every connected proxy. */
  push(batch: PushBatch): void {
    const pushed = this.#ads.push(toResourceChanges(batch));
    if (pushed === 0) return;
    const seconds = (this.#timers.now() - batch.firstQueuedAt) / 1000;
    for (let i = 0; i < pushed; i++) {
      this.#opts.metrics.pushTime.observe({ type: 'wds' }, seconds);
      this.#opts.metrics.convergenceTime.observe(seconds);
    }
  }

  /** Sends a debounced batch of waypoint changes to the proxies of those waypoints only. */
  pushWaypoints(batch: WaypointBatch): number {
    const pushed = this.#ads.push(
      batch.changes,
      c => c.waypoint !== undefined && batch.waypoints.has(c.waypoint),
    );
    const seconds = (this.#timers.now() - batch.firstQueuedAt) / 1000;
    for (let i = 0; i < pushed; i++) this.#opts.metrics.pushTime.observe({ type: 'waypoint' }, seconds);
    return pushed;
  }

  /** Per-proxy sync state, like upstream `/debug/syncz`. */
  syncz(): ConnectionStatus[] {
    return this.#ads.syncStatus().map(c => ({
      connectionId: c.connectionId,
      protocol: c.protocol,
      proxy: c.client.proxy,
      identity: c.client.identity,
      connectedAt: c.connectedAt,
      backpressured: c.backpressured,
      types: c.types,
    }));
  }

  /** Ends every open stream (on shutdown). */
  closeAll(): void {
    this.#ads.closeAll();
  }

  #answerDebug(
    client: ProxyClient,
    typeUrl: string,
    resourceNames: readonly string[],
  ): GeneratedResponse | undefined {
    const debug = this.#opts.debug;
    if (debug === undefined) return undefined;
    const answer = answerDebugRequest({
      typeUrl,
      resourceNames,
      caller: client.identity,
      systemNamespace: debug.systemNamespace,
      connections: this.syncz(),
      controlPlane: debug.controlPlane,
    });
    if (answer !== undefined) {
      this.#opts.logger.debug(
        { proxy: client.proxy.id, typeUrl, resources: answer.resources.length },
        'answered a debug request',
      );
    }
    return answer;
  }

  async #authenticate(request: StreamAuthRequest): Promise<AuthDecision<ProxyClient>> {
    const log = this.#opts.logger;
    const parsed = parseNode(request.node, { enableAmbient: this.#opts.enableAmbient });
    if (!parsed.ok) {
      log.warn({ err: parsed.error.message }, 'rejecting xDS stream: invalid node');
      return { ok: false, code: GrpcStatus.INVALID_ARGUMENT, message: parsed.error.message };
    }
    const proxy = parsed.value;
    const waypoint = this.#opts.waypoints === undefined ? undefined : waypointOfProxy(proxy);
    if (!this.#opts.requireAuth)
      return { ok: true, client: { proxy, identity: undefined, waypoint }, label: proxy.id };
    const refuse = (message: string): AuthDecision<ProxyClient> => {
      this.#opts.metrics.authFailures.inc({ service: 'xds' });
      return { ok: false, code: GrpcStatus.UNAUTHENTICATED, message };
    };
    const auth = await authenticateBearer(
      request.metadata.get('authorization')[0],
      this.#opts.reviewer,
      this.#opts.audiences,
    );
    if (!auth.ok) {
      log.warn({ proxy: proxy.id, err: auth.error.message }, 'rejecting xDS stream: unauthenticated');
      return refuse(auth.error.message);
    }
    const identity = auth.identity;
    if (identity.namespace !== proxy.namespace) {
      log.warn(
        { proxy: proxy.id, tokenNamespace: identity.namespace },
        'rejecting xDS stream: namespace mismatch',
      );
      return refuse(
        `authentication failed: token namespace ${identity.namespace} is not the proxy namespace ${proxy.namespace}`,
      );
    }
    if (proxy.serviceAccount !== '' && proxy.serviceAccount !== identity.serviceAccount) {
      return refuse('authentication failed: token service account does not match SERVICE_ACCOUNT');
    }
    return { ok: true, client: { proxy, identity, waypoint }, label: proxy.id };
  }
}
