/**
 * Kubernetes Service → WDS `Service` (docs/protocols.md#wds-workload-api), a pure function. The resource name
 * is `<namespace>/<hostname>` (docs/protocols.md#wds-resource-names). Named target ports become 0 and are resolved per workload.
 */
import type { Service as KubeService } from '../kube/objects.ts';
import { ipToBytes } from './ip.ts';
import { Annotation } from '@ambient-mesh/mesh-api';
import { workload as wire } from '@ambient-mesh/xds-types';

const {
  IPFamilies,
  LoadBalancing_HealthPolicy: HealthPolicy,
  LoadBalancing_Mode: LoadBalancingMode,
  LoadBalancing_Scope: LoadBalancingScope,
} = wire;
type GatewayAddress = wire.GatewayAddressInit;
type LoadBalancing = wire.LoadBalancingInit;
type NetworkAddress = wire.NetworkAddressInit;
type Port = wire.PortInit;
type Service = wire.ServiceInit;

export const TRAFFIC_DISTRIBUTION_ANNOTATION = Annotation.trafficDistribution;

export interface ServiceInputs {
  readonly domain: string;
  readonly network?: string;
  readonly waypoint: GatewayAddress | undefined;
}

export function serviceHostname(svc: KubeService, domain: string): string {
  return `${svc.metadata?.name ?? ''}.${svc.metadata?.namespace ?? ''}.svc.${domain}`;
}

/** `<namespace>/<hostname>`, the WDS resource name of a Service. */
export function serviceResourceName(svc: KubeService, domain: string): string {
  return `${svc.metadata?.namespace ?? ''}/${serviceHostname(svc, domain)}`;
}

export function buildService(svc: KubeService, inputs: ServiceInputs): Service {
  const spec = svc.spec ?? {};
  const network = inputs.network ?? '';
  const service: Service = {
    name: svc.metadata?.name ?? '',
    namespace: svc.metadata?.namespace ?? '',
    hostname: serviceHostname(svc, inputs.domain),
    addresses: serviceVips(svc).map((ip): NetworkAddress => ({ network, address: ipToBytes(ip)! })),
    ports: (spec.ports ?? []).map((p): Port => ({
      servicePort: p.port,
      targetPort:
        typeof p.targetPort === 'string' ? portNumberOrZero(p.targetPort) : (p.targetPort ?? p.port),
    })),
    subjectAltNames: [],
    ipFamilies: ipFamilies(spec.ipFamilies),
  };
  if (inputs.waypoint !== undefined) service.waypoint = inputs.waypoint;
  const lb = loadBalancing(svc);
  if (lb !== undefined) service.loadBalancing = lb;
  return service;
}

function portNumberOrZero(text: string): number {
  const n = Number(text);
  return text !== '' && Number.isInteger(n) ? n : 0;
}

/** ClusterIPs (none for headless) plus LoadBalancer ingress IPs. */
export function serviceVips(svc: KubeService): string[] {
  const spec = svc.spec ?? {};
  const cips =
    spec.clusterIPs !== undefined && spec.clusterIPs.length > 0 ? spec.clusterIPs : [spec.clusterIP ?? ''];
  const out = cips.filter(ip => ip !== '' && ip !== 'None' && ipToBytes(ip) !== undefined);
  if (spec.type === 'LoadBalancer') {
    for (const ing of svc.status?.loadBalancer?.ingress ?? []) {
      if (ing.ip !== undefined && ipToBytes(ing.ip) !== undefined) out.push(ing.ip);
    }
  }
  return out;
}

function ipFamilies(families: readonly string[] | undefined): wire.IPFamilies {
  if (families === undefined || families.length === 0) return IPFamilies.AUTOMATIC;
  if (families.length >= 2) return IPFamilies.DUAL;
  return families[0] === 'IPv6' ? IPFamilies.IPV6_ONLY : IPFamilies.IPV4_ONLY;
}

const { NETWORK, REGION, ZONE, SUBZONE, NODE } = LoadBalancingScope;

/** internalTrafficPolicy Local wins; else trafficDistribution (spec, then annotation); publishNotReadyAddresses → ALLOW_ALL. */
export function loadBalancing(svc: KubeService): LoadBalancing | undefined {
  const spec = svc.spec ?? {};
  let lb: LoadBalancing | undefined;
  if (spec.internalTrafficPolicy === 'Local') {
    lb = {
      routingPreference: [NODE],
      mode: LoadBalancingMode.STRICT,
      healthPolicy: HealthPolicy.ONLY_HEALTHY,
    };
  } else {
    const td = spec.trafficDistribution ?? svc.metadata?.annotations?.[TRAFFIC_DISTRIBUTION_ANNOTATION];
    if (td === 'PreferClose' || td === 'PreferSameZone') {
      lb = {
        routingPreference: [NETWORK, REGION, ZONE],
        mode: LoadBalancingMode.FAILOVER,
        healthPolicy: HealthPolicy.ONLY_HEALTHY,
      };
    } else if (td === 'PreferSameNode') {
      lb = {
        routingPreference: [NETWORK, REGION, ZONE, SUBZONE, NODE],
        mode: LoadBalancingMode.FAILOVER,
        healthPolicy: HealthPolicy.ONLY_HEALTHY,
      };
    }
  }
  if (spec.publishNotReadyAddresses === true) {
    lb ??= {
      routingPreference: [],
      mode: LoadBalancingMode.UNSPECIFIED_MODE,
      healthPolicy: HealthPolicy.ONLY_HEALTHY,
    };
    lb.healthPolicy = HealthPolicy.ALLOW_ALL;
  }
  return lb;
}
