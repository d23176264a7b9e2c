/**
 * The Envoy `Node` a ztunnel sends on its delta-xDS stream (docs/protocols.md#wds-discovery-messages):
 * id `ztunnel~<ip>~<pod>.<ns>~<ns>.svc.<domain>` and a metadata Struct with NAME, NAMESPACE,
 * INSTANCE_IPS, NODE_NAME and the ISTIO_META_* keys (CLUSTER_ID).
 */
import { ProxyType, nodeId } from '@ambient-mesh/mesh-api';
import { toStruct, type JsonObject, type core } from '@ambient-mesh/xds-types';

export interface ZtunnelNodeOptions {
  /** The ztunnel pod's IP (ztunnel's INSTANCE_IP). */
  readonly ip: string;
  readonly podName: string;
  readonly namespace: string;
  /** The Kubernetes node the ztunnel serves (NODE_NAME). */
  readonly nodeName: string;
  /** `CLUSTER_ID` metadata; default `Kubernetes`. */
  readonly clusterId?: string;
  /** Cluster DNS domain used in the node id; default `cluster.local`. */
  readonly domain?: string;
  /** Extra metadata keys (ztunnel's `ISTIO_META_<K>` env), merged last. */
  readonly extraMetadata?: JsonObject;
}

/** The node id string istiod parses: 4 `~`-separated parts, type `ztunnel`. */
export function ztunnelNodeId(
  options: Pick<ZtunnelNodeOptions, 'ip' | 'podName' | 'namespace' | 'domain'>,
): string {
  return nodeId({
    type: ProxyType.ztunnel,
    ip: options.ip,
    podName: options.podName,
    namespace: options.namespace,
    ...(options.domain === undefined ? {} : { domain: options.domain }),
  });
}

/** The `Node` message of a ztunnel, ready for `DeltaDiscoveryRequest.node`. */
export function ztunnelNode(options: ZtunnelNodeOptions): core.NodeInit {
  return {
    id: ztunnelNodeId(options),
    metadata: toStruct({
      NAME: options.podName,
      NAMESPACE: options.namespace,
      INSTANCE_IPS: options.ip,
      NODE_NAME: options.nodeName,
      CLUSTER_ID: options.clusterId ?? 'Kubernetes',
      ...options.extraMetadata,
    }),
  };
}
