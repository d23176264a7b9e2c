/**
 * istiod's `/debug/syncz` (upstream pilot's `SyncStatus`, the fields read here) and the sync state
 * `istioctl proxy-status` derives from it per xDS type: SYNCED (the last send ACKed), STALE (sent,
 * not ACKed), NOT SENT, ERROR (NACKed). Pure; `ambientctl proxy-status` and the console's
 * waypoint page both read istiod's answer through these.
 */
import { DEBUG_TYPE_PREFIX, TypeUrl } from './type-urls.ts';

/** One resource type's state in istiod's `/debug/syncz` entry. */
export interface SyncResource {
  readonly sent?: string;
  readonly acked?: string;
  readonly lastError?: string;
}

/** One entry of `/debug/syncz` (upstream pilot's `SyncStatus`, the fields we read). */
export interface SyncStatusEntry {
  readonly cluster_id?: string;
  readonly proxy?: string;
  readonly proxy_type?: string;
  readonly istio_version?: string;
  readonly resources?: Readonly<Record<string, SyncResource>>;
}

export type SyncState = 'SYNCED' | 'STALE' | 'NOT SENT' | 'ERROR';

export interface ProxyStatusRow {
  /** `<pod>.<namespace>`. */
  readonly name: string;
  readonly cluster: string;
  readonly istiod: string;
  readonly version: string;
  readonly proxyType: string;
  /** Short type name (`WDS`) to its state. */
  readonly types: Readonly<Record<string, SyncState>>;
}

/** istioctl's short names of xDS types. */
export const SHORT_TYPE: Readonly<Record<string, string>> = {
  [TypeUrl.cluster]: 'CDS',
  [TypeUrl.listener]: 'LDS',
  [TypeUrl.clusterLoadAssignment]: 'EDS',
  [TypeUrl.routeConfiguration]: 'RDS',
  'type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig': 'ECDS',
  [TypeUrl.address]: 'WDS',
  [TypeUrl.authorization]: 'WADS',
  [TypeUrl.secret]: 'SDS',
};

/**
 * The order istioctl prints types in (`4 (CDS,LDS,EDS,RDS)`, Envoy's own order of the xDS APIs);
 * other types (a ztunnel's `WADS,WDS`) follow by name.
 */
const TYPE_ORDER: readonly string[] = ['CDS', 'LDS', 'EDS', 'RDS', 'ECDS', 'SDS'];

export function orderTypes(types: Iterable<string>): string[] {
  const rank = (t: string): number => {
    const i = TYPE_ORDER.indexOf(t);
    return i < 0 ? TYPE_ORDER.length : i;
  };
  return [...types].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
}

export function shortType(typeUrl: string): string {
  return SHORT_TYPE[typeUrl] ?? typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
}

/** A type's state: NACKed (ERROR), the last send ACKed (SYNCED), sent but not ACKed (STALE). */
export function syncState(r: SyncResource): SyncState {
  if (r.lastError !== undefined && r.lastError !== '') return 'ERROR';
  if (r.sent === undefined || r.sent === '') return 'NOT SENT';
  return r.acked === r.sent ? 'SYNCED' : 'STALE';
}

/**
 * A debug client rather than a proxy: istiod's `/debug/syncz` lists every xDS stream, including
 * the short-lived ones of `istioctl proxy-status` / `istioctl x version` (a `sidecar` node that
 * asks only for `istio.io/debug/...` types). istioctl leaves those out of its table (upstream's
 * `isProxy`), and so do we; otherwise a stream still closing when we read would add a row.
 */
export function isDebugClient(e: SyncStatusEntry): boolean {
  if (e.proxy_type !== 'sidecar') return false;
  return Object.keys(e.resources ?? {}).every(url => url.startsWith(DEBUG_TYPE_PREFIX));
}

/**
 * Rows from each istiod's answer (debug clients left out), sorted by proxy name; `filter` keeps
 * one proxy or namespace.
 */
export function proxyStatusRows(
  answers: readonly { readonly istiod: string; readonly entries: readonly SyncStatusEntry[] }[],
  filter: { readonly proxy?: string | undefined; readonly namespace?: string | undefined } = {},
): ProxyStatusRow[] {
  const rows = answers.flatMap(a =>
    a.entries
      .filter(e => !isDebugClient(e))
      .map(e => {
        const types: Record<string, SyncState> = {};
        for (const [url, r] of Object.entries(e.resources ?? {})) types[shortType(url)] = syncState(r);
        return {
          name: e.proxy ?? '',
          cluster: e.cluster_id ?? '',
          istiod: a.istiod,
          version: e.istio_version ?? '',
          proxyType: e.proxy_type ?? '',
          types,
        };
      }),
  );
  return rows
    .filter(r => {
      if (filter.proxy !== undefined) return r.name === filter.proxy || r.name.split('.')[0] === filter.proxy;
      if (filter.namespace !== undefined) return r.name.slice(r.name.indexOf('.') + 1) === filter.namespace;
      return true;
    })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.istiod.localeCompare(b.istiod)));
}

function isEntries(v: unknown): v is SyncStatusEntry[] {
  return Array.isArray(v) && v.every(e => typeof e === 'object' && e !== null);
}

/** The entries of a `/debug/syncz` body, or undefined when it is not JSON holding a list of them. */
export function parseSyncz(body: string): SyncStatusEntry[] | undefined {
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    return undefined;
  }
  return isEntries(v) ? v : undefined;
}
