/**
 * The Gateway side of istiod as one unit for the composition root: the Gateway controller
 * (classes, deployments, Gateway status), the `istio.io/WaypointBound` writer and the
 * `WaypointBindings` index, all fed from the WDS index's binding hook. Without Kubernetes
 * capabilities (`deps` undefined) only the bindings index exists.
 */
import type { Logs, Timers } from '@ambient-mesh/runtime';
import type { WaypointBinding } from './binding.ts';
import { GatewayController, type GatewayInformerFactory, type GatewayKubeApi } from './controller.ts';
import { WaypointBindingIndex, type WaypointBindings } from './waypoint-bindings.ts';
import { WaypointStatusWriter, type ServiceConditionPatcher } from './waypoint-status.ts';
import type { WaypointBindingTarget } from '../wds/wds-index.ts';

/** Kubernetes capabilities of the Gateway side (`kube-gateway-api.ts`). */
export interface GatewayDeps {
  readonly api: GatewayKubeApi & { readonly patchServiceConditions: ServiceConditionPatcher };
  readonly informers: GatewayInformerFactory;
}

export interface GatewaySideOptions {
  readonly deps: GatewayDeps | undefined;
  readonly image: string;
  readonly podNamespace: string;
  readonly domain: string;
  readonly clusterId: string;
  readonly trustDomain: string;
  readonly logs: Logs;
  readonly timers: Timers;
  /** Leader gating seam: writers run only while this answers true (default: always). */
  readonly isLeader?: () => boolean;
  readonly onWriteFailure?: () => void;
}

export interface GatewaySide {
  readonly bindings: WaypointBindings;
  readonly controller: GatewayController | undefined;
  /** The WDS index's `onWaypointBinding` hook. */
  onWaypointBinding(target: WaypointBindingTarget, binding: WaypointBinding): void;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createGatewaySide(opts: GatewaySideOptions): GatewaySide {
  const bindings = new WaypointBindingIndex();
  const logger = opts.logs.for('gateway');
  const leader = opts.isLeader === undefined ? {} : { isLeader: opts.isLeader };
  const failure = opts.onWriteFailure === undefined ? {} : { onWriteFailure: opts.onWriteFailure };
  const deps = opts.deps;
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
  const controller =
    deps === undefined
      ? undefined
      : new GatewayController({
          api: deps.api,
          informers: deps.informers,
          render: {
            image: opts.image,
            discoveryAddress: `istiod.${opts.podNamespace}.svc:15012`,
            clusterId: opts.clusterId,
            trustDomain: opts.trustDomain,
          },
          domain: opts.domain,
          logger,
          timers: opts.timers,
          ...leader,
          ...failure,
        });
  let started: Promise<void> | undefined;
  return {
    bindings,
    controller,
    onWaypointBinding(target, binding) {
      bindings.record(target.kind, target.key, binding);
      if (target.kind === 'service') status?.update(target.obj, binding);
    },
    start() {
      started ??= (controller?.start() ?? Promise.resolve()).catch((err: unknown) => {
        logger.error({ err: String(err) }, 'gateway controller failed to start');
      });
      return started;
    },
    async stop() {
      status?.close();
      await controller?.stop();
    },
  };
}
