/**
 * What the xDS server needs to serve waypoints: the Envoy resource types (resources are stored
 * encoded, so encoding is the identity), which waypoint a connecting proxy is, and a debounced
 * queue of waypoint changes.
 */
import { Label, ProxyType } from '@ambient-mesh/mesh-api';
import {
  PushQueue,
  type PushBatch,
  type ResourceChanges,
  type ResourceType,
  type Timers,
} from '@ambient-mesh/xds';
import type { JsonValue } from '@ambient-mesh/xds-types';
import { ENVOY_TYPE_URLS, type EnvoyTypeUrl } from './envoy-protos.ts';
import type { WaypointChange } from './waypoint-index.ts';

/** The four Envoy types, for resources the waypoint index has already encoded. */
export function envoyResourceTypes(): ResourceType<Uint8Array>[] {
  return ENVOY_TYPE_URLS.map(typeUrl => ({
    typeUrl,
    encode: (bytes: Uint8Array) => bytes,
    decode: (bytes: Uint8Array) => bytes,
  }));
}

export const ENVOY_TYPES: ReadonlySet<string> = new Set<string>(ENVOY_TYPE_URLS);
export function isEnvoyTypeUrl(typeUrl: string): typeUrl is EnvoyTypeUrl {
  return ENVOY_TYPES.has(typeUrl);
}

/** Proxy types that get Envoy xDS: waypoints (`waypoint~`) and ingress gateways (`router~`). */
export const ENVOY_PROXY_TYPES: ReadonlySet<string> = new Set([ProxyType.waypoint, ProxyType.router]);

/** The facts of a proxy the waypoint lookup reads (istiod's parsed node). */
export interface ProxyIdentity {
  readonly type: string;
  readonly namespace: string;
  readonly podName: string;
  readonly metadata: Readonly<Record<string, JsonValue>>;
}

/**
 * The `namespace/name` of the Gateway a waypoint or gateway proxy runs for: its pod's
 * `gateway.networking.k8s.io/gateway-name` label (node metadata `LABELS`), else `WORKLOAD_NAME`
 * (the Deployment, named after the Gateway), else the pod name without its ReplicaSet suffixes.
 * Undefined for other proxy types.
 */
export function waypointOfProxy(proxy: ProxyIdentity): string | undefined {
  if (!ENVOY_PROXY_TYPES.has(proxy.type)) return undefined;
  const labels = proxy.metadata.LABELS;
  const fromLabel =
    typeof labels === 'object' && labels !== null && !Array.isArray(labels)
      ? (labels as Readonly<Record<string, JsonValue>>)[Label.gatewayName]
      : undefined;
  if (typeof fromLabel === 'string' && fromLabel !== '') return `${proxy.namespace}/${fromLabel}`;
  const workload = proxy.metadata.WORKLOAD_NAME;
  // Without LABELS (a proxy without the istio-podinfo volume): an ingress gateway's Deployment is `<gateway>-istio`.
  if (proxy.type === ProxyType.router && typeof workload === 'string' && workload.endsWith('-istio'))
    return `${proxy.namespace}/${workload.slice(0, -'-istio'.length)}`;
  if (typeof workload === 'string' && workload !== '') return `${proxy.namespace}/${workload}`;
  const parts = proxy.podName.split('-');
  const name = parts.length > 2 ? parts.slice(0, -2).join('-') : proxy.podName;
  return `${proxy.namespace}/${name}`;
}

/** The pseudo type URL under which a batch carries the changed waypoints' keys. */
const WAYPOINT_KEYS = 'istio.io/waypoint-keys';

export interface WaypointBatch {
  readonly waypoints: ReadonlySet<string>;
  readonly changes: ResourceChanges;
  readonly firstQueuedAt: number;
}

/** Debounces waypoint changes (the xds package's queue, with the waypoint keys riding along). */
export class WaypointPushQueue {
  readonly #queue: PushQueue;

  constructor(opts: {
    readonly debounceAfterMs: number;
    readonly debounceMaxMs: number;
    readonly timers?: Timers;
    readonly flush: (batch: WaypointBatch) => void;
  }) {
    this.#queue = new PushQueue({
      debounceAfterMs: opts.debounceAfterMs,
      debounceMaxMs: opts.debounceMaxMs,
      ...(opts.timers !== undefined ? { timers: opts.timers } : {}),
      flush: (batch: PushBatch) => {
        const changes = new Map(batch.changes);
        const waypoints = changes.get(WAYPOINT_KEYS) ?? new Set<string>();
        changes.delete(WAYPOINT_KEYS);
        opts.flush({ waypoints, changes, firstQueuedAt: batch.firstQueuedAt });
      },
    });
  }

  enqueue(change: WaypointChange): void {
    const merged = new Map<string, ReadonlySet<string>>(change.changes);
    merged.set(WAYPOINT_KEYS, change.waypoints);
    this.#queue.enqueue(merged);
  }

  close(): void {
    this.#queue.close();
  }
}
