/**
 * HTTPRoute and GRPCRoute status, as upstream writes it (Istio 1.27 `gateway/conversion.go`):
 * `status.parents`, one entry per parentRef with `controllerName: istio.io/gateway-controller`
 * and the `Accepted` and `ResolvedRefs` conditions the waypoint index computed (reasons as
 * upstream: `Accepted`, `NoMatchingParent`, `UnsupportedValue`, `ResolvedRefs`,
 * `BackendNotFound`, `RefNotPermitted`, `InvalidKind`), plus ambient's `ResolvedWaypoints` on every
 * parent, waypoint or ingress (as upstream with ambient on). Other controllers' parent entries are kept.
 *
 * `RouteStatusWriter` keeps the latest wanted status of every route (on every replica) and writes
 * it only while this istiod leads, skipping a status it already wrote; `resync()` (leadership
 * gained) writes them all again. `RouteAttachments` counts, per Gateway listener, the routes
 * accepted on it (`status.listeners[].attachedRoutes`).
 */
import { errorMessage } from '@ambient-mesh/errors';
import type { Condition } from '@ambient-mesh/kube';
import type { Logger, Timers } from '@ambient-mesh/runtime';
import type { RouteParentStatus } from '../waypoint/resolve-route.ts';
import type { ParentRefInput, RouteKind } from '../waypoint/types.ts';
import { WriteQueue } from './write-queue.ts';

/** The route kinds whose status istiod writes (VirtualServices have none of this shape). */
export type StatusRouteKind = Exclude<RouteKind, 'VirtualService'>;

export const ROUTE_OWNED_CONDITIONS: readonly string[] = ['Accepted', 'ResolvedRefs', 'ResolvedWaypoints'];
const GATEWAY_GROUP = 'gateway.networking.k8s.io';

/** One `status.parents[]` entry as the API server stores it. */
export interface RouteParentWire {
  readonly parentRef: {
    readonly group: string;
    readonly kind: string;
    readonly name: string;
    readonly namespace?: string;
    readonly port?: number;
    readonly sectionName?: string;
  };
  readonly controllerName: string;
  readonly conditions: readonly Condition[];
}

/** Writes our parent entries into a route's status, keeping other controllers'. */
export type RouteStatusPatcher = (
  kind: StatusRouteKind,
  namespace: string,
  name: string,
  parents: readonly RouteParentWire[],
) => Promise<void>;

/**
 * The wire form of computed parents; the namespace is named when it is not the route's, or when
 * the route's own parentRef names it (`namespaceWritten`: upstream echoes the parentRef as written).
 */
export function routeParentsWire(
  routeNamespace: string,
  parents: readonly RouteParentStatus[],
  namespaceWritten: (p: RouteParentStatus) => boolean = () => false,
): RouteParentWire[] {
  return parents.map(p => ({
    parentRef: {
      group: p.parentRef.group,
      kind: p.parentRef.kind,
      name: p.parentRef.name,
      ...(p.parentRef.namespace === routeNamespace && !namespaceWritten(p)
        ? {}
        : { namespace: p.parentRef.namespace }),
      ...(p.parentRef.port === undefined ? {} : { port: p.parentRef.port }),
      ...(p.parentRef.sectionName === undefined ? {} : { sectionName: p.parentRef.sectionName }),
    },
    controllerName: p.controllerName,
    conditions: p.conditions.map(c => ({ ...c })),
  }));
}

/** The same parent, with group, kind and namespace defaulted as Gateway API does. */
export function sameParentRef(
  routeNamespace: string,
  a: Partial<RouteParentWire['parentRef']>,
  b: Partial<RouteParentWire['parentRef']>,
): boolean {
  const norm = (r: Partial<RouteParentWire['parentRef']>): string =>
    JSON.stringify([
      r.group ?? GATEWAY_GROUP,
      r.kind ?? 'Gateway',
      r.name ?? '',
      r.namespace ?? routeNamespace,
      r.port ?? null,
      r.sectionName ?? null,
    ]);
  return norm(a) === norm(b);
}

export interface RouteStatusWriterOptions {
  readonly patch: RouteStatusPatcher;
  readonly logger: Logger;
  readonly timers: Timers;
  /** Leader gating seam (default: always write). */
  readonly isLeader?: () => boolean;
  readonly onWriteFailure?: () => void;
}

interface Wanted {
  readonly kind: StatusRouteKind;
  readonly namespace: string;
  readonly name: string;
  readonly parents: readonly RouteParentWire[];
  readonly fingerprint: string;
}

export class RouteStatusWriter {
  readonly #opts: RouteStatusWriterOptions;
  readonly #queue: WriteQueue;
  readonly #latest = new Map<string, Wanted>();
  /** What this replica last wrote per route (cleared when leadership is regained). */
  readonly #written = new Map<string, string>();

  constructor(opts: RouteStatusWriterOptions) {
    this.#opts = opts;
    this.#queue = new WriteQueue({
      timers: opts.timers,
      onGiveUp: (key, err, attempts) => {
        opts.onWriteFailure?.();
        opts.logger.warn({ route: key, err: errorMessage(err), attempts }, 'could not write route status');
      },
    });
  }

  /** The computed parents of a route (`namespace/name`). */
  update(
    kind: StatusRouteKind,
    key: string,
    parents: readonly RouteParentStatus[],
    namespaceWritten?: (p: RouteParentStatus) => boolean,
  ): void {
    const slash = key.indexOf('/');
    const namespace = key.slice(0, slash);
    const name = key.slice(slash + 1);
    const wire = routeParentsWire(namespace, parents, namespaceWritten);
    const id = `${kind}/${key}`;
    const wanted: Wanted = { kind, namespace, name, parents: wire, fingerprint: JSON.stringify(wire) };
    this.#latest.set(id, wanted);
    this.#write(id, wanted);
  }

  /** The route was deleted: nothing more is written for it. */
  forget(kind: StatusRouteKind, key: string): void {
    const id = `${kind}/${key}`;
    this.#latest.delete(id);
    this.#written.delete(id);
  }

  /** Writes every route's latest status again (this replica just became the leader). */
  resync(): void {
    this.#written.clear();
    for (const [id, wanted] of this.#latest) this.#write(id, wanted);
  }

  idle(): Promise<void> {
    return this.#queue.idle();
  }

  close(): void {
    this.#queue.close();
  }

  #write(id: string, wanted: Wanted): void {
    if (!(this.#opts.isLeader?.() ?? true) || this.#written.get(id) === wanted.fingerprint) return;
    this.#queue.enqueue(id, async () => {
      if (this.#latest.get(id) !== wanted) return;
      await this.#opts.patch(wanted.kind, wanted.namespace, wanted.name, wanted.parents);
      this.#written.set(id, wanted.fingerprint);
    });
  }
}

/** A Gateway listener as attachment counting needs it. */
export interface ListenerRef {
  readonly name: string;
  readonly port: number;
}

/** A route attached to a Gateway: to one listener (`sectionName`), or to those on `port`, or to all. */
export interface RouteAttachment {
  readonly gateway: string;
  readonly sectionName?: string;
  readonly port?: number;
}

/** Which routes are accepted on which Gateway listeners (for `attachedRoutes`). */
export class RouteAttachments {
  readonly #byRoute = new Map<string, readonly RouteAttachment[]>();
  readonly #listeners = new Set<(gateways: ReadonlySet<string>) => void>();

  /** The computed parents of a route: its Gateway parents with `Accepted=True` count. */
  record(kind: StatusRouteKind, key: string, parents: readonly RouteParentStatus[]): void {
    const next = parents.filter(isAcceptedGatewayParent).map(p => attachmentOf(p.parentRef));
    this.#set(`${kind}/${key}`, next);
  }

  forget(kind: StatusRouteKind, key: string): void {
    this.#set(`${kind}/${key}`, []);
  }

  /** The attachments of a route, given directly (ingress parents: the listeners that accepted it). */
  set(kind: StatusRouteKind, key: string, attachments: readonly RouteAttachment[]): void {
    this.#set(`${kind}/${key}`, attachments);
  }

  /** Routes attached to one listener of the Gateway (`namespace/name`). */
  attachedRoutes(gateway: string, listener: ListenerRef): number {
    let n = 0;
    for (const list of this.#byRoute.values())
      if (
        list.some(
          a =>
            a.gateway === gateway &&
            (a.sectionName === undefined || a.sectionName === listener.name) &&
            (a.port === undefined || a.port === listener.port),
        )
      )
        n++;
    return n;
  }

  /** Called with the Gateways whose attachments changed; returns an unsubscribe. */
  onChange(listener: (gateways: ReadonlySet<string>) => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  #set(id: string, next: readonly RouteAttachment[]): void {
    const prev = this.#byRoute.get(id) ?? [];
    if (JSON.stringify(prev) === JSON.stringify(next)) return;
    if (next.length === 0) this.#byRoute.delete(id);
    else this.#byRoute.set(id, next);
    const changed = new Set([...prev, ...next].map(a => a.gateway));
    for (const l of [...this.#listeners]) l(changed);
  }
}

export function isAcceptedGatewayParent(p: RouteParentStatus): boolean {
  return (
    p.parentRef.kind === 'Gateway' &&
    p.parentRef.group === GATEWAY_GROUP &&
    p.conditions.some(c => c.type === 'Accepted' && c.status === 'True')
  );
}

export function attachmentOf(ref: ParentRefInput): RouteAttachment {
  return {
    gateway: `${ref.namespace}/${ref.name}`,
    ...(ref.sectionName === undefined ? {} : { sectionName: ref.sectionName }),
    ...(ref.port === undefined ? {} : { port: ref.port }),
  };
}
