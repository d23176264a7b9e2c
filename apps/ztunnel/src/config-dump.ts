/**
 * The `/config_dump` document in upstream ztunnel 1.27's JSON shapes (its serde camelCase
 * serialization), so upstream istioctl `ztunnel-config` and Kiali decode it: workloads with
 * `workloadIps` and `protocol`, services with `vips: ["net/ip"]`, a `ports` map and an `endpoints`
 * map keyed by workload uid, waypoints as a `destination` string, policies with nested `rules`
 * lists and externally tagged string matches, decimal certificate serials, and the `config`
 * section in upstream's `Config` serialization (serde enums as `{"Variant": value}`, durations as
 * `{secs, nanos}`), which Kiali 2.x decodes into typed fields.
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
import {
  CLIENT_MAX_STREAMS_PER_CONNECTION,
  CONNECTION_WINDOW_SIZE,
  MAX_FRAME_SIZE,
  POOL_IDLE_TIMEOUT_MS,
  STREAM_WINDOW_SIZE,
} from '@ambient-mesh/hbone';
import { Port } from '@ambient-mesh/mesh-api';
import type { ListenAddress } from '@ambient-mesh/runtime';
import type { Config } from './config.ts';
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

/** A Rust `std::time::Duration` as serde writes it. */
export interface DumpDuration {
  readonly secs: number;
  readonly nanos: number;
}

/** Upstream's `Address` enum: dual-stack localhost `(ipv6_enabled, port)` or one socket address. */
export type DumpAddress =
  { readonly Localhost: readonly [boolean, number] } | { readonly SocketAddr: string };

/**
 * The `config` section, with upstream ztunnel 1.27's field names and JSON types. Fields upstream
 * fills from things we do not have (the hickory resolver's parsed config, socket keepalive
 * tuning, the ztunnel's own identity) are left out rather than faked; readers take the zero value.
 */
export interface DumpConfig {
  readonly proxy: boolean;
  readonly dnsProxy: boolean;
  readonly windowSize: number;
  readonly connectionWindowSize: number;
  readonly frameSize: number;
  readonly poolMaxStreamsPerConn: number;
  readonly poolUnusedReleaseTimeout: DumpDuration;
  readonly socks5Addr: null;
  readonly adminAddr: DumpAddress;
  readonly statsAddr: DumpAddress;
  readonly readinessAddr: DumpAddress;
  readonly inboundAddr: string;
  readonly inboundPlaintextAddr: string;
  readonly outboundAddr: string;
  readonly dnsProxyAddr: DumpAddress;
  readonly illegalPorts: readonly number[];
  readonly network: string;
  readonly localNode: string;
  readonly proxyMode: 'Shared';
  readonly clusterId: string;
  readonly clusterDomain: string;
  readonly caAddress: string;
  readonly caRootCert: { readonly File: string };
  readonly altCaHostname: string | null;
  readonly xdsAddress: string;
  readonly xdsRootCert: { readonly File: string };
  readonly altXdsHostname: string | null;
  readonly secretTtl: DumpDuration;
  readonly xdsOnDemand: boolean;
  readonly fakeCa: boolean;
  readonly fakeSelfInbound: boolean;
  readonly selfTerminationDeadline: DumpDuration;
  readonly proxyMetadata: Readonly<Record<string, string>>;
  readonly numWorkerThreads: number;
  readonly requireOriginalSource: boolean | null;
  readonly proxyArgs: string;
  readonly inpodUds: string;
  readonly inpodPortReuse: boolean;
  readonly packetMark: number;
  readonly xdsHeaders: readonly (readonly [string, string])[];
  readonly caHeaders: readonly (readonly [string, string])[];
  readonly ipv6Enabled: boolean;
}

function duration(ms: number): DumpDuration {
  const whole = Math.floor(ms / 1000);
  return { secs: whole, nanos: Math.round((ms - whole * 1000) * 1_000_000) };
}

function socketAddress(a: ListenAddress): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** A listener bound on loopback is upstream's `Localhost(ipv6_enabled, port)`; any other one a socket address. */
function address(a: ListenAddress): DumpAddress {
  if (a.host === '127.0.0.1' || a.host === 'localhost') return { Localhost: [false, a.port] };
  return { SocketAddr: socketAddress(a) };
}

export function dumpConfig(c: Config): DumpConfig {
  // The in-pod listeners serve both families unless IPV6_ENABLED=false (docs/compatibility.md#dual-stack),
  // so the wildcard is upstream's: `[::]`, or `0.0.0.0` without IPv6.
  const inPod = (port: number): string => `${c.ipv6Enabled ? '[::]' : '0.0.0.0'}:${port}`;
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(c.proxyMetadata))
    metadata[k] = typeof v === 'string' ? v : JSON.stringify(v);
  return {
    proxy: true,
    dnsProxy: c.dnsProxy,
    windowSize: STREAM_WINDOW_SIZE,
    connectionWindowSize: CONNECTION_WINDOW_SIZE,
    frameSize: MAX_FRAME_SIZE,
    poolMaxStreamsPerConn: CLIENT_MAX_STREAMS_PER_CONNECTION,
    poolUnusedReleaseTimeout: duration(POOL_IDLE_TIMEOUT_MS),
    socks5Addr: null,
    adminAddr: address(c.adminAddress),
    statsAddr: address(c.statsAddress),
    readinessAddr: address(c.readinessAddress),
    inboundAddr: inPod(Port.hbone),
    inboundPlaintextAddr: inPod(Port.ztunnelInboundPlaintext),
    outboundAddr: inPod(Port.ztunnelOutbound),
    dnsProxyAddr: { Localhost: [false, Port.dns] },
    illegalPorts: [Port.ztunnelOutbound, Port.ztunnelInboundPlaintext, Port.hbone],
    // Our ztunnel does not read NETWORK: single-network meshes only.
    network: '',
    localNode: c.nodeName,
    proxyMode: 'Shared',
    clusterId: c.clusterId,
    clusterDomain: c.clusterDomain,
    caAddress: c.caAddress,
    caRootCert: { File: c.caRootCaPath },
    altCaHostname: c.altCaHostname ?? null,
    xdsAddress: c.xdsAddress,
    xdsRootCert: { File: c.xdsRootCaPath },
    altXdsHostname: c.altXdsHostname ?? null,
    secretTtl: duration(c.secretTtlSeconds * 1000),
    xdsOnDemand: false,
    fakeCa: false,
    fakeSelfInbound: false,
    selfTerminationDeadline: duration(c.connectionTerminationDeadlineMs),
    proxyMetadata: metadata,
    // One JavaScript thread runs the proxy.
    numWorkerThreads: 1,
    requireOriginalSource: c.origSrc === 'require' ? true : c.origSrc === 'off' ? false : null,
    proxyArgs: '',
    inpodUds: c.inpodUds,
    inpodPortReuse: true,
    packetMark: c.packetMark,
    xdsHeaders: Object.entries(c.xdsHeaders),
    caHeaders: Object.entries(c.caHeaders),
    // The in-pod listeners; the admin, stats and readiness listeners stay IPv4.
    ipv6Enabled: c.ipv6Enabled,
  };
}
