/**
 * The xDS sync state of a waypoint's proxies, as `istioctl proxy-status` shows it: each Running
 * istiod pod's `/debug/syncz` (upstream pilot's `SyncStatus`, read through a pod port-forward to
 * its loopback monitoring port 15014, as `ambientctl proxy-status` reads it) turned into one row
 * per connected proxy with SYNCED, STALE, NOT SENT or ERROR per xDS type
 * (`@ambient-mesh/mesh-api`'s `proxyStatusRows`, shared with the CLI). `readSyncState` does the
 * reading and never throws: an istiod that does not answer is listed in `errors`;
 * `waypointSync` is pure.
 */
import { errorMessage } from '@ambient-mesh/errors';
import {
  parseSyncz,
  proxyStatusRows,
  type ProxyStatusRow,
  type SyncStatusEntry,
} from '@ambient-mesh/mesh-api';
import type { WaypointProxySync, WaypointSyncView } from './model.ts';
import type { MeshSnapshot, PodObject } from './snapshot.ts';

/** Reads one istiod pod's `/debug/syncz` body (default: a port-forward to its port 15014). */
export type SyncReader = (namespace: string, pod: string) => Promise<string>;

export const SYNC_UNAVAILABLE = 'CONSOLE_SYNC_UNAVAILABLE';

export interface SyncState {
  readonly rows: readonly ProxyStatusRow[];
  /** The istiod pods asked; empty when none runs. */
  readonly istiods: readonly string[];
  /** istiod pods whose answer could not be read, with what to check. */
  readonly errors: readonly { readonly pod: string; readonly message: string }[];
}

export function istiodPods(snap: MeshSnapshot, systemNamespace: string): PodObject[] {
  return snap.pods
    .filter(
      p =>
        p.metadata.namespace === systemNamespace &&
        p.metadata.labels?.['app'] === 'istiod' &&
        p.status?.phase === 'Running',
    )
    .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
}

export async function readSyncState(
  snap: MeshSnapshot,
  systemNamespace: string,
  read: SyncReader,
): Promise<SyncState> {
  const pods = istiodPods(snap, systemNamespace);
  const errors: { pod: string; message: string }[] = [];
  const answers = await Promise.all(
    pods.map(async p => {
      const name = p.metadata.name;
      let body: string;
      try {
        body = await read(systemNamespace, name);
      } catch (err) {
        errors.push({
          pod: name,
          message: `istiod ${name} did not answer /debug/syncz on its monitoring port 15014 (${errorMessage(err)}); check the pod is Ready and that the console may create pods/portforward`,
        });
        return undefined;
      }
      const entries: SyncStatusEntry[] | undefined = parseSyncz(body);
      if (entries === undefined) {
        errors.push({
          pod: name,
          message: `istiod ${name} answered /debug/syncz with something that is not a list of sync states`,
        });
        return undefined;
      }
      return { istiod: name, entries };
    }),
  );
  return {
    rows: proxyStatusRows(answers.filter(a => a !== undefined)),
    istiods: pods.map(p => p.metadata.name),
    errors: errors.sort((a, b) => a.pod.localeCompare(b.pod)),
  };
}

/**
 * The sync view of one waypoint: a row per proxy pod (`<pod>.<namespace>`, as istiod names it),
 * `connected: false` for a pod no istiod lists; `error` when the state could not be read.
 */
export function waypointSync(
  proxyPods: readonly string[],
  namespace: string,
  state: SyncState,
): WaypointSyncView {
  const proxies: WaypointProxySync[] = proxyPods.map(pod => {
    const row = state.rows.find(r => r.name === `${pod}.${namespace}`);
    return row === undefined
      ? { pod, connected: false, istiod: undefined, types: {} }
      : { pod, connected: true, istiod: row.istiod, types: row.types };
  });
  let error: WaypointSyncView['error'];
  if (state.istiods.length === 0) {
    error = {
      code: SYNC_UNAVAILABLE,
      message: 'no istiod pod runs: the sync state comes from istiod (/debug/syncz)',
    };
  } else if (state.errors.length === state.istiods.length) {
    error = { code: SYNC_UNAVAILABLE, message: state.errors.map(e => e.message).join('; ') };
  }
  return { proxies, error };
}
