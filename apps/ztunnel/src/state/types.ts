/**
 * Validated domain types of the mesh state ztunnel serves from. They are produced only by the
 * converters (`convert-address.ts`, `convert-policy.ts`) and are immutable once built. IPs are
 * canonical strings (`10.0.0.1`, `fd00::1`); enums are string unions.
 */

export type TunnelProtocol = 'NONE' | 'HBONE';
export type WorkloadStatus = 'HEALTHY' | 'UNHEALTHY';
export type WorkloadType = 'deployment' | 'cronjob' | 'pod' | 'job';
export type NetworkMode = 'STANDARD' | 'HOST_NETWORK';
export type AppTunnelProtocol = 'NONE' | 'PROXY';
export type LbScope = 'REGION' | 'ZONE' | 'SUBZONE' | 'NODE' | 'CLUSTER' | 'NETWORK';
export type LbMode = 'UNSPECIFIED' | 'STRICT' | 'FAILOVER';
export type LbHealthPolicy = 'ONLY_HEALTHY' | 'ALLOW_ALL';
export type IpFamilies = 'AUTOMATIC' | 'IPV4_ONLY' | 'IPV6_ONLY' | 'DUAL';

export interface NetworkAddress {
  readonly network: string;
  readonly address: string;
}

export type GatewayDestination =
  | { readonly kind: 'hostname'; readonly namespace: string; readonly hostname: string }
  | { readonly kind: 'address'; readonly network: string; readonly address: string };

export interface GatewayAddress {
  readonly destination: GatewayDestination;
  readonly hboneMtlsPort: number;
}

export interface PortMapping {
  readonly servicePort: number;
  /** 0 means a named target port, resolved per workload. */
  readonly targetPort: number;
}

export interface Locality {
  readonly region: string;
  readonly zone: string;
  readonly subzone: string;
}

export interface Workload {
  readonly uid: string;
  readonly name: string;
  readonly namespace: string;
  readonly addresses: readonly string[];
  readonly hostname: string;
  readonly network: string;
  readonly tunnelProtocol: TunnelProtocol;
  readonly trustDomain: string;
  readonly serviceAccount: string;
  /** `spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>`. */
  readonly identity: string;
  readonly waypoint: GatewayAddress | undefined;
  readonly networkGateway: GatewayAddress | undefined;
  readonly node: string;
  readonly canonicalName: string;
  readonly canonicalRevision: string;
  readonly workloadType: WorkloadType;
  readonly workloadName: string;
  readonly nativeTunnel: boolean;
  readonly applicationTunnel: { readonly protocol: AppTunnelProtocol; readonly port: number } | undefined;
  /** Service key `<namespace>/<hostname>` → per-workload port overrides. */
  readonly services: Readonly<Record<string, readonly PortMapping[]>>;
  readonly authorizationPolicies: readonly string[];
  readonly status: WorkloadStatus;
  readonly clusterId: string;
  readonly locality: Locality;
  readonly networkMode: NetworkMode;
}

export interface LoadBalancing {
  readonly routingPreference: readonly LbScope[];
  readonly mode: LbMode;
  readonly healthPolicy: LbHealthPolicy;
}

export interface Service {
  readonly name: string;
  readonly namespace: string;
  readonly hostname: string;
  /** `<namespace>/<hostname>`, the xDS resource name. */
  readonly key: string;
  readonly addresses: readonly NetworkAddress[];
  readonly ports: readonly PortMapping[];
  readonly subjectAltNames: readonly string[];
  readonly waypoint: GatewayAddress | undefined;
  readonly loadBalancing: LoadBalancing | undefined;
  readonly ipFamilies: IpFamilies;
}

export type Address =
  | { readonly kind: 'workload'; readonly workload: Workload }
  | { readonly kind: 'service'; readonly service: Service };

export type StringMatch =
  { readonly kind: 'exact' | 'prefix' | 'suffix'; readonly value: string } | { readonly kind: 'presence' };

export interface Cidr {
  readonly address: string;
  readonly prefixLength: number;
}

export interface ServiceAccountMatch {
  readonly namespace: string;
  readonly serviceAccount: string;
}

export interface PolicyMatch {
  readonly namespaces: readonly StringMatch[];
  readonly notNamespaces: readonly StringMatch[];
  readonly principals: readonly StringMatch[];
  readonly notPrincipals: readonly StringMatch[];
  readonly sourceIps: readonly Cidr[];
  readonly notSourceIps: readonly Cidr[];
  readonly destinationIps: readonly Cidr[];
  readonly notDestinationIps: readonly Cidr[];
  readonly destinationPorts: readonly number[];
  readonly notDestinationPorts: readonly number[];
  readonly serviceAccounts: readonly ServiceAccountMatch[];
  readonly notServiceAccounts: readonly ServiceAccountMatch[];
}

export interface PolicyClause {
  readonly matches: readonly PolicyMatch[];
}

export interface PolicyRule {
  readonly clauses: readonly PolicyClause[];
}

export type PolicyScope = 'GLOBAL' | 'NAMESPACE' | 'WORKLOAD_SELECTOR';
export type PolicyAction = 'ALLOW' | 'DENY';

export interface Authorization {
  readonly name: string;
  readonly namespace: string;
  /** `<namespace>/<name>`, the xDS resource name. */
  readonly key: string;
  readonly scope: PolicyScope;
  readonly action: PolicyAction;
  readonly rules: readonly PolicyRule[];
}
