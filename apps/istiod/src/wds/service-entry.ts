/**
 * ServiceEntry (networking.istio.io/v1) → validated domain type → WDS, following upstream's
 * ambient index:
 *
 * - one WDS `Service` per host, resource name `<namespace>/<host>`, addresses from
 *   `spec.addresses`, else (resolution not NONE, host not a wildcard) the VIPs the allocator wrote
 *   into `status.addresses` for that host; target ports default to the port number;
 * - one `Workload` per inline endpoint, uid `<cluster>/networking.istio.io/ServiceEntry/<ns>/<name>/<address>`;
 *   a DNS entry without endpoints or selector gets one implicit endpoint per host (the host name);
 * - with `workloadSelector`, pods and WorkloadEntries of the namespace whose labels match list the
 *   entry's Services (see `serviceEntryPortsFor`).
 */
import type { ServiceEntry, WorkloadEntrySpec } from '../kube/objects.ts';
import { ipToBytes } from './ip.ts';
import { TRAFFIC_DISTRIBUTION_ANNOTATION } from './service.ts';
import { hostProblem, issue, SourceIssueCode, type SourceIssue, type Validated } from './source-issues.ts';
import { canonicalService, DEFAULT_TRUST_DOMAIN, REDIRECTION_ANNOTATION, TUNNEL_LABEL } from './workload.ts';
import { REDIRECTION_ENABLED } from '@ambient-mesh/mesh-api';
import { workload as wire } from '@ambient-mesh/xds-types';

const {
  LoadBalancing_HealthPolicy: HealthPolicy,
  LoadBalancing_Mode: LoadBalancingMode,
  LoadBalancing_Scope: Scope,
  TunnelProtocol,
  WorkloadStatus,
  WorkloadType,
} = wire;
type Service = wire.ServiceInit;
type Workload = wire.WorkloadInit;
type Port = wire.PortInit;
type GatewayAddress = wire.GatewayAddressInit;

export type Resolution = 'NONE' | 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN' | 'DYNAMIC_DNS';
const RESOLUTIONS: readonly string[] = ['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN', 'DYNAMIC_DNS'];

/** The label that opts a ServiceEntry out of VIP auto-allocation (`"false"`). */
export const AUTOALLOCATE_LABEL = 'networking.istio.io/enable-autoallocate-ip';

export interface EntryPort {
  readonly name: string;
  readonly number: number;
  readonly protocol: string;
  /** The endpoints' port; the number when unset. */
  readonly targetPort: number;
}

/** An inline endpoint or a WorkloadEntry's spec, validated. */
export interface ValidEndpoint {
  /** An IP, or a host name (DNS resolution); empty only with a network. */
  readonly address: string;
  readonly ports: Readonly<Record<string, number>>;
  readonly labels: Readonly<Record<string, string>>;
  readonly network: string;
  readonly locality: string;
  readonly weight: number;
  readonly serviceAccount: string;
}

export interface ValidServiceEntry {
  readonly namespace: string;
  readonly name: string;
  readonly key: string;
  /** Creation time in ms (0 when unknown): the older entry wins a host or address. */
  readonly createdAt: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly hosts: readonly string[];
  /** IPs, and the base address of CIDRs, from `spec.addresses`. */
  readonly addresses: readonly string[];
  readonly ports: readonly EntryPort[];
  readonly resolution: Resolution;
  readonly endpoints: readonly ValidEndpoint[] | undefined;
  readonly workloadSelector: Readonly<Record<string, string>> | undefined;
  readonly subjectAltNames: readonly string[];
  /** VIPs from `status.addresses`, per host (written by the allocator). */
  readonly allocated: ReadonlyMap<string, readonly string[]>;
}

function creationMs(ts: Date | string | undefined): number {
  if (ts === undefined) return 0;
  const ms = new Date(ts).getTime();
  return Number.isNaN(ms) ? 0 : ms;
}

/** `status.addresses` (`[{host, value}]`) as host → IPs; unparsable entries are dropped. */
export function statusAddresses(status: unknown): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const list = (status as { addresses?: unknown } | undefined)?.addresses;
  if (!Array.isArray(list)) return out;
  for (const a of list as unknown[]) {
    if (typeof a !== 'object' || a === null) continue;
    const { host, value } = a as { host?: unknown; value?: unknown };
    if (typeof host !== 'string' || typeof value !== 'string' || ipToBytes(value) === undefined) continue;
    const ips = out.get(host) ?? [];
    ips.push(value);
    out.set(host, ips);
  }
  return out;
}

/** An IP, or the base address of a CIDR; undefined when neither. */
export function addressOrCidrBase(text: string): string | undefined {
  const slash = text.indexOf('/');
  if (slash === -1) return ipToBytes(text) === undefined ? undefined : text;
  const ip = text.slice(0, slash);
  const bits = text.slice(slash + 1);
  const bytes = ipToBytes(ip);
  if (bytes === undefined || !/^\d{1,3}$/.test(bits) || Number(bits) > bytes.length * 8) return undefined;
  return ip;
}

export function validateEndpoint(
  ep: WorkloadEntrySpec,
  path: string,
  opts: { readonly allowHostname: boolean; readonly portNames?: ReadonlySet<string> },
): Validated<ValidEndpoint> {
  const errors: SourceIssue[] = [];
  const address = ep.address ?? '';
  const network = ep.network ?? '';
  if (address === '') {
    if (network === '')
      errors.push(
        issue(
          SourceIssueCode.MISSING_FIELD,
          `${path}.address`,
          'an endpoint needs an address unless it sets a network',
        ),
      );
  } else if (address.startsWith('unix://')) {
    errors.push(
      issue(
        SourceIssueCode.INVALID_ADDRESS,
        `${path}.address`,
        'unix socket endpoints are not supported in ambient',
      ),
    );
  } else if (ipToBytes(address) === undefined) {
    const problem = hostProblem(address, false);
    if (!opts.allowHostname)
      errors.push(
        issue(
          SourceIssueCode.INVALID_ADDRESS,
          `${path}.address`,
          `"${address}" must be an IP address for STATIC resolution`,
        ),
      );
    else if (problem !== undefined)
      errors.push(issue(SourceIssueCode.INVALID_ADDRESS, `${path}.address`, `"${address}" ${problem}`));
  }
  const ports: Record<string, number> = {};
  for (const [name, port] of Object.entries(ep.ports ?? {})) {
    if (!Number.isInteger(port) || port < 1 || port > 65535)
      errors.push(
        issue(
          SourceIssueCode.INVALID_PORT,
          `${path}.ports.${name}`,
          `${port} is not a port number (1–65535)`,
        ),
      );
    else if (opts.portNames !== undefined && !opts.portNames.has(name))
      errors.push(
        issue(
          SourceIssueCode.INVALID_PORT,
          `${path}.ports.${name}`,
          `no port named "${name}" in the ServiceEntry's ports`,
        ),
      );
    else ports[name] = port;
  }
  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    value: {
      address,
      ports,
      labels: { ...(ep.labels ?? {}) },
      network,
      locality: ep.locality ?? '',
      weight: ep.weight ?? 0,
      serviceAccount: ep.serviceAccount ?? '',
    },
  };
}

/** Checks a ServiceEntry against the rules upstream's validation enforces for what WDS carries. */
export function validateServiceEntry(se: ServiceEntry): Validated<ValidServiceEntry> {
  const meta = se.metadata ?? {};
  const spec = se.spec ?? { hosts: [] };
  const errors: SourceIssue[] = [];
  const resolution = (spec.resolution ?? 'NONE') as string;
  if (!RESOLUTIONS.includes(resolution))
    errors.push(
      issue(SourceIssueCode.INVALID_COMBINATION, 'spec.resolution', `unknown resolution "${resolution}"`),
    );
  const hosts: string[] = [];
  if (spec.hosts.length === 0)
    errors.push(issue(SourceIssueCode.MISSING_FIELD, 'spec.hosts', 'at least one host is required'));
  spec.hosts.forEach((h, i) => {
    const problem = hostProblem(h, true);
    if (problem !== undefined)
      errors.push(issue(SourceIssueCode.INVALID_HOST, `spec.hosts[${i}]`, `"${h}" ${problem}`));
    else if (ipToBytes(h) !== undefined)
      errors.push(
        issue(SourceIssueCode.INVALID_HOST, `spec.hosts[${i}]`, `"${h}" is an IP; put it in spec.addresses`),
      );
    else if (!hosts.includes(h)) hosts.push(h);
  });
  const addresses: string[] = [];
  (spec.addresses ?? []).forEach((a, i) => {
    const base = addressOrCidrBase(a);
    if (base === undefined)
      errors.push(
        issue(SourceIssueCode.INVALID_ADDRESS, `spec.addresses[${i}]`, `"${a}" is neither an IP nor a CIDR`),
      );
    else addresses.push(base);
  });
  const ports: EntryPort[] = [];
  const names = new Set<string>();
  const numbers = new Set<number>();
  (spec.ports ?? []).forEach((p, i) => {
    const path = `spec.ports[${i}]`;
    if (!Number.isInteger(p.number) || p.number < 1 || p.number > 65535)
      errors.push(
        issue(SourceIssueCode.INVALID_PORT, `${path}.number`, `${p.number} is not a port number (1–65535)`),
      );
    else if (numbers.has(p.number))
      errors.push(issue(SourceIssueCode.INVALID_PORT, `${path}.number`, `port ${p.number} is listed twice`));
    if (names.has(p.name))
      errors.push(
        issue(SourceIssueCode.INVALID_PORT, `${path}.name`, `port name "${p.name}" is listed twice`),
      );
    const target = p.targetPort ?? 0;
    if (!Number.isInteger(target) || target < 0 || target > 65535)
      errors.push(
        issue(SourceIssueCode.INVALID_PORT, `${path}.targetPort`, `${target} is not a port number (1–65535)`),
      );
    numbers.add(p.number);
    names.add(p.name);
    ports.push({
      name: p.name,
      number: p.number,
      protocol: p.protocol ?? '',
      targetPort: target === 0 ? p.number : target,
    });
  });
  const selector = spec.workloadSelector?.labels;
  if (spec.endpoints !== undefined && spec.workloadSelector !== undefined)
    errors.push(
      issue(
        SourceIssueCode.INVALID_COMBINATION,
        'spec.workloadSelector',
        'only one of workloadSelector or endpoints may be set',
      ),
    );
  if (resolution === 'NONE' && (spec.endpoints?.length ?? 0) > 0)
    errors.push(
      issue(SourceIssueCode.INVALID_COMBINATION, 'spec.endpoints', 'NONE resolution cannot set endpoints'),
    );
  const dns = resolution === 'DNS' || resolution === 'DNS_ROUND_ROBIN';
  if (dns && (spec.endpoints?.length ?? 0) === 0 && selector === undefined) {
    spec.hosts.forEach((h, i) => {
      if (h.startsWith('*.'))
        errors.push(
          issue(
            SourceIssueCode.INVALID_HOST,
            `spec.hosts[${i}]`,
            `"${h}": a wildcard host needs endpoints with ${resolution} resolution`,
          ),
        );
    });
  }
  let endpoints: ValidEndpoint[] | undefined;
  if (spec.endpoints !== undefined) {
    endpoints = [];
    spec.endpoints.forEach((ep, i) => {
      const v = validateEndpoint(ep, `spec.endpoints[${i}]`, { allowHostname: dns, portNames: names });
      if (v.ok) endpoints!.push(v.value);
      else errors.push(...v.errors);
    });
  }
  if (errors.length > 0) return { ok: false, errors };
  const namespace = meta.namespace ?? '';
  const name = meta.name ?? '';
  return {
    ok: true,
    value: {
      namespace,
      name,
      key: `${namespace}/${name}`,
      createdAt: creationMs(meta.creationTimestamp),
      labels: { ...(meta.labels ?? {}) },
      annotations: { ...(meta.annotations ?? {}) },
      hosts,
      addresses,
      ports,
      resolution: resolution as Resolution,
      endpoints,
      workloadSelector: selector === undefined ? undefined : { ...selector },
      subjectAltNames: [...(spec.subjectAltNames ?? [])],
      allocated: statusAddresses((se as { status?: unknown }).status),
    },
  };
}

/** Whether the allocator gives this entry VIPs (upstream's `ShouldV2AutoAllocateIP`). */
export function wantsAutoAllocation(se: ValidServiceEntry): boolean {
  if (se.resolution === 'NONE') return false;
  if ((se.labels[AUTOALLOCATE_LABEL] ?? '').toLowerCase() === 'false') return false;
  return se.addresses.length === 0;
}

/** Hosts that get VIPs: all but wildcards (wildcards too with DYNAMIC_DNS). */
export function allocatableHosts(se: ValidServiceEntry): string[] {
  return se.hosts.filter(h => !h.startsWith('*.') || se.resolution === 'DYNAMIC_DNS');
}

/** `<namespace>/<host>`. */
export function serviceEntryResourceName(namespace: string, host: string): string {
  return `${namespace}/${host}`;
}

export interface ServiceEntryInputs {
  readonly network?: string;
  readonly waypoint: GatewayAddress | undefined;
}

/** The VIPs a host's WDS Service carries. */
export function hostAddresses(se: ValidServiceEntry, host: string): string[] {
  if (se.addresses.length > 0) return [...se.addresses];
  if (se.resolution === 'NONE') return [];
  if (host.startsWith('*.') && se.resolution !== 'DYNAMIC_DNS') return [];
  if (!wantsAutoAllocation(se)) return [];
  return [...(se.allocated.get(host) ?? [])];
}

/** The WDS Service for one host of the entry. */
export function buildServiceEntryService(
  se: ValidServiceEntry,
  host: string,
  inputs: ServiceEntryInputs,
): Service {
  const network = inputs.network ?? '';
  const service: Service = {
    name: se.name,
    namespace: se.namespace,
    hostname: host,
    addresses: hostAddresses(se, host).map(ip => ({ network, address: ipToBytes(ip)! })),
    ports: se.ports.map((p): Port => ({ servicePort: p.number, targetPort: p.targetPort })),
    subjectAltNames: [...se.subjectAltNames],
  };
  if (inputs.waypoint !== undefined) service.waypoint = inputs.waypoint;
  if (se.resolution !== 'NONE') {
    const td = se.annotations[TRAFFIC_DISTRIBUTION_ANNOTATION];
    if (td === 'PreferClose' || td === 'PreferSameZone')
      service.loadBalancing = {
        routingPreference: [Scope.NETWORK, Scope.REGION, Scope.ZONE],
        mode: LoadBalancingMode.FAILOVER,
        healthPolicy: HealthPolicy.ONLY_HEALTHY,
      };
    else if (td === 'PreferSameNode')
      service.loadBalancing = {
        routingPreference: [Scope.NETWORK, Scope.REGION, Scope.ZONE, Scope.SUBZONE, Scope.NODE],
        mode: LoadBalancingMode.FAILOVER,
        healthPolicy: HealthPolicy.ONLY_HEALTHY,
      };
  }
  return service;
}

/**
 * The ports an endpoint serves for a ServiceEntry: a port named in the endpoint's `ports` maps
 * to that number, else to the entry's target port.
 */
export function serviceEntryPortsFor(
  se: ValidServiceEntry,
  endpointPorts: Readonly<Record<string, number>>,
): Port[] {
  return se.ports.map(p => ({ servicePort: p.number, targetPort: endpointPorts[p.name] ?? p.targetPort }));
}

/** `<cluster>/networking.istio.io/ServiceEntry/<ns>/<name>/<address>`. */
export function serviceEntryWorkloadUid(clusterId: string, se: ValidServiceEntry, address: string): string {
  return `${clusterId}/networking.istio.io/ServiceEntry/${se.namespace}/${se.name}/${address}`;
}

export interface EndpointWorkloadInputs {
  readonly clusterId: string;
  readonly trustDomain: string;
  readonly network?: string;
  /** Selector-scoped policy names for the entry's labels (already filtered and ordered). */
  readonly authorizationPolicies: readonly string[];
  /** The waypoint for an endpoint with these labels (explicit endpoints only). */
  readonly waypointFor: (labels: Readonly<Record<string, string>>) => GatewayAddress | undefined;
}

/** The implicit or inline endpoints, as `{endpoint, hosts}` (hosts the endpoint serves). */
export function serviceEntryEndpoints(
  se: ValidServiceEntry,
): { readonly endpoint: ValidEndpoint; readonly hosts: readonly string[]; readonly implicit: boolean }[] {
  const dns = se.resolution === 'DNS' || se.resolution === 'DNS_ROUND_ROBIN';
  const eps = se.endpoints ?? [];
  if (eps.length === 0 && dns && se.workloadSelector === undefined) {
    return se.hosts.map(h => ({
      endpoint: {
        address: h,
        ports: {},
        labels: {},
        network: '',
        locality: '',
        weight: 0,
        serviceAccount: '',
      },
      hosts: [h],
      implicit: true,
    }));
  }
  return eps.map(endpoint => ({ endpoint, hosts: se.hosts, implicit: false }));
}

/** The Workloads of the entry's endpoints, by uid (a later endpoint with the same address wins). */
export function buildServiceEntryWorkloads(
  se: ValidServiceEntry,
  inputs: EndpointWorkloadInputs,
): Map<string, Workload> {
  const out = new Map<string, Workload>();
  const [canonicalName, canonicalRevision] = canonicalService(se.labels, se.name);
  const tunnel = tunnelOf(se.labels, se.annotations);
  for (const { endpoint: ep, hosts, implicit } of serviceEntryEndpoints(se)) {
    const uid = serviceEntryWorkloadUid(inputs.clusterId, se, ep.address);
    const services: Record<string, { ports: Port[] }> = {};
    for (const h of [...hosts].sort())
      services[serviceEntryResourceName(se.namespace, h)] = { ports: serviceEntryPortsFor(se, ep.ports) };
    const w: Workload = {
      ...endpointIdentity(ep, inputs),
      uid,
      name: se.name,
      namespace: se.namespace,
      workloadName: se.name,
      workloadType: WorkloadType.POD,
      canonicalName,
      canonicalRevision,
      ...tunnel,
      services,
      authorizationPolicies: [...inputs.authorizationPolicies],
    };
    const waypoint = implicit ? undefined : inputs.waypointFor(ep.labels);
    if (waypoint !== undefined) w.waypoint = waypoint;
    out.set(uid, w);
  }
  return out;
}

/** The fields an endpoint (inline or WorkloadEntry) sets the same way. */
export function endpointIdentity(
  ep: ValidEndpoint,
  inputs: { readonly clusterId: string; readonly trustDomain: string; readonly network?: string },
): Workload {
  const w: Workload = {
    network: ep.network !== '' ? ep.network : (inputs.network ?? ''),
    clusterId: inputs.clusterId,
    serviceAccount: ep.serviceAccount,
    status: WorkloadStatus.HEALTHY,
    trustDomain: inputs.trustDomain === DEFAULT_TRUST_DOMAIN ? '' : inputs.trustDomain,
  };
  const bytes = ipToBytes(ep.address);
  if (bytes !== undefined) w.addresses = [bytes];
  else w.hostname = ep.address;
  const [region = '', zone = '', subzone = ''] = ep.locality === '' ? [] : ep.locality.split('/');
  if (region !== '' || zone !== '' || subzone !== '') w.locality = { region, zone, subzone };
  if (ep.weight > 0) w.capacity = { value: ep.weight };
  return w;
}

export function tunnelOf(
  labels: Readonly<Record<string, string>>,
  annotations: Readonly<Record<string, string>>,
): { tunnelProtocol: wire.TunnelProtocol; nativeTunnel?: boolean } {
  const native = (labels[TUNNEL_LABEL] ?? '')
    .split(',')
    .map(s => s.trim())
    .includes('http');
  if (native) return { tunnelProtocol: TunnelProtocol.HBONE, nativeTunnel: true };
  return {
    tunnelProtocol:
      annotations[REDIRECTION_ANNOTATION] === REDIRECTION_ENABLED
        ? TunnelProtocol.HBONE
        : TunnelProtocol.NONE,
  };
}
