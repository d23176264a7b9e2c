/**
 * WDS `istio.workload.Address` → validated `Workload` / `Service`. Runs before the state write,
 * collecting every problem with its field path so one NACK reports them all.
 */
import { WellKnown } from '@ambient-mesh/mesh-api';
import type { workload } from '@ambient-mesh/xds-types';
import type {
  Address,
  GatewayAddress,
  IpFamilies,
  LbHealthPolicy,
  LbMode,
  LbScope,
  NetworkAddress,
  PortMapping,
  Service,
  Workload,
} from './types.ts';
import { enumValue, ipBytes, port, Problems, requireText } from './validation.ts';
import type { Converted } from './validation.ts';

export const DEFAULT_TRUST_DOMAIN = WellKnown.trustDomain;
export const DEFAULT_SERVICE_ACCOUNT = 'default';
export const DEFAULT_CLUSTER_ID = WellKnown.clusterId;

const TUNNEL = ['NONE', 'HBONE'] as const;
const STATUS = ['HEALTHY', 'UNHEALTHY'] as const;
const WORKLOAD_TYPE = ['deployment', 'cronjob', 'pod', 'job'] as const;
const NETWORK_MODE = ['STANDARD', 'HOST_NETWORK'] as const;
const APP_TUNNEL = ['NONE', 'PROXY'] as const;
const LB_SCOPE = ['UNSPECIFIED', 'REGION', 'ZONE', 'SUBZONE', 'NODE', 'CLUSTER', 'NETWORK'] as const;
const LB_MODE = ['UNSPECIFIED', 'STRICT', 'FAILOVER'] as const;
const LB_HEALTH = ['ONLY_HEALTHY', 'ALLOW_ALL'] as const;
const IP_FAMILIES = ['AUTOMATIC', 'IPV4_ONLY', 'IPV6_ONLY', 'DUAL'] as const;

function gateway(
  path: string,
  wire: workload.GatewayAddress,
  problems: Problems,
): GatewayAddress | undefined {
  const hbonePort = port(`${path}.hboneMtlsPort`, wire.hboneMtlsPort, problems);
  if (wire.hostname) {
    requireText(`${path}.hostname.namespace`, wire.hostname.namespace, problems);
    requireText(`${path}.hostname.hostname`, wire.hostname.hostname, problems);
    return {
      destination: { kind: 'hostname', namespace: wire.hostname.namespace, hostname: wire.hostname.hostname },
      hboneMtlsPort: hbonePort,
    };
  }
  if (wire.address) {
    const ip = ipBytes(`${path}.address.address`, wire.address.address, problems);
    return ip === undefined
      ? undefined
      : {
          destination: { kind: 'address', network: wire.address.network, address: ip },
          hboneMtlsPort: hbonePort,
        };
  }
  problems.add(path, 'a gateway needs a hostname or an address');
  return undefined;
}

function ports(path: string, wire: readonly workload.Port[], problems: Problems): PortMapping[] {
  return wire.map((p, i) => ({
    servicePort: port(`${path}[${i}].servicePort`, p.servicePort, problems),
    targetPort: port(`${path}[${i}].targetPort`, p.targetPort, problems, true),
  }));
}

export function spiffeIdentity(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

export function convertWorkload(wire: workload.Workload, path = 'workload'): Converted<Workload> {
  const problems = new Problems();
  requireText(`${path}.uid`, wire.uid, problems);
  requireText(`${path}.name`, wire.name, problems);
  requireText(`${path}.namespace`, wire.namespace, problems);
  const addresses: string[] = [];
  wire.addresses.forEach((bytes, i) => {
    const ip = ipBytes(`${path}.addresses[${i}]`, bytes, problems);
    if (ip !== undefined) addresses.push(ip);
  });
  if (wire.addresses.length === 0 && wire.hostname === '') {
    problems.add(`${path}.addresses`, 'a workload needs addresses or a hostname');
  }
  const tunnelProtocol = enumValue(`${path}.tunnelProtocol`, wire.tunnelProtocol, TUNNEL, problems);
  const status = enumValue(`${path}.status`, wire.status, STATUS, problems);
  const workloadType = enumValue(`${path}.workloadType`, wire.workloadType, WORKLOAD_TYPE, problems);
  const networkMode = enumValue(`${path}.networkMode`, wire.networkMode, NETWORK_MODE, problems);
  const waypoint = wire.waypoint ? gateway(`${path}.waypoint`, wire.waypoint, problems) : undefined;
  const networkGateway = wire.networkGateway
    ? gateway(`${path}.networkGateway`, wire.networkGateway, problems)
    : undefined;
  let applicationTunnel: Workload['applicationTunnel'];
  if (wire.applicationTunnel) {
    applicationTunnel = {
      protocol: enumValue(
        `${path}.applicationTunnel.protocol`,
        wire.applicationTunnel.protocol,
        APP_TUNNEL,
        problems,
      ),
      port: port(`${path}.applicationTunnel.port`, wire.applicationTunnel.port, problems, true),
    };
  }
  const services: Record<string, readonly PortMapping[]> = {};
  for (const [key, list] of Object.entries(wire.services)) {
    const slash = key.indexOf('/');
    if (slash <= 0 || slash === key.length - 1) {
      problems.add(`${path}.services[${JSON.stringify(key)}]`, 'key must be "<namespace>/<hostname>"');
      continue;
    }
    services[key] = ports(`${path}.services[${JSON.stringify(key)}].ports`, list.ports, problems);
  }
  wire.authorizationPolicies.forEach((name, i) => {
    if (name === '') problems.add(`${path}.authorizationPolicies[${i}]`, 'empty policy name');
  });
  const trustDomain = wire.trustDomain === '' ? DEFAULT_TRUST_DOMAIN : wire.trustDomain;
  const serviceAccount = wire.serviceAccount === '' ? DEFAULT_SERVICE_ACCOUNT : wire.serviceAccount;
  for (const [field, value] of [
    ['trustDomain', trustDomain],
    ['serviceAccount', serviceAccount],
    ['namespace', wire.namespace],
  ] as const) {
    if (value.includes('/'))
      problems.add(`${path}.${field}`, `${JSON.stringify(value)} must not contain "/"`);
  }
  return problems.result(() =>
    Object.freeze({
      uid: wire.uid,
      name: wire.name,
      namespace: wire.namespace,
      addresses,
      hostname: wire.hostname,
      network: wire.network,
      tunnelProtocol,
      trustDomain,
      serviceAccount,
      identity: spiffeIdentity(trustDomain, wire.namespace, serviceAccount),
      waypoint,
      networkGateway,
      node: wire.node,
      canonicalName: wire.canonicalName,
      canonicalRevision: wire.canonicalRevision,
      workloadType,
      workloadName: wire.workloadName,
      nativeTunnel: wire.nativeTunnel,
      applicationTunnel,
      services,
      authorizationPolicies: [...wire.authorizationPolicies],
      status,
      clusterId: wire.clusterId === '' ? DEFAULT_CLUSTER_ID : wire.clusterId,
      locality: {
        region: wire.locality?.region ?? '',
        zone: wire.locality?.zone ?? '',
        subzone: wire.locality?.subzone ?? '',
      },
      networkMode,
    }),
  );
}

export function convertService(wire: workload.Service, path = 'service'): Converted<Service> {
  const problems = new Problems();
  requireText(`${path}.namespace`, wire.namespace, problems);
  requireText(`${path}.hostname`, wire.hostname, problems);
  const addresses: NetworkAddress[] = [];
  wire.addresses.forEach((a, i) => {
    const ip = ipBytes(`${path}.addresses[${i}].address`, a.address, problems);
    if (ip !== undefined) addresses.push({ network: a.network, address: ip });
  });
  const servicePorts = ports(`${path}.ports`, wire.ports, problems);
  wire.subjectAltNames.forEach((san, i) => {
    if (san === '') problems.add(`${path}.subjectAltNames[${i}]`, 'empty SAN');
  });
  const waypoint = wire.waypoint ? gateway(`${path}.waypoint`, wire.waypoint, problems) : undefined;
  let loadBalancing: Service['loadBalancing'];
  if (wire.loadBalancing) {
    const lb = wire.loadBalancing;
    const routingPreference: LbScope[] = [];
    lb.routingPreference.forEach((scope, i) => {
      const name = enumValue(`${path}.loadBalancing.routingPreference[${i}]`, scope, LB_SCOPE, problems);
      if (name !== 'UNSPECIFIED') routingPreference.push(name);
    });
    const mode: LbMode = enumValue(`${path}.loadBalancing.mode`, lb.mode, LB_MODE, problems);
    const healthPolicy: LbHealthPolicy = enumValue(
      `${path}.loadBalancing.healthPolicy`,
      lb.healthPolicy,
      LB_HEALTH,
      problems,
    );
    loadBalancing = { routingPreference, mode, healthPolicy };
  }
  const ipFamilies: IpFamilies = enumValue(`${path}.ipFamilies`, wire.ipFamilies, IP_FAMILIES, problems);
  return problems.result(() =>
    Object.freeze({
      name: wire.name,
      namespace: wire.namespace,
      hostname: wire.hostname,
      key: `${wire.namespace}/${wire.hostname}`,
      addresses,
      ports: servicePorts,
      subjectAltNames: [...wire.subjectAltNames],
      waypoint,
      loadBalancing,
      ipFamilies,
    }),
  );
}

/**
 * Converts one Address resource. `name` is the xDS resource name; it must equal the workload uid
 * or the service's `<namespace>/<hostname>`.
 */
export function convertAddress(name: string, wire: workload.Address): Converted<Address> {
  if (wire.workload) {
    const converted = convertWorkload(wire.workload);
    if (!converted.ok) return converted;
    if (converted.value.uid !== name) {
      return {
        ok: false,
        problems: [`workload.uid: ${JSON.stringify(converted.value.uid)} differs from the resource name`],
      };
    }
    return { ok: true, value: { kind: 'workload', workload: converted.value } };
  }
  if (wire.service) {
    const converted = convertService(wire.service);
    if (!converted.ok) return converted;
    if (converted.value.key !== name) {
      return {
        ok: false,
        problems: [`service: key ${JSON.stringify(converted.value.key)} differs from the resource name`],
      };
    }
    return { ok: true, value: { kind: 'service', service: converted.value } };
  }
  return { ok: false, problems: ['type: an Address must hold a workload or a service'] };
}
