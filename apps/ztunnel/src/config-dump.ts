/**
 * The `/config_dump` document in upstream ztunnel 1.27's JSON shapes (its serde camelCase
 * serialization), so upstream istioctl `ztunnel-config` and Kiali decode it: workloads with
 * `workloadIps` and `protocol`, services with `vips: ["net/ip"]`, a `ports` map and an `endpoints`
 * map keyed by workload uid, waypoints as a `destination` string, policies with nested `rules`
 * lists and externally tagged string matches, decimal certificate serials.
 * Pure: the admin server gathers the sources, this file only reshapes them.
 */
import type {
  DumpGateway,
  DumpWorkload,
  DumpEndpoint,
  DumpService,
  DumpStringMatch,
  DumpPolicyMatch,
  DumpPolicy,
  DumpCert,
  DumpCertificate,
} from '@ambient-mesh/mesh-api';
import type { CertificateDump } from './identity/cert-manager.ts';
import type { LiveConnection, LiveConnections } from './proxy/connection-sink.ts';
import type { ProxyStateReader } from './state/proxy-state.ts';
import type {
  Authorization,
  Cidr,
  GatewayAddress,
  LbScope,
  PolicyMatch,
  PortMapping,
  Service,
  StringMatch,
  Workload,
} from './state/types.ts';
import type { WorkloadStateEntry } from './zds/state-manager.ts';

export type DumpConnection = LiveConnection;
export type DumpConnections = LiveConnections;

export interface DumpWorkloadState {
  readonly info: WorkloadStateEntry['info'];
  readonly state: string;
  readonly connections: DumpConnections;
}

const NO_CONNECTIONS: DumpConnections = { inbound: [], outbound: [] };

function gateway(g: GatewayAddress | undefined): DumpGateway | undefined {
  if (g === undefined) return undefined;
  const d = g.destination;
  const destination = d.kind === 'hostname' ? `${d.namespace}/${d.hostname}` : `${d.network}/${d.address}`;
  return { destination, hboneMtlsPort: g.hboneMtlsPort };
}

function portMap(ports: readonly PortMapping[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of ports) out[String(p.servicePort)] = p.targetPort;
  return out;
}

function healthStatus(s: Workload['status']): 'Healthy' | 'Unhealthy' {
  return s === 'HEALTHY' ? 'Healthy' : 'Unhealthy';
}

export function dumpWorkload(w: Workload): DumpWorkload {
  const waypoint = gateway(w.waypoint);
  const networkGateway = gateway(w.networkGateway);
  return {
    uid: w.uid,
    workloadIps: w.addresses,
    ...(waypoint === undefined ? {} : { waypoint }),
    ...(networkGateway === undefined ? {} : { networkGateway }),
    protocol: w.tunnelProtocol === 'HBONE' ? 'HBONE' : 'TCP',
    networkMode: w.networkMode === 'HOST_NETWORK' ? 'HostNetwork' : 'Standard',
    name: w.name,
    namespace: w.namespace,
    trustDomain: w.trustDomain,
    serviceAccount: w.serviceAccount,
    network: w.network,
    workloadName: w.workloadName,
    workloadType: w.workloadType,
    canonicalName: w.canonicalName,
    canonicalRevision: w.canonicalRevision,
    hostname: w.hostname,
    node: w.node,
    nativeTunnel: w.nativeTunnel,
    ...(w.applicationTunnel === undefined
      ? {}
      : {
          applicationTunnel: {
            protocol: w.applicationTunnel.protocol === 'PROXY' ? 'proxy' : 'none',
            ...(w.applicationTunnel.port === 0 ? {} : { port: w.applicationTunnel.port }),
          },
        }),
    authorizationPolicies: w.authorizationPolicies,
    status: healthStatus(w.status),
    clusterId: w.clusterId,
    locality: w.locality,
    services: Object.keys(w.services),
    capacity: 1,
  };
}

const SCOPE_NAMES: Readonly<Record<LbScope, string>> = {
  REGION: 'Region',
  ZONE: 'Zone',
  SUBZONE: 'Subzone',
  NODE: 'Node',
  CLUSTER: 'Cluster',
  NETWORK: 'Network',
};

const IP_FAMILIES: Readonly<Record<Service['ipFamilies'], string | undefined>> = {
  AUTOMATIC: undefined,
  IPV4_ONLY: 'IPv4',
  IPV6_ONLY: 'IPv6',
  DUAL: 'Dual',
};

export function dumpService(s: Service, state: ProxyStateReader): DumpService {
  const endpoints: Record<string, DumpEndpoint> = {};
  for (const e of state.endpoints(s.key)) {
    // The workload's own mapping wins; a service port it does not override keeps the service's.
    const own = portMap(e.ports);
    const port = { ...portMap(s.ports), ...own };
    endpoints[e.workload.uid] = {
      workloadUid: e.workload.uid,
      port,
      status: healthStatus(e.workload.status),
    };
  }
  const waypoint = gateway(s.waypoint);
  const lb = s.loadBalancing;
  const ipFamilies = IP_FAMILIES[s.ipFamilies];
  return {
    name: s.name,
    namespace: s.namespace,
    hostname: s.hostname,
    vips: s.addresses.map(a => `${a.network}/${a.address}`),
    ports: portMap(s.ports),
    endpoints,
    subjectAltNames: s.subjectAltNames,
    ...(waypoint === undefined ? {} : { waypoint }),
    ...(lb === undefined
      ? {}
      : {
          loadBalancer: {
            routingPreferences: lb.routingPreference.map(p => SCOPE_NAMES[p]),
            mode: lb.mode === 'STRICT' ? 'Strict' : lb.mode === 'FAILOVER' ? 'Failover' : 'Standard',
            healthPolicy: lb.healthPolicy === 'ALLOW_ALL' ? 'AllowAll' : 'OnlyHealthy',
          },
        }),
    ...(ipFamilies === undefined ? {} : { ipFamilies }),
  };
}

function stringMatch(m: StringMatch): DumpStringMatch {
  switch (m.kind) {
    case 'exact':
      return { Exact: m.value };
    case 'prefix':
      return { Prefix: m.value };
    case 'suffix':
      return { Suffix: m.value };
    case 'presence':
      return { Presence: [] };
  }
}

function cidr(c: Cidr): string {
  return `${c.address}/${c.prefixLength}`;
}

function policyMatch(m: PolicyMatch): DumpPolicyMatch {
  return {
    namespaces: m.namespaces.map(stringMatch),
    notNamespaces: m.notNamespaces.map(stringMatch),
    serviceAccounts: m.serviceAccounts,
    notServiceAccounts: m.notServiceAccounts,
    principals: m.principals.map(stringMatch),
    notPrincipals: m.notPrincipals.map(stringMatch),
    sourceIps: m.sourceIps.map(cidr),
    notSourceIps: m.notSourceIps.map(cidr),
    destinationIps: m.destinationIps.map(cidr),
    notDestinationIps: m.notDestinationIps.map(cidr),
    destinationPorts: m.destinationPorts,
    notDestinationPorts: m.notDestinationPorts,
  };
}

export function dumpPolicy(p: Authorization): DumpPolicy {
  return {
    name: p.name,
    namespace: p.namespace,
    scope: p.scope === 'GLOBAL' ? 'Global' : p.scope === 'NAMESPACE' ? 'Namespace' : 'WorkloadSelector',
    action: p.action === 'ALLOW' ? 'Allow' : 'Deny',
    rules: p.rules.map(r => r.clauses.map(c => c.matches.map(policyMatch))),
    dryRun: false,
  };
}

/** A hex serial (Node's `X509Certificate.serialNumber`) as the decimal string upstream prints. */
export function decimalSerial(hex: string): string {
  const clean = hex.replace(/[^0-9a-fA-F]/g, '');
  return clean === '' ? '0' : BigInt(`0x${clean}`).toString(10);
}

export function dumpCertificate(c: CertificateDump): DumpCertificate {
  const cert = (e: CertificateDump['certChain'][number]): DumpCert => ({
    pem: e.pem,
    serialNumber: decimalSerial(e.serialNumber),
    validFrom: e.validFrom,
    expirationTime: e.expirationTime,
  });
  return {
    identity: c.identity,
    state: c.state,
    certChain: c.certChain.map(cert),
    rootCerts: c.rootCerts.map(cert),
  };
}

export function dumpWorkloadState(
  entries: Readonly<Record<string, WorkloadStateEntry>>,
  connections: (uid: string) => DumpConnections | undefined,
): Record<string, DumpWorkloadState> {
  const out: Record<string, DumpWorkloadState> = {};
  for (const [uid, entry] of Object.entries(entries)) {
    out[uid] = { ...entry, connections: connections(uid) ?? NO_CONNECTIONS };
  }
  return out;
}
