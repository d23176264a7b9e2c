/**
 * Upstream istiod's `/debug/syncz` JSON (pilot's `SyncStatus`), made from our per-stream sync
 * status: one entry per connected proxy with the nonces sent and ACKed per type URL. The
 * Envoy-type columns (`cluster_sent`, ...) stay empty for ztunnels, as upstream's do.
 */
import { TypeUrl } from '@ambient-mesh/mesh-api';
import type { ConnectionStatus } from '../xds/delta-server.ts';

export interface UpstreamResourceStatus {
  readonly sent?: string;
  readonly acked?: string;
  readonly sentTime?: string;
  readonly lastError?: string;
}

/** Upstream's SyncStatus; fields with Go's `omitempty` are left out when empty. */
export type UpstreamSyncStatus = Readonly<Record<string, string | Record<string, UpstreamResourceStatus>>>;

const ENVOY_COLUMNS: readonly (readonly [string, string])[] = [
  ['cluster', TypeUrl.cluster],
  ['listener', TypeUrl.listener],
  ['route', TypeUrl.routeConfiguration],
  ['endpoint', TypeUrl.clusterLoadAssignment],
  ['extensionconfig', 'type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig'],
];

function put(out: Record<string, unknown>, key: string, value: string | undefined): void {
  if (value !== undefined && value !== '') out[key] = value;
}

export function upstreamSyncStatus(c: ConnectionStatus): UpstreamSyncStatus {
  const out: Record<string, unknown> = {};
  put(out, 'cluster_id', c.proxy.clusterId);
  put(out, 'proxy', c.proxy.podId);
  put(out, 'proxy_type', c.proxy.type);
  const istioVersion = c.proxy.metadata['ISTIO_VERSION'];
  put(out, 'istio_version', typeof istioVersion === 'string' ? istioVersion : undefined);
  const byType = new Map(c.types.map(t => [t.typeUrl, t]));
  for (const [column, typeUrl] of ENVOY_COLUMNS) {
    const t = byType.get(typeUrl);
    put(out, `${column}_sent`, t?.lastNonceSent);
    put(out, `${column}_acked`, t?.lastNonceAcked);
  }
  const resources: Record<string, UpstreamResourceStatus> = {};
  for (const t of c.types) {
    const r: Record<string, string> = {};
    put(r, 'sent', t.lastNonceSent);
    put(r, 'acked', t.lastNonceAcked);
    put(r, 'lastError', t.lastNack);
    resources[t.typeUrl] = r;
  }
  if (c.types.length > 0) out['resources'] = resources;
  return out as UpstreamSyncStatus;
}

/** `/debug/syncz[?namespace=]`: every connected proxy, sorted by proxy id (`<pod>.<namespace>`, as upstream). */
export function renderSyncz(
  connections: readonly ConnectionStatus[],
  namespace?: string,
): UpstreamSyncStatus[] {
  return connections
    .filter(c => namespace === undefined || namespace === '' || c.proxy.namespace === namespace)
    .sort((a, b) => (a.proxy.podId < b.proxy.podId ? -1 : a.proxy.podId > b.proxy.podId ? 1 : 0))
    .map(upstreamSyncStatus);
}
