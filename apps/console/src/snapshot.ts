/**
 * The Kubernetes objects the console reads, narrowed to the fields it uses. The informers' caches
 * hold raw objects; `snapshot()` hands the pure view functions these read-only shapes.
 */

export interface Meta {
  readonly name: string;
  readonly namespace?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly ownerReferences?: readonly { readonly kind: string; readonly name: string }[];
}

export interface Condition {
  readonly type: string;
  readonly status: string;
  readonly reason?: string;
  readonly message?: string;
}

export interface PodObject {
  readonly metadata: Meta;
  readonly spec?: {
    readonly nodeName?: string;
    readonly serviceAccountName?: string;
    readonly containers?: readonly {
      readonly name: string;
      readonly ports?: readonly { readonly containerPort: number }[];
    }[];
  };
  readonly status?: {
    readonly phase?: string;
    readonly podIP?: string;
    readonly conditions?: readonly Condition[];
  };
}

export interface NamespaceObject {
  readonly metadata: Meta;
}

export interface ServiceObject {
  readonly metadata: Meta;
  readonly spec?: { readonly selector?: Readonly<Record<string, string>> };
}

export interface GatewayObject {
  readonly metadata: Meta;
  readonly spec?: { readonly gatewayClassName?: string };
  readonly status?: { readonly conditions?: readonly Condition[] };
}

export interface PolicyTargetRef {
  readonly group?: string;
  readonly kind: string;
  readonly name: string;
}

export interface AuthorizationPolicyObject {
  readonly metadata: Meta;
  readonly spec?: {
    readonly action?: string;
    readonly selector?: { readonly matchLabels?: Readonly<Record<string, string>> };
    readonly targetRef?: PolicyTargetRef;
    readonly targetRefs?: readonly PolicyTargetRef[];
    readonly rules?: readonly {
      readonly from?: readonly { readonly source?: Readonly<Record<string, unknown>> }[];
      readonly to?: readonly { readonly operation?: Readonly<Record<string, unknown>> }[];
      readonly when?: readonly {
        readonly key?: string;
        readonly values?: readonly string[];
        readonly notValues?: readonly string[];
      }[];
    }[];
  };
  readonly status?: { readonly conditions?: readonly Condition[] };
}

export interface PeerAuthenticationObject {
  readonly metadata: Meta;
  readonly spec?: Readonly<Record<string, unknown>>;
  readonly status?: { readonly conditions?: readonly Condition[] };
}

/** Everything the views are computed from, at one instant. */
export interface MeshSnapshot {
  readonly namespaces: readonly NamespaceObject[];
  readonly pods: readonly PodObject[];
  readonly services: readonly ServiceObject[];
  readonly gateways: readonly GatewayObject[];
  readonly authorizationPolicies: readonly AuthorizationPolicyObject[];
  /** Optional in snapshots built by hand (tests); the informers always fill it. */
  readonly peerAuthentications?: readonly PeerAuthenticationObject[];
}

export const EMPTY_SNAPSHOT: MeshSnapshot = {
  namespaces: [],
  pods: [],
  services: [],
  gateways: [],
  authorizationPolicies: [],
  peerAuthentications: [],
};
