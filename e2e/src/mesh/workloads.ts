/**
 * Workloads of the cluster-tier scenarios, written once: app namespaces and service accounts, the
 * echo image as a pod, waiting for a pod to be Ready (and enrolled), for every ztunnel to know a
 * workload, for a rollout, and an HTTP request sent from inside a pod's network namespace (the
 * in-pod redirection rules capture every process of that netns, so it is the pod's own traffic).
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { Cluster } from '../cluster.ts';
import { runCommand, waitFor } from '../exec.ts';
import { podNetnsName } from '../layout.ts';
import { MESH_NAMESPACE } from './install.ts';
import {
  mtlsConnections,
  ztunnelConfigDump,
  ztunnelMetrics,
  ztunnelPods,
  type ZtunnelPod,
} from './observe.ts';

export const ECHO_IMAGE = 'ambient-mesh/echo:0.1.0';

/** Where a pod runs and how to send traffic as it. */
export interface MeshPod {
  readonly name: string;
  readonly ip: string;
  /** The pod's netns on this machine (`ip netns exec <netns> ...`). */
  readonly netns: string;
  readonly node: string;
  readonly uid: string;
}

export interface EchoPodOptions {
  readonly namespace: string;
  readonly node: string;
  /** Default: the pod's name. */
  readonly serviceAccount?: string;
  /** Default: `{ app: <name> }`. */
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
  readonly env?: Record<string, string>;
  readonly containerPorts?: readonly number[];
  /** Default `main`. */
  readonly containerName?: string;
  /** Default: the echo image (`ECHO_IMAGE`). */
  readonly image?: string;
}

/** A pod of the echo image (or `o.image`) pinned to `node`. */
export function echoPod(name: string, o: EchoPodOptions): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: o.namespace,
      labels: o.labels ?? { app: name },
      ...(o.annotations === undefined ? {} : { annotations: o.annotations }),
    },
    spec: {
      nodeName: o.node,
      serviceAccountName: o.serviceAccount ?? name,
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: o.containerName ?? 'main',
          image: o.image ?? ECHO_IMAGE,
          ...(o.env === undefined
            ? {}
            : { env: Object.entries(o.env).map(([k, v]) => ({ name: k, value: v })) }),
          ...(o.containerPorts === undefined
            ? {}
            : { ports: o.containerPorts.map(containerPort => ({ containerPort })) }),
        },
      ],
    },
  };
}

/** Creates a namespace (in the ambient mesh unless `ambient` is false) and its service accounts. */
export async function createAppNamespace(
  c: Cluster,
  namespace: string,
  serviceAccounts: readonly string[],
  ambient = true,
): Promise<void> {
  await c.client.create('/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: namespace, ...(ambient ? { labels: { 'istio.io/dataplane-mode': 'ambient' } } : {}) },
  });
  for (const sa of serviceAccounts) {
    await c.client.create(`/api/v1/namespaces/${namespace}/serviceaccounts`, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: sa, namespace },
    });
  }
}

/** Service `echo` (port 80 to the pods' 8080) selecting the pods labelled `app: echo`. */
export async function createEchoService(c: Cluster, namespace: string): Promise<void> {
  await c.client.create(`/api/v1/namespaces/${namespace}/services`, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'echo', namespace },
    spec: { selector: { app: 'echo' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
  });
}

/** The ClusterIP of Service `name`. */
export async function serviceClusterIp(c: Cluster, namespace: string, name: string): Promise<string> {
  const svc = await c.client.get<{ spec?: { clusterIP?: string } }>(
    `/api/v1/namespaces/${namespace}/services/${name}`,
  );
  return svc.spec?.clusterIP ?? '';
}

export const isPodReady = (p: V1Pod): boolean =>
  p.status?.conditions?.some(x => x.type === 'Ready' && x.status === 'True') === true;

/**
 * Waits until the pod is Ready and, unless `enrolled` is false, enrolled in the mesh (redirection
 * `enabled`, not `pending`); returns where it is.
 */
export async function readyPod(
  c: Cluster,
  namespace: string,
  name: string,
  options: { readonly enrolled?: boolean; readonly timeoutMs?: number; readonly intervalMs?: number } = {},
): Promise<MeshPod> {
  const enrolled = options.enrolled ?? true;
  return waitFor(
    enrolled ? `pod ${namespace}/${name} enrolled and Ready` : `pod ${namespace}/${name} Ready`,
    async () => {
      const p = await c.client.get<V1Pod>(`/api/v1/namespaces/${namespace}/pods/${name}`);
      const redirected = p.metadata?.annotations?.['ambient.istio.io/redirection'] === 'enabled';
      if (!isPodReady(p) || (enrolled && !redirected) || p.status?.podIP === undefined) return undefined;
      const uid = p.metadata?.uid ?? '';
      return {
        name,
        ip: p.status.podIP,
        netns: podNetnsName(c.layout, uid),
        node: p.spec?.nodeName ?? '',
        uid,
      };
    },
    { timeoutMs: options.timeoutMs ?? 90_000, intervalMs: options.intervalMs ?? 500 },
  );
}

/** The Running ztunnel of `node`, if any. */
export async function ztunnelOn(c: Cluster, node: string): Promise<ZtunnelPod | undefined> {
  return (await ztunnelPods(c.client, c.layout)).find(z => z.node === node);
}

/**
 * Waits until every ztunnel (at least one per node) has the workload of `ip` in its config dump.
 */
export async function inEveryZtunnelConfig(
  c: Cluster,
  ip: string,
  options: { readonly timeoutMs?: number; readonly intervalMs?: number } = {},
): Promise<void> {
  await waitFor(
    `workload ${ip} in every ztunnel's config`,
    async () => {
      const zs = await ztunnelPods(c.client, c.layout);
      if (zs.length < c.nodes.length) return undefined;
      for (const z of zs) {
        const dump = await ztunnelConfigDump(z);
        const workloads = (dump?.workloads ?? []) as { workloadIps?: string[] }[];
        if (!workloads.some(w => w.workloadIps?.includes(ip) === true)) return undefined;
      }
      return true;
    },
    { timeoutMs: options.timeoutMs ?? 60_000, intervalMs: options.intervalMs ?? 500 },
  );
}

/** A workload certificate as ztunnel's config dump shows it. */
export interface CertDump {
  readonly identity: string;
  readonly state: string;
  readonly certChain: readonly {
    pem: string;
    serialNumber: string;
    validFrom: string;
    expirationTime: string;
  }[];
  readonly rootCerts: readonly { pem: string }[];
}

/** The Available certificate of `ns`/`sa` held by the ztunnel of `node`. */
export async function heldCert(
  c: Cluster,
  ns: string,
  node: string,
  sa: string,
): Promise<CertDump | undefined> {
  const z = await ztunnelOn(c, node);
  if (z === undefined) return undefined;
  const certs = ((await ztunnelConfigDump(z))?.certificates ?? []) as CertDump[];
  return certs.find(x => x.identity.endsWith(`/ns/${ns}/sa/${sa}`) && x.state === 'Available');
}

/** mTLS connections to `workload` from `sourcePrincipal`, as the destination ztunnels count them. */
export async function mtlsConnectionsTo(
  c: Cluster,
  workload: string,
  sourcePrincipal: string,
): Promise<number> {
  let n = 0;
  for (const z of await ztunnelPods(c.client, c.layout)) {
    for (const s of mtlsConnections(await ztunnelMetrics(z))) {
      if (
        s.labels.reporter === 'destination' &&
        s.labels.destination_workload === workload &&
        s.labels.source_principal === sourcePrincipal
      ) {
        n += s.value;
      }
    }
  }
  return n;
}

/**
 * An HTTP GET sent by curl inside `from`'s netns; what curl's `--write-out` prints (trimmed).
 * With `close` (the default) each request is its own connection.
 */
export async function curlInPod(
  from: { readonly netns: string },
  target: string,
  options: {
    readonly writeOut?: string;
    readonly maxTimeS?: number;
    readonly close?: boolean;
    /** Extra request headers (`-H name: value`). */
    readonly headers?: Record<string, string>;
    /** Default GET. */
    readonly method?: string;
  } = {},
): Promise<string> {
  const r = await runCommand(
    [
      'ip',
      'netns',
      'exec',
      from.netns,
      'curl',
      '-s',
      '-o',
      '/dev/null',
      '-w',
      options.writeOut ?? '%{http_code}',
      '--max-time',
      String(options.maxTimeS ?? 5),
      ...(options.close === false ? [] : ['-H', 'Connection: close']),
      ...Object.entries(options.headers ?? {}).flatMap(([k, v]) => ['-H', `${k}: ${v}`]),
      ...(options.method === undefined ? [] : ['-X', options.method]),
      target,
    ],
    { allowFailure: true },
  );
  return r.stdout.trim();
}

/** The HTTP code of a GET from `from` (see `curlInPod`); 0 when the connection failed. */
export async function httpCode(
  from: { readonly netns: string },
  target: string,
  options: { readonly close?: boolean } = {},
): Promise<number> {
  return Number((await curlInPod(from, target, options)) || '0');
}

/** Waits until the Deployment or DaemonSet at `path` observed its spec and `want` holds of its status. */
export async function waitRollout(
  c: Cluster,
  path: string,
  want: (st: Record<string, number | undefined>) => boolean,
): Promise<void> {
  await waitFor(
    `the rollout of ${path}`,
    async () => {
      const obj = await c.client.get<{
        metadata?: { generation?: number };
        status?: Record<string, number | undefined>;
      }>(path);
      const st = obj.status ?? {};
      return st.observedGeneration === obj.metadata?.generation && want(st) ? true : undefined;
    },
    { timeoutMs: 120_000, intervalMs: 500 },
  );
}

export const ZTUNNEL_DAEMONSET_PATH = `/apis/apps/v1/namespaces/${MESH_NAMESPACE}/daemonsets/ztunnel`;

/** Sets environment variables of ztunnel's container and waits until every node runs the new pods. */
export async function setZtunnelEnv(c: Cluster, env: Record<string, string>): Promise<void> {
  await c.client.strategicPatch(ZTUNNEL_DAEMONSET_PATH, {
    spec: {
      template: {
        spec: {
          containers: [
            { name: 'istio-proxy', env: Object.entries(env).map(([name, value]) => ({ name, value })) },
          ],
        },
      },
    },
  });
  await waitRollout(
    c,
    ZTUNNEL_DAEMONSET_PATH,
    st => st.updatedNumberScheduled === c.nodes.length && st.numberReady === c.nodes.length,
  );
}
