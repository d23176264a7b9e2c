/**
 * The Gateway side of istiod as one unit for the composition root: the Gateway controller
 * (classes, deployments, Gateway status with listeners' `attachedRoutes`), the
 * `istio.io/WaypointBound` writers (Services, ServiceEntries) and the `WaypointBindings` index, fed from the WDS index's
 * binding hook, and the HTTPRoute/GRPCRoute status writer, fed from the waypoint index's route
 * status hook, merged with the ingress route index (`ingress-routes.ts`) for parents that are
 * ingress Gateways. Without Kubernetes capabilities (`deps` undefined) only the indexes exist.
 */
import type { Logs, Timers } from '@ambient-mesh/runtime';
import type { RouteParentStatus } from '../waypoint/resolve-route.ts';
import type { RouteKind } from '../waypoint/types.ts';
import type { WaypointBinding } from './binding.ts';
import { GatewayController, type GatewayInformerFactory, type GatewayKubeApi } from './controller.ts';
import { DEFAULT_REVISION, istiodServiceName } from './revision-scope.ts';
import { IngressRouteIndex, type IngressParent } from './ingress-routes.ts';
import {
  attachmentOf,
  isAcceptedGatewayParent,
  RouteAttachments,
  RouteStatusWriter,
  sameParentRef,
  type RouteStatusPatcher,
  type StatusRouteKind,
} from './route-status.ts';
import { WaypointBindingIndex, type WaypointBindings } from './waypoint-bindings.ts';
import { WaypointStatusWriter, type ServiceConditionPatcher } from './waypoint-status.ts';
import type { WaypointBindingTarget } from '../wds/wds-index.ts';

/** Kubernetes capabilities of the Gateway side (`kube-gateway-api.ts`). */
export interface GatewayDeps {
  readonly api: GatewayKubeApi & {
    readonly patchServiceConditions: ServiceConditionPatcher;
    /** Writes `istio.io/WaypointBound` on a ServiceEntry; without it ServiceEntries get no condition. */
    readonly patchServiceEntryConditions?: ServiceConditionPatcher;
    readonly patchRouteStatus: RouteStatusPatcher;
  };
  readonly informers: GatewayInformerFactory;
}

export interface GatewaySideOptions {
  readonly deps: GatewayDeps | undefined;
  readonly image: string;
  /** The proxies' `CA_ADDR` when it is not istiod (an external CA server). */
  readonly caAddress?: string;
  readonly podNamespace: string;
  readonly domain: string;
  readonly clusterId: string;
  readonly trustDomain: string;
  /** istiod's revision (`REVISION`): the Gateways it deploys and the address their proxies use. */
  readonly revision?: string;
  readonly logs: Logs;
  readonly timers: Timers;
  /** Leader gating seam: writers run only while this answers true (default: always). */
  readonly isLeader?: () => boolean;
  readonly onWriteFailure?: () => void;
}

export interface GatewaySide {
  readonly bindings: WaypointBindings;
  readonly controller: GatewayController | undefined;
  /** Routes accepted per Gateway listener. */
  readonly routes: RouteAttachments;
  /** The WDS index's `onWaypointBinding` hook. */
  onWaypointBinding(target: WaypointBindingTarget, binding: WaypointBinding): void;
  /** The waypoint index's `onRouteStatus` hook (a VirtualService has no such status). */
  onRouteStatus(kind: RouteKind, key: string, parents: readonly RouteParentStatus[]): void;
  /** The waypoint index's `onRouteDeleted` hook. */
  onRouteDeleted(kind: RouteKind, key: string): void;
  /**
   * This istiod became the leader: every Gateway, route and WaypointBound status is checked and
   * written again.
   */
  resync(): void;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createGatewaySide(opts: GatewaySideOptions): GatewaySide {
  const bindings = new WaypointBindingIndex();
  const routes = new RouteAttachments();
  const logger = opts.logs.for('gateway');
  const leader = opts.isLeader === undefined ? {} : { isLeader: opts.isLeader };
  const failure = opts.onWriteFailure === undefined ? {} : { onWriteFailure: opts.onWriteFailure };
  const deps = opts.deps;
  const revision = opts.revision ?? DEFAULT_REVISION;
  const status =
    deps === undefined
      ? undefined
      : new WaypointStatusWriter({
          patch: deps.api.patchServiceConditions,
          logger,
          timers: opts.timers,
          ...leader,
          ...failure,
        });
  const entryStatus =
    deps?.api.patchServiceEntryConditions === undefined
      ? undefined
      : new WaypointStatusWriter({
          patch: deps.api.patchServiceEntryConditions,
          logger,
          timers: opts.timers,
          ...leader,
          ...failure,
        });
  // Route parents from two sources, merged per route: the waypoint index (Services, waypoints,
  // and every parent of an invalid route) and the ingress index (ingress Gateways, which win).
  const fromWaypoint = new Map<string, readonly RouteParentStatus[]>();
  const fromIngress = new Map<string, readonly IngressParent[]>();
  // Filled in below; the callbacks that use them run only after start().
  const late: { routeStatus?: RouteStatusWriter; controller?: GatewayController } = {};
  const publish = (kind: StatusRouteKind, key: string): void => {
    const id = `${kind}/${key}`;
    const ns = key.slice(0, key.indexOf('/'));
    const ingress = fromIngress.get(id) ?? [];
    const waypoint = (fromWaypoint.get(id) ?? []).filter(
      p => !ingress.some(i => sameParentRef(ns, i.status.parentRef, p.parentRef)),
    );
    routes.set(kind, key, [
      ...waypoint.filter(isAcceptedGatewayParent).map(p => attachmentOf(p.parentRef)),
      ...ingress.flatMap(i =>
        i.listeners.map(l => ({
          gateway: `${i.status.parentRef.namespace}/${i.status.parentRef.name}`,
          sectionName: l,
        })),
      ),
    ]);
    const written = new Set(ingress.filter(i => i.namespaceWritten).map(i => i.status));
    late.routeStatus?.update(kind, key, [...waypoint, ...ingress.map(i => i.status)], p => written.has(p));
  };
  const ingressIndex =
    deps === undefined
      ? undefined
      : new IngressRouteIndex({
          informers: deps.informers,
          domain: opts.domain,
          logger,
          onParents: (kind, key, parents) => {
            const id = `${kind}/${key}`;
            if (parents.length === 0) fromIngress.delete(id);
            else fromIngress.set(id, parents);
            publish(kind, key);
          },
          onRefsChanged: () => {
            late.controller?.refsChanged();
          },
        });
  const controller =
    deps === undefined
      ? undefined
      : new GatewayController({
          api: deps.api,
          informers: deps.informers,
          render: {
            image: opts.image,
            discoveryAddress: `${istiodServiceName(revision)}.${opts.podNamespace}.svc:15012`,
            ...(opts.caAddress === undefined ? {} : { caAddress: opts.caAddress }),
            clusterId: opts.clusterId,
            trustDomain: opts.trustDomain,
            revision,
          },
          revision,
          domain: opts.domain,
          systemNamespace: opts.podNamespace,
          logger,
          timers: opts.timers,
          attachedRoutes: (gateway, listener) => routes.attachedRoutes(gateway, listener),
          ...(ingressIndex === undefined ? {} : { listenerRefs: ingressIndex }),
          ...leader,
          ...failure,
        });
  const routeStatus =
    deps === undefined
      ? undefined
      : new RouteStatusWriter({
          patch: deps.api.patchRouteStatus,
          logger,
          timers: opts.timers,
          ...leader,
          ...failure,
        });
  late.controller = controller;
  late.routeStatus = routeStatus;
  const offRoutes = routes.onChange(gateways => {
    controller?.routesChanged(gateways);
  });
  let started: Promise<void> | undefined;
  return {
    bindings,
    controller,
    routes,
    onWaypointBinding(target, binding) {
      bindings.record(target.kind, target.key, binding);
      if (target.kind === 'service') status?.update(target.obj, binding, target.key);
      else if (target.kind === 'serviceentry') entryStatus?.update(target.obj, binding, target.key);
    },
    onRouteStatus(kind, key, parents) {
      if (kind === 'VirtualService') return;
      fromWaypoint.set(`${kind}/${key}`, parents);
      publish(kind, key);
    },
    onRouteDeleted(kind, key) {
      if (kind === 'VirtualService') return;
      fromWaypoint.delete(`${kind}/${key}`);
      fromIngress.delete(`${kind}/${key}`);
      routes.forget(kind, key);
      routeStatus?.forget(kind, key);
    },
    resync() {
      controller?.resync();
      routeStatus?.resync();
      status?.resync();
      entryStatus?.resync();
    },
    start() {
      started ??= Promise.all([controller?.start(), ingressIndex?.start()])
        .then(() => undefined)
        .catch((err: unknown) => {
          logger.error({ err: String(err) }, 'gateway controller failed to start');
        });
      return started;
    },
    async stop() {
      offRoutes();
      status?.close();
      entryStatus?.close();
      routeStatus?.close();
      await Promise.all([controller?.stop(), ingressIndex?.stop()]);
    },
  };
}
