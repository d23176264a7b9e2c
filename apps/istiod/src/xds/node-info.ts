/**
 * Parsing and validation of the xDS `Node` a proxy sends (docs/protocols.md#wds-discovery-messages):
 * `id = "<type>~<ip>~<pod>.<namespace>~<namespace>.svc.<domain>"` and a metadata Struct.
 */
import { isIP } from 'node:net';
import { ProxyType as MeshProxyType } from '@ambient-mesh/mesh-api';
import type { core } from '@ambient-mesh/xds-types';
import { fromStruct, type JsonValue } from '@ambient-mesh/xds-types';
import { NodeMetadataError } from '../errors.ts';

/** mesh-api's `ProxyType` under istiod's historical constant names. */
export const ProxyTypes = {
  SIDECAR: MeshProxyType.sidecar,
  ROUTER: MeshProxyType.router,
  WAYPOINT: MeshProxyType.waypoint,
  ZTUNNEL: MeshProxyType.ztunnel,
} as const;
export type ProxyType = (typeof ProxyTypes)[keyof typeof ProxyTypes];
const PROXY_TYPES = new Set<string>(Object.values(ProxyTypes));

export interface ProxyInfo {
  readonly id: string;
  readonly type: ProxyType;
  readonly ips: readonly string[];
  /** `<pod>.<namespace>` from the id. */
  readonly podId: string;
  /** The proxy's config namespace: metadata `NAMESPACE`, else the id's namespace. */
  readonly namespace: string;
  readonly podName: string;
  readonly nodeName: string;
  readonly clusterId: string;
  readonly serviceAccount: string;
  readonly metadata: Readonly<Record<string, JsonValue>>;
}

export type NodeParseResult = { ok: true; value: ProxyInfo } | { ok: false; error: NodeMetadataError };

export interface NodeParseOptions {
  readonly enableAmbient: boolean;
}

function str(v: JsonValue | undefined): string {
  return typeof v === 'string' ? v : '';
}

/** Parses and validates a Node. Never throws. */
export function parseNode(node: core.Node | null | undefined, options: NodeParseOptions): NodeParseResult {
  const fail = (detail: string): NodeParseResult => ({ ok: false, error: new NodeMetadataError(detail) });
  if (node === null || node === undefined) return fail('the first request of a stream must carry a node');
  const parts = node.id.split('~');
  if (parts.length !== 4)
    return fail(`id ${JSON.stringify(node.id)} has ${parts.length} "~"-separated parts, not 4`);
  const [type = '', idIp = '', podId = '', domain = ''] = parts;
  if (!PROXY_TYPES.has(type)) return fail(`unknown proxy type ${JSON.stringify(type)}`);
  if (type === ProxyTypes.ZTUNNEL && !options.enableAmbient) {
    return fail('ztunnel connected but PILOT_ENABLE_AMBIENT is off; enable ambient mode in istiod');
  }
  let metadata: Record<string, JsonValue>;
  try {
    metadata = fromStruct(node.metadata);
  } catch (err) {
    return fail(`metadata is not a valid Struct (${err instanceof Error ? err.message : String(err)})`);
  }
  const listed = str(metadata.INSTANCE_IPS)
    .split(',')
    .map(s => s.trim())
    .filter(ip => isIP(ip) !== 0);
  const ips = listed.length > 0 ? listed : isIP(idIp) !== 0 ? [idIp] : [];
  if (ips.length === 0) return fail('no valid IP in metadata INSTANCE_IPS nor in the id');
  const dot = podId.indexOf('.');
  const idNamespace = dot === -1 ? domain.split('.')[0]! : podId.slice(dot + 1);
  const namespace = str(metadata.NAMESPACE) || idNamespace;
  if (namespace === '') return fail('no namespace in metadata NAMESPACE nor in the id');
  return {
    ok: true,
    value: {
      id: node.id,
      type: type as ProxyType,
      ips,
      podId,
      namespace,
      podName: str(metadata.NAME) || (dot === -1 ? podId : podId.slice(0, dot)),
      nodeName: str(metadata.NODE_NAME),
      clusterId: str(metadata.CLUSTER_ID),
      serviceAccount: str(metadata.SERVICE_ACCOUNT),
      metadata,
    },
  };
}
