import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname, join, normalize } from 'node:path';
import type { V1Pod, V1Volume, V1KeyToPath, V1DownwardAPIVolumeFile } from '@kubernetes/client-node';
import { ClusterError, ClusterErrorCode } from '../errors.ts';
import type { KubeClient } from '@ambient-mesh/kube';

/** A volume materialized on disk: the dir that gets bind-mounted at each mountPath. */
export interface PreparedVolume {
  readonly name: string;
  readonly path: string;
  /** hostPath volumes are mounted from the host as is. */
  readonly host: boolean;
}

interface TokenResponse {
  status: { token: string; expirationTimestamp: string };
}

interface ConfigMapLike {
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
}

/**
 * Host paths that stay the machine's own on every node: network namespaces (pods' netns are
 * named machine-wide and unique per pod), and the kernel's pseudo filesystems.
 */
export const SHARED_HOST_PATHS = ['/run/netns', '/var/run/netns', '/proc', '/sys', '/dev'] as const;

/**
 * Where a node's `hostPath` lives on this machine. Nodes of the local cluster share one
 * filesystem, so each gets its own root (`hostRoot`) as a kind node container would have: a
 * DaemonSet's `/var/run/ztunnel` is then per node. `SHARED_HOST_PATHS` are not remapped.
 */
export function nodeHostPath(hostRoot: string | undefined, path: string): string {
  const p = normalize(path);
  if (hostRoot === undefined) return p;
  if (SHARED_HOST_PATHS.some(s => p === s || p.startsWith(`${s}/`))) return p;
  return join(hostRoot, p);
}

/** Refreshes of projected tokens still pending; cancel() stops them (pod teardown). */
export interface TokenRefresher {
  cancel(): void;
}

/** Resolves a downward-API fieldRef (`metadata.name`, `metadata.labels['app']`, ...) on a pod. */
export function fieldRefValue(pod: V1Pod, fieldPath: string): string {
  const m = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(fieldPath);
  if (m) {
    const map = m[1] === 'labels' ? pod.metadata?.labels : pod.metadata?.annotations;
    return map?.[m[2]!] ?? '';
  }
  switch (fieldPath) {
    case 'metadata.name':
      return pod.metadata?.name ?? '';
    case 'metadata.namespace':
      return pod.metadata?.namespace ?? '';
    case 'metadata.uid':
      return pod.metadata?.uid ?? '';
    case 'metadata.labels':
      return Object.entries(pod.metadata?.labels ?? {})
        .map(([k, v]) => `${k}="${v}"`)
        .join('\n');
    case 'metadata.annotations':
      return Object.entries(pod.metadata?.annotations ?? {})
        .map(([k, v]) => `${k}="${v}"`)
        .join('\n');
    case 'spec.nodeName':
      return pod.spec?.nodeName ?? '';
    case 'spec.serviceAccountName':
      return pod.spec?.serviceAccountName ?? 'default';
    case 'status.podIP':
      return pod.status?.podIP ?? '';
    case 'status.podIPs':
      return (pod.status?.podIPs ?? []).map(p => p.ip).join(',');
    case 'status.hostIP':
      return pod.status?.hostIP ?? '';
    case 'status.hostIPs':
      return (pod.status?.hostIPs ?? []).map(p => p.ip).join(',');
    default:
      throw new ClusterError(
        ClusterErrorCode.Unsupported,
        `downward API field '${fieldPath}' is not supported by the local kubelet`,
      );
  }
}

async function writeAtomic(path: string, data: string | Buffer, mode = 0o644): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, data, { mode });
  await rename(tmp, path);
}

/**
 * Materializes a pod's volumes under `podDir/volumes/<name>`: projected service-account tokens
 * (TokenRequest bound to the Pod, with the requested audience and expiry, refreshed at 80% of
 * their lifetime), configMaps, secrets, downward API, emptyDir and hostPath.
 */
export class VolumeManager {
  private readonly client: KubeClient;
  private readonly setTimer: typeof setTimeout;
  private readonly clearTimer: typeof clearTimeout;
  private readonly hostRoot: string | undefined;

  constructor(
    client: KubeClient,
    timers: { setTimeout: typeof setTimeout; clearTimeout: typeof clearTimeout } = globalThis,
    hostRoot?: string,
  ) {
    this.client = client;
    this.hostRoot = hostRoot;
    this.setTimer = timers.setTimeout;
    this.clearTimer = timers.clearTimeout;
  }

  async prepare(
    pod: V1Pod,
    podDir: string,
  ): Promise<{ volumes: PreparedVolume[]; refresher: TokenRefresher }> {
    const timers = new Set<NodeJS.Timeout>();
    let cancelled = false;
    const refresher: TokenRefresher = {
      cancel: () => {
        cancelled = true;
        for (const t of timers) this.clearTimer(t);
        timers.clear();
      },
    };
    const schedule = (fn: () => Promise<number>, ms: number): void => {
      if (cancelled) return;
      const t = this.setTimer(() => {
        timers.delete(t);
        void fn().then(
          next => {
            schedule(fn, next);
          },
          () => {
            schedule(fn, 10_000);
          },
        );
      }, ms);
      t.unref();
      timers.add(t);
    };
    const volumes: PreparedVolume[] = [];
    for (const vol of pod.spec?.volumes ?? []) {
      if (vol.hostPath) {
        const path = nodeHostPath(this.hostRoot, vol.hostPath.path);
        const type = vol.hostPath.type ?? '';
        // A node's own root starts empty where a kind node has /opt/cni/bin etc.: directories
        // (and unchecked paths) are created there; on the machine only when asked to.
        const create =
          type === 'DirectoryOrCreate' ||
          (path !== vol.hostPath.path && (type === '' || type === 'Directory'));
        if (create) await mkdir(path, { recursive: true });
        volumes.push({ name: vol.name, path, host: true });
        continue;
      }
      const dir = join(podDir, 'volumes', vol.name);
      await mkdir(dir, { recursive: true });
      await this.fill(pod, vol, dir, schedule);
      volumes.push({ name: vol.name, path: dir, host: false });
    }
    return { volumes, refresher };
  }

  private async fill(
    pod: V1Pod,
    vol: V1Volume,
    dir: string,
    schedule: (fn: () => Promise<number>, ms: number) => void,
  ): Promise<void> {
    const ns = pod.metadata?.namespace ?? 'default';
    if (vol.emptyDir) return;
    if (vol.configMap) {
      await this.writeSource(
        dir,
        await this.configMap(ns, vol.configMap.name!, vol.configMap.optional),
        vol.configMap.items,
      );
      return;
    }
    if (vol.secret) {
      await this.writeSource(
        dir,
        await this.secret(ns, vol.secret.secretName!, vol.secret.optional),
        vol.secret.items,
        0o600,
      );
      return;
    }
    if (vol.downwardAPI) {
      await this.writeDownward(pod, dir, vol.downwardAPI.items ?? []);
      return;
    }
    if (vol.projected) {
      for (const src of vol.projected.sources ?? []) {
        if (src.serviceAccountToken) {
          const tok = src.serviceAccountToken;
          const write = async (): Promise<number> => {
            const { token, lifetimeMs } = await this.requestToken(pod, tok.audience, tok.expirationSeconds);
            await writeAtomic(join(dir, tok.path), token, 0o644);
            return Math.max(Math.floor(lifetimeMs * 0.8), 1_000);
          };
          const next = await write();
          schedule(write, next);
        } else if (src.configMap) {
          await this.writeSource(
            dir,
            await this.configMap(ns, src.configMap.name!, src.configMap.optional),
            src.configMap.items,
          );
        } else if (src.secret) {
          await this.writeSource(
            dir,
            await this.secret(ns, src.secret.name!, src.secret.optional),
            src.secret.items,
            0o600,
          );
        } else if (src.downwardAPI) {
          await this.writeDownward(pod, dir, src.downwardAPI.items ?? []);
        }
      }
      return;
    }
    throw new ClusterError(
      ClusterErrorCode.Unsupported,
      `volume '${vol.name}' of pod ${ns}/${pod.metadata?.name}: only projected, configMap, secret, downwardAPI, emptyDir and hostPath volumes are supported locally`,
    );
  }

  /** TokenRequest for the pod's service account, bound to the Pod object. */
  async requestToken(
    pod: V1Pod,
    audience: string | undefined,
    expirationSeconds: number | undefined,
  ): Promise<{ token: string; lifetimeMs: number }> {
    const ns = pod.metadata?.namespace ?? 'default';
    const sa = pod.spec?.serviceAccountName ?? 'default';
    const res = await this.client.create<TokenResponse>(
      `/api/v1/namespaces/${ns}/serviceaccounts/${sa}/token`,
      {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: {
          ...(audience === undefined || audience === '' ? {} : { audiences: [audience] }),
          expirationSeconds: expirationSeconds ?? 3607,
          boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata?.name, uid: pod.metadata?.uid },
        },
      },
    );
    const lifetimeMs = Date.parse(res.status.expirationTimestamp) - Date.now();
    return { token: res.status.token, lifetimeMs: Number.isFinite(lifetimeMs) ? lifetimeMs : 600_000 };
  }

  private async configMap(
    ns: string,
    name: string,
    optional: boolean | undefined,
  ): Promise<Map<string, Buffer>> {
    const cm = await this.client.find<ConfigMapLike>(`/api/v1/namespaces/${ns}/configmaps/${name}`);
    if (cm === undefined) {
      if (optional === true) return new Map();
      throw new ClusterError(
        ClusterErrorCode.ApiError,
        `configMap ${ns}/${name} not found (the pod mounts it)`,
      );
    }
    const out = new Map<string, Buffer>();
    for (const [k, v] of Object.entries(cm.data ?? {})) out.set(k, Buffer.from(v));
    for (const [k, v] of Object.entries(cm.binaryData ?? {})) out.set(k, Buffer.from(v, 'base64'));
    return out;
  }

  private async secret(
    ns: string,
    name: string,
    optional: boolean | undefined,
  ): Promise<Map<string, Buffer>> {
    const s = await this.client.find<{ data?: Record<string, string> }>(
      `/api/v1/namespaces/${ns}/secrets/${name}`,
    );
    if (s === undefined) {
      if (optional === true) return new Map();
      throw new ClusterError(ClusterErrorCode.ApiError, `secret ${ns}/${name} not found (the pod mounts it)`);
    }
    return new Map(Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')]));
  }

  private async writeSource(
    dir: string,
    data: Map<string, Buffer>,
    items: V1KeyToPath[] | undefined,
    mode = 0o644,
  ): Promise<void> {
    if (items === undefined || items.length === 0) {
      for (const [k, v] of data) await writeAtomic(join(dir, k), v, mode);
      return;
    }
    for (const item of items) {
      const v = data.get(item.key);
      if (v !== undefined) await writeAtomic(join(dir, item.path), v, item.mode ?? mode);
    }
  }

  private async writeDownward(pod: V1Pod, dir: string, items: V1DownwardAPIVolumeFile[]): Promise<void> {
    for (const item of items) {
      if (item.fieldRef) await writeAtomic(join(dir, item.path), fieldRefValue(pod, item.fieldRef.fieldPath));
    }
  }
}
