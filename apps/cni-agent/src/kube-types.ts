/**
 * The agent's own view of Pods and Namespaces: the few fields enrolment needs, converted from the
 * Kubernetes objects at the boundary (see `kube-client.ts`), so the rules and the reconciler are
 * tested with plain literals.
 */

export interface PodView {
  /** `metadata.uid`: the ZDS workload uid. */
  readonly uid: string;
  readonly name: string;
  readonly namespace: string;
  readonly nodeName: string;
  readonly serviceAccount: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  /** `status.podIPs`, in order. */
  readonly ips: readonly string[];
  /** `status.phase` (`Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`). */
  readonly phase: string;
  /** `metadata.deletionTimestamp` is set. */
  readonly deleting: boolean;
  /** `spec.hostNetwork`: such pods have no netns of their own. */
  readonly hostNetwork: boolean;
}

export interface NamespaceView {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** `namespace/name`, for logs. */
export function podKey(pod: Pick<PodView, 'namespace' | 'name'>): string {
  return `${pod.namespace}/${pod.name}`;
}
