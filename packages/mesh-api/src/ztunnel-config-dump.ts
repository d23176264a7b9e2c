/**
 * The wire shapes of ztunnel's admin `/config_dump`, as upstream ztunnel 1.27 serializes them
 * (serde camelCase), so upstream istioctl `ztunnel-config` and Kiali decode ours: workloads with
 * `workloadIps` and `protocol`, services with `vips: ["net/ip"]`, a `ports` map and an `endpoints`
 * map keyed by workload uid, waypoints as a `destination` string, policies with nested `rules`
 * lists and externally tagged string matches, decimal certificate serials.
 *
 * ztunnel writes these; `ambientctl` and other readers decode them.
 */
export interface DumpGateway {
  readonly destination: string;
  readonly hboneMtlsPort: number;
}

export interface DumpWorkload {
  readonly uid: string;
  readonly workloadIps: readonly string[];
  readonly waypoint?: DumpGateway;
  readonly networkGateway?: DumpGateway;
  readonly protocol: 'HBONE' | 'TCP';
  readonly networkMode: 'Standard' | 'HostNetwork';
  readonly name: string;
  readonly namespace: string;
  readonly trustDomain: string;
  readonly serviceAccount: string;
  readonly network: string;
  readonly workloadName: string;
  readonly workloadType: string;
  readonly canonicalName: string;
  readonly canonicalRevision: string;
  readonly hostname: string;
  readonly node: string;
  readonly nativeTunnel: boolean;
  readonly applicationTunnel?: { readonly protocol: 'none' | 'proxy'; readonly port?: number };
  readonly authorizationPolicies: readonly string[];
  readonly status: 'Healthy' | 'Unhealthy';
  readonly clusterId: string;
  readonly locality: { readonly region: string; readonly zone: string; readonly subzone: string };
  readonly services: readonly string[];
  readonly capacity: number;
}

export interface DumpEndpoint {
  readonly workloadUid: string;
  readonly port: Readonly<Record<string, number>>;
  readonly status: 'Healthy' | 'Unhealthy';
}

export interface DumpService {
  readonly name: string;
  readonly namespace: string;
  readonly hostname: string;
  readonly vips: readonly string[];
  readonly ports: Readonly<Record<string, number>>;
  readonly endpoints: Readonly<Record<string, DumpEndpoint>>;
  readonly subjectAltNames: readonly string[];
  readonly waypoint?: DumpGateway;
  readonly loadBalancer?: {
    readonly routingPreferences: readonly string[];
    readonly mode: string;
    readonly healthPolicy: string;
  };
  readonly ipFamilies?: string;
}

export type DumpStringMatch =
  | { readonly Exact: string }
  | { readonly Prefix: string }
  | { readonly Suffix: string }
  | { readonly Presence: readonly [] };

export interface DumpPolicyMatch {
  readonly namespaces: readonly DumpStringMatch[];
  readonly notNamespaces: readonly DumpStringMatch[];
  readonly serviceAccounts: readonly { readonly namespace: string; readonly serviceAccount: string }[];
  readonly notServiceAccounts: readonly { readonly namespace: string; readonly serviceAccount: string }[];
  readonly principals: readonly DumpStringMatch[];
  readonly notPrincipals: readonly DumpStringMatch[];
  readonly sourceIps: readonly string[];
  readonly notSourceIps: readonly string[];
  readonly destinationIps: readonly string[];
  readonly notDestinationIps: readonly string[];
  readonly destinationPorts: readonly number[];
  readonly notDestinationPorts: readonly number[];
}

export interface DumpPolicy {
  readonly name: string;
  readonly namespace: string;
  readonly scope: 'Global' | 'Namespace' | 'WorkloadSelector';
  readonly action: 'Allow' | 'Deny';
  /** rules → clauses → matches, as upstream's `Vec<Vec<Vec<RbacMatch>>>`. */
  readonly rules: readonly (readonly (readonly DumpPolicyMatch[])[])[];
  readonly dryRun: boolean;
}

export interface DumpCert {
  readonly pem: string;
  readonly serialNumber: string;
  readonly validFrom: string;
  readonly expirationTime: string;
}

export interface DumpCertificate {
  readonly identity: string;
  readonly state: string;
  readonly certChain: readonly DumpCert[];
  readonly rootCerts: readonly DumpCert[];
}
