/**
 * The part of a Kubernetes Pod the mesh status reads, as our own structural type so the published
 * types need nothing from `@kubernetes/client-node` (whose `V1Pod` fits it).
 */

/** One container's state (`status.containerStatuses[].state`). */
export interface ContainerStateView {
  readonly waiting?: { readonly reason?: string };
  readonly terminated?: { readonly reason?: string; readonly exitCode: number };
}

/** A Pod as the status helpers read it. */
export interface PodView {
  readonly metadata?: { readonly name?: string; readonly namespace?: string; readonly uid?: string };
  readonly spec?: { readonly nodeName?: string };
  readonly status?: {
    readonly phase?: string;
    readonly message?: string;
    readonly podIP?: string;
    readonly conditions?: readonly { readonly type: string; readonly status: string }[];
    readonly containerStatuses?: readonly {
      readonly restartCount: number;
      readonly state?: ContainerStateView;
      readonly lastState?: ContainerStateView;
    }[];
  };
}
