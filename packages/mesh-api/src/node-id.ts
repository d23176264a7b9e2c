/**
 * The xDS node id every proxy sends and istiod parses (see `docs/protocols.md`, "The xDS node"):
 * `<type>~<ip>~<pod>.<namespace>~<namespace>.svc.<domain>`.
 *
 * Pure: building and parsing only. istiod validates the metadata that comes beside it.
 */
export const ProxyType = {
  sidecar: 'sidecar',
  router: 'router',
  waypoint: 'waypoint',
  ztunnel: 'ztunnel',
} as const;
export type ProxyType = (typeof ProxyType)[keyof typeof ProxyType];
const PROXY_TYPES: ReadonlySet<string> = new Set(Object.values(ProxyType));

export interface NodeIdParts {
  readonly type: ProxyType;
  /** The proxy's (first) IP. */
  readonly ip: string;
  readonly podName: string;
  readonly namespace: string;
  /** Cluster DNS domain; default `cluster.local`. */
  readonly domain?: string;
}

/** Builds the node id string. */
export function nodeId(parts: NodeIdParts): string {
  const domain = parts.domain ?? 'cluster.local';
  return `${parts.type}~${parts.ip}~${parts.podName}.${parts.namespace}~${parts.namespace}.svc.${domain}`;
}

export type NodeIdParseResult =
  | { readonly ok: true; readonly value: Required<NodeIdParts> }
  | { readonly ok: false; readonly reason: string };

/** Parses a node id. Never throws; the reason says what is wrong. */
export function parseNodeId(id: string): NodeIdParseResult {
  const parts = id.split('~');
  if (parts.length !== 4) {
    return { ok: false, reason: `id ${JSON.stringify(id)} has ${parts.length} "~"-separated parts, not 4` };
  }
  const [type = '', ip = '', podId = '', dnsSuffix = ''] = parts;
  if (!PROXY_TYPES.has(type)) return { ok: false, reason: `unknown proxy type ${JSON.stringify(type)}` };
  const dot = podId.lastIndexOf('.');
  if (dot <= 0 || dot === podId.length - 1) {
    return { ok: false, reason: `pod id ${JSON.stringify(podId)} is not <pod>.<namespace>` };
  }
  const namespace = podId.slice(dot + 1);
  const prefix = `${namespace}.svc.`;
  const domain = dnsSuffix.startsWith(prefix) ? dnsSuffix.slice(prefix.length) : 'cluster.local';
  return {
    ok: true,
    value: { type: type as ProxyType, ip, podName: podId.slice(0, dot), namespace, domain },
  };
}
