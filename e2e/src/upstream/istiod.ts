/**
 * Runs upstream istiod (pilot-discovery) against a running local cluster, out of cluster, as
 * local-cluster-recipe.md Recipe B describes: CRDs first, namespace `istio-system`, SA `ztunnel`
 * and a ztunnel Pod bound to a node (so a pod-bound token exists for the node-proxy paths), then
 * istiod in its own working dir with every listener on 127.0.0.1, `/ready`, and the root cert
 * from ConfigMap `istio-ca-root-cert`.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { ClusterError, ClusterErrorCode } from '../errors.ts';
import { waitFor } from '../exec.ts';
import type { KubeClient } from '@ambient-mesh/kube';
import { ManagedProcess } from '../managed-process.ts';
import { applyCrds } from './crds.ts';
import type { UpstreamIstio } from './install.ts';

export const ISTIO_SYSTEM = 'istio-system';

/**
 * Env that makes a newer istiod behave like 1.27 where defaults changed since
 * (`manifests/charts/base/files/profile-compatibility-version-1.27.yaml` of the module). None of
 * these touch WDS; they are set so the oracle is as close to 1.27 as the build allows.
 */
export const COMPATIBILITY_1_27_ENV: Readonly<Record<string, string>> = {
  DISABLE_SHADOW_HOST_SUFFIX: 'false',
  PILOT_SPAWN_UPSTREAM_SPAN_FOR_GATEWAY: 'false',
  DISABLE_TRACK_REMAINING_CB_METRICS: 'false',
  PILOT_SIDECAR_PICK_BEST_SERVICE_NAMESPACE: 'false',
};

export interface IstiodPorts {
  /** `--httpAddr`: `/ready` and debug. */
  readonly http: number;
  /** `--grpcAddr`: plaintext xDS. */
  readonly grpc: number;
  /** `--secureGRPCAddr`: xDS + CA over TLS (the port ztunnel dials, 15012 in a cluster). */
  readonly secureGrpc: number;
  /** `--httpsAddr`: webhooks. */
  readonly https: number;
  /** `--monitoringAddr`: Prometheus metrics. */
  readonly monitoring: number;
}

/** The ztunnel stand-in: a Pod of SA `istio-system/ztunnel` on one node, and its pod-bound token. */
export interface ZtunnelIdentity {
  readonly podName: string;
  readonly namespace: string;
  readonly uid: string;
  readonly nodeName: string;
  readonly ip: string;
  readonly serviceAccount: string;
  /** TokenRequest token, audience `istio-ca`, bound to the Pod. */
  readonly token: string;
}

export interface StartUpstreamIstiodOptions {
  /** The running cluster: admin kubeconfig, a client and its nodes. */
  readonly cluster: {
    readonly kubeconfig: string;
    readonly client: KubeClient;
    readonly nodes: readonly { readonly name: string }[];
  };
  readonly istio: UpstreamIstio;
  /** CRD files to apply instead of the build's own (`istio.crdFiles`). */
  readonly crdFiles?: readonly string[];
  /** istiod's own working dir (its relative ./etc paths resolve there); the log goes here too. */
  readonly workDir: string;
  /** Node of the ztunnel Pod; default the first node. */
  readonly ztunnelNode?: string;
  /** `CLUSTER_ID`; default `Kubernetes`. */
  readonly clusterId?: string;
  /** Extra env for istiod, applied last. */
  readonly env?: Readonly<Record<string, string>>;
  /** Fixed ports; free loopback ports are picked for the others. */
  readonly ports?: Partial<IstiodPorts>;
  readonly progress?: (line: string) => void;
  /** Deadline for `/ready` (default 120 s). */
  readonly readyTimeoutMs?: number;
}

export interface UpstreamIstiod {
  readonly version: string;
  readonly ports: IstiodPorts;
  /** `127.0.0.1:<secureGrpc>`: dial with server name `istiod.istio-system.svc`. */
  readonly xdsAddress: string;
  /** PEM root from ConfigMap `istio-ca-root-cert`. */
  readonly rootCert: string;
  readonly clusterId: string;
  readonly ztunnel: ZtunnelIdentity;
  readonly logFile: string;
  readonly process: ManagedProcess;
  /** Mints another token for the ztunnel SA (`boundToPod: false` gives a token that is not pod-bound). */
  mintZtunnelToken(options?: { boundToPod?: boolean; audience?: string }): Promise<string>;
  /** Stops istiod (SIGTERM, then SIGKILL) and deletes the ztunnel Pod. */
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (free when asked; bind it soon). */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => {
        resolve(port);
      });
    });
  });
}

async function pickPorts(fixed: Partial<IstiodPorts>): Promise<IstiodPorts> {
  return {
    http: fixed.http ?? (await freeLoopbackPort()),
    grpc: fixed.grpc ?? (await freeLoopbackPort()),
    secureGrpc: fixed.secureGrpc ?? (await freeLoopbackPort()),
    https: fixed.https ?? (await freeLoopbackPort()),
    monitoring: fixed.monitoring ?? (await freeLoopbackPort()),
  };
}

function httpStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { timeout: 2_000 }, res => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

function logTail(path: string, lines = 30): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Namespace `istio-system` and ServiceAccounts `ztunnel` and `istiod` (idempotent). */
export async function prepareIstioSystem(client: KubeClient): Promise<void> {
  await client.ensure('/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: ISTIO_SYSTEM },
  });
  for (const name of ['ztunnel', 'istiod']) {
    await client.ensure(`/api/v1/namespaces/${ISTIO_SYSTEM}/serviceaccounts`, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name, namespace: ISTIO_SYSTEM },
    });
  }
}

/** Mints a token for `namespace/serviceAccount` with TokenRequest, optionally bound to a Pod. */
export async function mintServiceAccountToken(
  client: KubeClient,
  options: {
    namespace: string;
    serviceAccount: string;
    audience?: string;
    boundPod?: { name: string; uid: string };
    expirationSeconds?: number;
  },
): Promise<string> {
  const res = await client.create<{ status?: { token?: string } }>(
    `/api/v1/namespaces/${options.namespace}/serviceaccounts/${options.serviceAccount}/token`,
    {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: {
        audiences: [options.audience ?? 'istio-ca'],
        expirationSeconds: options.expirationSeconds ?? 86_400,
        ...(options.boundPod === undefined
          ? {}
          : {
              boundObjectRef: {
                apiVersion: 'v1',
                kind: 'Pod',
                name: options.boundPod.name,
                uid: options.boundPod.uid,
              },
            }),
      },
    },
  );
  const token = res.status?.token;
  if (token === undefined || token === '') {
    throw new ClusterError(
      ClusterErrorCode.ApiError,
      `TokenRequest for ${options.namespace}/${options.serviceAccount} returned no token; check the apiserver's service-account flags`,
    );
  }
  return token;
}

/**
 * Creates (or reuses) the ztunnel Pod on `nodeName`: SA `istio-system/ztunnel`, label `app=ztunnel`,
 * a sleep process from the harness's `ambient-mesh/shell` image. Waits for its IP and mints its
 * pod-bound token.
 */
export async function createZtunnelIdentity(client: KubeClient, nodeName: string): Promise<ZtunnelIdentity> {
  const podName = `ztunnel-${nodeName}`;
  const podsPath = `/api/v1/namespaces/${ISTIO_SYSTEM}/pods`;
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: podName, namespace: ISTIO_SYSTEM, labels: { app: 'ztunnel' } },
    spec: {
      nodeName,
      serviceAccountName: 'ztunnel',
      terminationGracePeriodSeconds: 1,
      containers: [{ name: 'istio-proxy', image: 'ambient-mesh/shell:0.1.0', command: ['sleep', '86400'] }],
    },
  };
  await client.ensure(podsPath, pod);
  const running = await waitFor(
    `pod ${ISTIO_SYSTEM}/${podName} to get an IP`,
    async () => {
      const p = await client.get<V1Pod>(`${podsPath}/${podName}`);
      return p.status?.podIP !== undefined && p.status.podIP !== '' ? p : undefined;
    },
    { timeoutMs: 60_000 },
  );
  const uid = running.metadata?.uid ?? '';
  const token = await mintServiceAccountToken(client, {
    namespace: ISTIO_SYSTEM,
    serviceAccount: 'ztunnel',
    boundPod: { name: podName, uid },
  });
  return {
    podName,
    namespace: ISTIO_SYSTEM,
    uid,
    nodeName,
    ip: running.status?.podIP ?? '',
    serviceAccount: 'ztunnel',
    token,
  };
}

/** Starts upstream istiod against `options.cluster` and waits until it is ready and has published its root. */
export async function startUpstreamIstiod(options: StartUpstreamIstiodOptions): Promise<UpstreamIstiod> {
  const { client } = options.cluster;
  const progress = options.progress ?? (() => undefined);
  const clusterId = options.clusterId ?? 'Kubernetes';
  const nodeName = options.ztunnelNode ?? options.cluster.nodes[0]?.name;
  if (nodeName === undefined) {
    throw new ClusterError(
      ClusterErrorCode.Prerequisite,
      'the cluster has no nodes to place the ztunnel Pod on',
    );
  }

  const crdFiles = options.crdFiles ?? options.istio.crdFiles;
  progress(`applying CRD files ${crdFiles.join(', ')}`);
  // A newer module's CRDs may use schema a 1.33 apiserver refuses; none of those matter to ambient.
  const crds = await applyCrds(client, crdFiles, { skipInvalid: true });
  progress(`${crds.established.length} CRDs established`);
  for (const r of crds.rejected) progress(`CRD ${r.name} rejected by the apiserver, skipped: ${r.message}`);
  await prepareIstioSystem(client);
  const ztunnel = await createZtunnelIdentity(client, nodeName);
  progress(`ztunnel pod ${ztunnel.podName} on ${nodeName} at ${ztunnel.ip}`);

  mkdirSync(options.workDir, { recursive: true });
  const ports = await pickPorts(options.ports ?? {});
  const logFile = join(options.workDir, 'istiod.log');
  const compat = options.istio.version.startsWith('1.27') ? {} : COMPATIBILITY_1_27_ENV;
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    KUBECONFIG: options.cluster.kubeconfig,
    POD_NAMESPACE: ISTIO_SYSTEM,
    POD_NAME: 'istiod-0',
    SERVICE_ACCOUNT: 'istiod',
    REVISION: 'default',
    CLUSTER_ID: clusterId,
    PILOT_ENABLE_AMBIENT: 'true',
    CA_TRUSTED_NODE_ACCOUNTS: `${ISTIO_SYSTEM}/ztunnel`,
    ISTIOD_CUSTOM_HOST: 'localhost',
    PILOT_ENABLE_ANALYSIS: 'false',
    ...compat,
    ...options.env,
  };
  const proc = new ManagedProcess({
    name: 'upstream-istiod',
    logFile,
    cwd: options.workDir,
    env,
    argv: [
      options.istio.pilotDiscovery,
      'discovery',
      '--kubeconfig',
      options.cluster.kubeconfig,
      '--domain',
      'cluster.local',
      '--httpAddr',
      `127.0.0.1:${ports.http}`,
      '--grpcAddr',
      `127.0.0.1:${ports.grpc}`,
      '--secureGRPCAddr',
      `127.0.0.1:${ports.secureGrpc}`,
      '--httpsAddr',
      `127.0.0.1:${ports.https}`,
      '--monitoringAddr',
      `127.0.0.1:${ports.monitoring}`,
    ],
  });
  progress(`istiod ${options.istio.version} started (pid ${proc.pid ?? '?'}), log ${logFile}`);

  const deleteZtunnelPod = async (): Promise<void> => {
    await client.delete(`/api/v1/namespaces/${ISTIO_SYSTEM}/pods/${ztunnel.podName}`, {
      gracePeriodSeconds: 0,
    });
  };
  const notExited = (what: string): void => {
    if (!proc.running) {
      throw new ClusterError(
        ClusterErrorCode.CommandFailed,
        `upstream istiod exited while waiting for ${what}; its log ends:\n${logTail(logFile)}`,
      );
    }
  };
  const isFatal = (e: unknown): boolean =>
    e instanceof ClusterError && e.code === ClusterErrorCode.CommandFailed;
  try {
    await waitFor(
      `upstream istiod /ready on 127.0.0.1:${ports.http}`,
      async () => {
        notExited('/ready');
        return (await httpStatus(`http://127.0.0.1:${ports.http}/ready`)) === 200 ? true : undefined;
      },
      { timeoutMs: options.readyTimeoutMs ?? 120_000, intervalMs: 500, fatal: isFatal },
    );
    const rootCert = await waitFor(
      `ConfigMap ${ISTIO_SYSTEM}/istio-ca-root-cert`,
      async () => {
        notExited('its root cert');
        const cm = await client.find<{ data?: Record<string, string> }>(
          `/api/v1/namespaces/${ISTIO_SYSTEM}/configmaps/istio-ca-root-cert`,
        );
        return cm?.data?.['root-cert.pem'];
      },
      { timeoutMs: 60_000, intervalMs: 500, fatal: isFatal },
    );
    progress('istiod ready');
    return {
      version: options.istio.version,
      ports,
      xdsAddress: `127.0.0.1:${ports.secureGrpc}`,
      rootCert,
      clusterId,
      ztunnel,
      logFile,
      process: proc,
      mintZtunnelToken: async (o = {}) =>
        mintServiceAccountToken(client, {
          namespace: ISTIO_SYSTEM,
          serviceAccount: 'ztunnel',
          audience: o.audience,
          boundPod: o.boundToPod === false ? undefined : { name: ztunnel.podName, uid: ztunnel.uid },
        }),
      stop: async () => {
        await proc.stop();
        await deleteZtunnelPod().catch(() => undefined);
      },
    };
  } catch (e) {
    await proc.stop();
    await deleteZtunnelPod().catch(() => undefined);
    throw e;
  }
}
