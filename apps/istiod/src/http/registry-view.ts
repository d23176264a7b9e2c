/**
 * The debug views' renderings in upstream istiod's JSON shapes: `/debug/registryz` lists services
 * as upstream's `model.Service` (Attributes, ports, hostname, clusterVIPs, ...), `/debug/configz`
 * lists Istio config objects as the API server stores them. Pure functions over Kubernetes objects.
 */
import type { KubeObject, Service } from '../kube/objects.ts';

export interface RegistryContext {
  readonly clusterId: string;
  /** DNS suffix of service hostnames, `cluster.local` by default. */
  readonly domainSuffix: string;
}

/** Upstream's port protocol from the port's appProtocol, or its name prefix (`http-web` → HTTP). */
export function portProtocol(port: {
  readonly name?: string;
  readonly appProtocol?: string;
  readonly protocol?: string;
}): string {
  if (port.protocol === 'UDP') return 'UDP';
  if (port.protocol === 'SCTP') return 'SCTP';
  const hint = (port.appProtocol ?? port.name ?? '').toLowerCase().split('-')[0] ?? '';
  switch (hint) {
    case 'http':
    case 'http2':
    case 'https':
    case 'grpc':
    case 'grpc-web':
    case 'mongo':
    case 'redis':
    case 'mysql':
    case 'tcp':
    case 'tls':
      return hint === 'grpc-web' ? 'GRPC-Web' : hint === 'http2' ? 'HTTP2' : hint.toUpperCase();
    case 'kubernetes.io/h2c':
      return 'HTTP2';
    default:
      return 'UnsupportedProtocol';
  }
}

/** One Kubernetes Service as upstream's `model.Service` JSON. */
export function renderRegistryService(svc: Service, ctx: RegistryContext): Record<string, unknown> {
  const name = svc.metadata?.name ?? '';
  const namespace = svc.metadata?.namespace ?? '';
  const spec = svc.spec ?? {};
  const type = spec.type ?? 'ClusterIP';
  const vips = (spec.clusterIPs ?? (spec.clusterIP === undefined ? [] : [spec.clusterIP])).filter(
    ip => ip !== '' && ip !== 'None',
  );
  const headless = spec.clusterIP === 'None';
  const hostname = `${name}.${namespace}.svc.${ctx.domainSuffix}`;
  const lbAddresses = (svc.status?.loadBalancer?.ingress ?? [])
    .map(i => i.ip ?? i.hostname)
    .filter((a): a is string => a !== undefined && a !== '');
  return {
    Attributes: {
      ServiceRegistry: 'Kubernetes',
      Name: name,
      Namespace: namespace,
      Labels: svc.metadata?.labels ?? null,
      ExportTo: null,
      LabelSelectors: spec.selector ?? null,
      Aliases: null,
      ClusterExternalAddresses: {
        Addresses: lbAddresses.length === 0 ? null : { [ctx.clusterId]: lbAddresses },
      },
      ClusterExternalPorts: null,
      PassthroughTargetPorts: null,
      Type: type,
      ExternalName: spec.externalName ?? '',
      NodeLocal: spec.internalTrafficPolicy === 'Local',
      TrafficDistribution: 0,
      ObjectName: name,
      DNSConnectStrategy: 0,
      PublishNotReadyAddresses: spec.publishNotReadyAddresses ?? false,
    },
    ports: (spec.ports ?? []).map(p => ({
      ...(p.name === undefined || p.name === '' ? {} : { name: p.name }),
      port: p.port,
      protocol: portProtocol(p),
    })),
    creationTime: svc.metadata?.creationTimestamp ?? '0001-01-01T00:00:00Z',
    hostname,
    clusterVIPs: { Addresses: vips.length === 0 ? null : { [ctx.clusterId]: vips } },
    defaultAddress: headless ? '0.0.0.0' : (vips[0] ?? '0.0.0.0'),
    // ClientSideLB = 0, DNSLB = 1, Passthrough = 2 (upstream's Resolution enum).
    Resolution: type === 'ExternalName' ? 1 : headless ? 2 : 0,
    MeshExternal: type === 'ExternalName',
    ResourceVersion: svc.metadata?.resourceVersion ?? '',
  };
}

/** Config objects as `configz` shows them: apiVersion, kind, metadata, spec (and status). */
export function renderConfig(obj: KubeObject): Record<string, unknown> {
  const { apiVersion, kind, metadata, ...rest } = obj as KubeObject & Record<string, unknown>;
  return { kind, apiVersion, metadata, ...rest };
}
