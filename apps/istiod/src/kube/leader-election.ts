/**
 * istiod's leader elections: one Lease per lock, named as upstream istiod names them, in istiod's
 * namespace. Every replica serves xDS and the CA; only the leader of a lock runs what the lock
 * guards (status writers, controllers that create objects). Components take a `Leadership`
 * (`isLeader()`, `onChange`) from the composition root's `leadership(lock)`.
 */
import { KubeClient, LeaderElector, alwaysLeader } from '@ambient-mesh/kube';
import type { KubeConfigHandle as KubeConfig, Leadership, LeaderElectorLogger } from '@ambient-mesh/kube';

/** Upstream istiod's lock names (`pilot/pkg/leaderelection`). */
export const LeaseName = {
  /** Status of Istio config objects (our AuthorizationPolicy `ZtunnelAccepted` condition). */
  status: 'istio-status-leader',
  /** Status of gateway.networking.k8s.io objects. */
  gatewayStatus: 'istio-gateway-status-leader',
  /** The controller deploying Gateways (waypoints): per revision, a Lease upstream too. */
  gatewayDeployment: (revision = 'default'): string => `istio-gateway-deployment-${revision}`,
  /** The node untaint controller (`cni.istio.io/not-ready`). */
  nodeUntaint: 'istio-node-untaint',
  /** Legacy name kept by upstream for Ingress syncing. */
  ingress: 'istio-leader',
} as const;

/** One lock's campaign: started once by the composition root, released on shutdown. */
export interface Election extends Leadership {
  start(): void;
  stop(): Promise<void>;
}

/** Makes the election of one lock. */
export type Elect = (lease: string, logger: LeaderElectorLogger) => Election;

/** Without Kubernetes (tests, one embedded istiod): always the leader. */
export const staticElection: Election = Object.freeze({
  ...alwaysLeader,
  start: () => undefined,
  stop: () => Promise.resolve(),
});

/** Elections over Leases in `namespace`, as `identity` (the pod name). */
export function kubeElection(
  kc: KubeConfig,
  namespace: string,
  identity: string,
  leaseDurationMs?: number,
): Elect {
  const client = new KubeClient(kc);
  return (lease, logger) =>
    new LeaderElector({
      client,
      namespace,
      name: lease,
      identity,
      logger,
      ...(leaseDurationMs === undefined ? {} : { leaseDurationMs }),
    });
}
