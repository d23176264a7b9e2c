/**
 * istioctl's debug requests over ADS on 15012 (docs/protocols.md#istioctl-debug-requests):
 * `istioctl proxy-status` and `istioctl x version` open a state-of-the-world stream as
 * `default` in istiod's namespace and ask for `istio.io/debug/syncz`. The answer lists every
 * connected proxy as an Envoy CSDS `ClientConfig` (node id, cluster, namespace, Istio version and
 * the sync state per subscribed type URL), and the response's `control_plane.identifier` names
 * this istiod and its build, as upstream's `StatusGen` does.
 *
 * Everything here is pure: the connections and the caller come in, the response goes out.
 */
import { DEBUG_TYPE_PREFIX, DebugType } from '@ambient-mesh/mesh-api';
import type { GeneratedResponse, TypeSyncStatus } from '@ambient-mesh/xds';
import { ClientConfigCodec, status, toStruct } from '@ambient-mesh/xds-types';
import type { CallerIdentity } from '../auth/token-review.ts';
import type { BuildInfo } from '../build-info.ts';
import { ProxyTypes, type ProxyInfo } from './node-info.ts';

/** What a debug answer reads of a connected stream (delta-server's `ConnectionStatus`). */
export interface DebugConnection {
  readonly proxy: ProxyInfo;
  readonly types: readonly TypeSyncStatus[];
}

const CLIENT_CONFIG_TYPE_URL = 'type.googleapis.com/envoy.service.status.v3.ClientConfig';

/** Upstream's `IstioControlPlaneInstance` JSON (Go field names, `BuildInfo` JSON tags). */
export function controlPlaneIdentifier(podName: string, build: BuildInfo): string {
  return JSON.stringify({
    Component: 'istiod',
    ID: podName,
    Info: {
      version: build.version,
      revision: build.gitRevision,
      golang_version: `node-${process.versions.node}`,
      status: build.buildStatus,
      tag: build.gitTag,
    },
  });
}

/**
 * Proxies are what upstream lists: ztunnels, and proxies that sent `PROXY_CONFIG` metadata.
 * Debug clients such as istioctl (a `sidecar` node without it) are left out.
 */
export function isReportedProxy(c: DebugConnection): boolean {
  return c.proxy.type === ProxyTypes.ZTUNNEL || c.proxy.metadata['PROXY_CONFIG'] !== undefined;
}

function configStatus(t: TypeSyncStatus): status.ConfigStatus {
  if (t.lastNack !== undefined) return status.ConfigStatus.ERROR;
  if (t.lastNonceSent === '') return status.ConfigStatus.NOT_SENT;
  if (t.lastNonceAcked === t.lastNonceSent) return status.ConfigStatus.SYNCED;
  return status.ConfigStatus.STALE;
}

function timestamp(ms: number): { seconds: number; nanos: number } {
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}

/** One proxy's CSDS view, as upstream's `debugSyncz` builds it; the node id is `<pod>.<namespace>`. */
export function syncClientConfig(c: DebugConnection): status.ClientConfigInit {
  const metadata: Record<string, string> = {};
  if (c.proxy.clusterId !== '') metadata['CLUSTER_ID'] = c.proxy.clusterId;
  metadata['NAMESPACE'] = c.proxy.namespace;
  const version = c.proxy.metadata['ISTIO_VERSION'];
  if (typeof version === 'string' && version !== '') metadata['ISTIO_VERSION'] = version;
  const configs = [...c.types]
    .sort((a, b) => (a.typeUrl < b.typeUrl ? -1 : a.typeUrl > b.typeUrl ? 1 : 0))
    .map((t): status.ClientConfig_GenericXdsConfigInit => {
      const sentAt = t.lastSentAtMs > 0 ? timestamp(t.lastSentAtMs) : null;
      return {
        typeUrl: t.typeUrl,
        configStatus: configStatus(t),
        lastUpdated: sentAt,
        errorState: t.lastNack === undefined ? null : { lastUpdateAttempt: sentAt, details: t.lastNack },
      };
    });
  return { node: { id: c.proxy.podId, metadata: toStruct(metadata) }, genericXdsConfigs: configs };
}

export interface DebugRequest {
  readonly typeUrl: string;
  readonly resourceNames: readonly string[];
  /** The stream's verified caller; undefined when istiod runs without xDS authentication. */
  readonly caller: CallerIdentity | undefined;
  /** istiod's namespace (the mesh root): its callers see every proxy. */
  readonly systemNamespace: string;
  readonly connections: readonly DebugConnection[];
  readonly controlPlane: string;
}

/**
 * The answer to an `istio.io/debug/...` request, or undefined for other type URLs. A caller from
 * another namespace than istiod's sees only the proxies of its own namespace, as upstream.
 */
export function answerDebugRequest(req: DebugRequest): GeneratedResponse | undefined {
  if (!req.typeUrl.startsWith(DEBUG_TYPE_PREFIX)) return undefined;
  const controlPlane = { identifier: req.controlPlane };
  if (req.typeUrl !== DebugType.syncz) return { resources: [], controlPlane };
  const only =
    req.caller === undefined || req.caller.namespace === req.systemNamespace
      ? undefined
      : req.caller.namespace;
  const resources = req.connections
    .filter(c => isReportedProxy(c) && (only === undefined || c.proxy.namespace === only))
    .sort((a, b) => (a.proxy.podId < b.proxy.podId ? -1 : a.proxy.podId > b.proxy.podId ? 1 : 0))
    .map(c => ({
      name: c.proxy.podId,
      resource: { type_url: CLIENT_CONFIG_TYPE_URL, value: ClientConfigCodec.encode(syncClientConfig(c)) },
    }));
  return { resources, controlPlane };
}
