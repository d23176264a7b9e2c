/**
 * What `x precheck` learns on each node: a short-lived probe pod per node (host network, the
 * node's `/etc/cni/net.d` mounted read-only, in a throw-away namespace) reports the kernel
 * release, the `nft` binary's version, whether the kernel accepts nftables (`nft list tables`)
 * and every CNI configuration file, then exits; its log is the answer. The probe runs the
 * cni-agent image (the one that programs the mesh's nftables rules), so `nft` is the one the
 * mesh would use.
 *
 * `probeScript`, `parseProbeLog` and `nodeFindings` are pure; `probeNodes` does the cluster work.
 */
import type { KubeClient } from '@ambient-mesh/kube';
import { errorMessage } from '@ambient-mesh/errors';
import type { CommandContext } from '../context.ts';
import { pollUntil } from '../wait.ts';

/** The oldest kernel and `nft` Istio 1.27 documents for its nftables backend. */
export const MIN_NFT_KERNEL = '5.13';
export const MIN_NFT_BINARY = '1.0.1';
/** Where the probe mounts the node's CNI configuration directory. */
export const PROBE_CNI_DIR = '/host/etc/cni/net.d';
export const DEFAULT_PROBE_IMAGE = 'ambient-mesh/cni-agent:0.1.0';
/** The mesh's own chained plugin type (deploy/cni-agent/install-cni.mjs). */
export const MESH_CNI_PLUGIN = 'ambient-istio-cni';
/** Plugin types of other meshes' CNI agents: chained beside ours they capture the same pods. */
export const CONFLICTING_CNI_PLUGINS: Readonly<Record<string, string>> = {
  'istio-cni': "another Istio installation's CNI plugin (istio-cni)",
  'linkerd-cni': "Linkerd's CNI plugin (linkerd-cni)",
  'kuma-cni': "Kuma's CNI plugin (kuma-cni)",
};

/** A Node as the API reports it (the fields precheck reads). */
export interface NodeInfo {
  readonly name: string;
  readonly os: string;
  readonly kernelVersion: string;
}

export interface CniFile {
  readonly name: string;
  readonly content: string;
}

/** One node's probe answer. */
export interface NodeProbe {
  readonly node: string;
  /** Why the probe gave no answer (the pod failed, timed out...). */
  readonly error?: string | undefined;
  readonly kernel?: string | undefined;
  /** `nft --version` output, or undefined when the binary is missing. */
  readonly nftVersion?: string | undefined;
  /** Empty when `nft list tables` worked, else its error. */
  readonly nftKernelError?: string | undefined;
  readonly cniFiles: readonly CniFile[];
}

export interface NodeFinding {
  readonly check: 'nftables' | 'cni-conflicts';
  readonly level: 'ok' | 'warning' | 'error';
  readonly message: string;
}

/** The probe container's shell script: one `key value` line per fact, `end` last. */
export function probeScript(cniDir = PROBE_CNI_DIR): string {
  return [
    'echo "kernel $(uname -r)"',
    'if v=$(nft --version 2>&1); then echo "nft-version $v"; else echo "nft-missing"; fi',
    'if e=$(nft list tables 2>&1 >/dev/null); then echo "nft-kernel ok"; else echo "nft-kernel-error $(echo "$e" | head -n 1)"; fi',
    `for f in ${cniDir}/*; do [ -f "$f" ] || continue; echo "cni-file $(basename "$f") $(base64 < "$f" | tr -d '\\n')"; done`,
    'echo end',
  ].join('\n');
}

/** Reads a probe pod's log; an incomplete log (no `end`) is an error. */
export function parseProbeLog(node: string, log: string): NodeProbe {
  let kernel: string | undefined;
  let nftVersion: string | undefined;
  let nftKernelError: string | undefined;
  let complete = false;
  const cniFiles: CniFile[] = [];
  for (const line of log.split('\n')) {
    const sp = line.indexOf(' ');
    const key = sp < 0 ? line : line.slice(0, sp);
    const value = sp < 0 ? '' : line.slice(sp + 1);
    if (key === 'kernel') kernel = value;
    else if (key === 'nft-version') nftVersion = value;
    else if (key === 'nft-kernel') nftKernelError = '';
    else if (key === 'nft-kernel-error') nftKernelError = value === '' ? 'nft list tables failed' : value;
    else if (key === 'cni-file') {
      const s = value.indexOf(' ');
      const name = s < 0 ? value : value.slice(0, s);
      cniFiles.push({
        name,
        content: Buffer.from(s < 0 ? '' : value.slice(s + 1), 'base64').toString('utf8'),
      });
    } else if (key === 'end') complete = true;
  }
  if (!complete) return { node, error: 'the probe did not finish its report', cniFiles: [] };
  return { node, kernel, nftVersion, nftKernelError, cniFiles };
}

function version(v: string): number[] {
  const m = /(\d+)\.(\d+)(?:\.(\d+))?/.exec(v);
  return m === null ? [] : [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)];
}

function older(v: number[], min: number[]): boolean {
  for (let i = 0; i < 3; i++) if ((v[i] ?? 0) !== (min[i] ?? 0)) return (v[i] ?? 0) < (min[i] ?? 0);
  return false;
}

/** kubelet's choice: the first `.conf`, `.conflist` or `.json` file by name. */
export function primaryCniFile(files: readonly CniFile[]): CniFile | undefined {
  return [...files]
    .filter(f => /\.(conf|conflist|json)$/.test(f.name))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))[0];
}

function nftFindings(node: NodeInfo, probe: NodeProbe | undefined): NodeFinding[] {
  const out: NodeFinding[] = [];
  if (node.os !== '' && node.os !== 'linux') {
    return [
      {
        check: 'nftables',
        level: 'warning',
        message: `node ${node.name} runs ${node.os}: the mesh's data plane runs on Linux nodes only; keep ambient pods off it`,
      },
    ];
  }
  const kernel = probe?.kernel ?? node.kernelVersion;
  const k = version(kernel);
  if (k.length === 0) {
    out.push({
      check: 'nftables',
      level: 'warning',
      message: `node ${node.name}: cannot read the kernel version "${kernel}"; check it is ${MIN_NFT_KERNEL} or newer`,
    });
  } else if (older(k, version(MIN_NFT_KERNEL))) {
    out.push({
      check: 'nftables',
      level: 'error',
      message: `node ${node.name} runs Linux ${kernel}, older than ${MIN_NFT_KERNEL}, the oldest the mesh's nftables rules support; upgrade the node's kernel`,
    });
  }
  if (probe === undefined || probe.error !== undefined) {
    if (out.length === 0) {
      out.push({
        check: 'nftables',
        level: 'ok',
        message: `node ${node.name}: Linux ${kernel}${probe?.error === undefined ? ' (nft not probed)' : ''}`,
      });
    }
    return out;
  }
  if (probe.nftVersion === undefined) {
    out.push({
      check: 'nftables',
      level: 'error',
      message: `node ${node.name}: the nft binary is missing from the probe image; check the cni-agent image (--probe-image) ships nftables ${MIN_NFT_BINARY} or newer`,
    });
  } else if (older(version(probe.nftVersion), version(MIN_NFT_BINARY))) {
    out.push({
      check: 'nftables',
      level: 'error',
      message: `node ${node.name}: ${probe.nftVersion} is older than nftables ${MIN_NFT_BINARY}; use a cni-agent image with a newer nft`,
    });
  }
  if (probe.nftKernelError !== undefined && probe.nftKernelError !== '') {
    out.push({
      check: 'nftables',
      level: 'error',
      message: `node ${node.name}: the kernel refused nftables (${probe.nftKernelError}); check the nf_tables, nft_ct, nft_nat, nft_socket, nft_tproxy and nft_redir modules load there`,
    });
  }
  if (out.length === 0) {
    out.push({
      check: 'nftables',
      level: 'ok',
      message: `node ${node.name}: Linux ${kernel}, ${probe.nftVersion ?? 'nft'}, nftables usable`,
    });
  }
  return out;
}

interface CniConfig {
  readonly type?: unknown;
  readonly plugins?: unknown;
}

function cniFindingsOf(node: string, probe: NodeProbe | undefined): NodeFinding[] {
  if (probe === undefined) return [];
  if (probe.error !== undefined) {
    return [
      {
        check: 'cni-conflicts',
        level: 'warning',
        message: `node ${node}: the probe did not report (${probe.error}); check its CNI configuration (/etc/cni/net.d) by hand`,
      },
    ];
  }
  const primary = primaryCniFile(probe.cniFiles);
  if (primary === undefined) {
    return [
      {
        check: 'cni-conflicts',
        level: 'warning',
        message: `node ${node} has no CNI configuration in /etc/cni/net.d; install the cluster's network plugin first (the mesh chains onto it)`,
      },
    ];
  }
  let conf: CniConfig;
  try {
    conf = JSON.parse(primary.content) as CniConfig;
  } catch {
    return [
      {
        check: 'cni-conflicts',
        level: 'error',
        message: `node ${node}: /etc/cni/net.d/${primary.name} is not JSON, and the kubelet uses it first; fix or remove it`,
      },
    ];
  }
  if (!Array.isArray(conf.plugins)) {
    return [
      {
        check: 'cni-conflicts',
        level: 'error',
        message: `node ${node}: the kubelet uses /etc/cni/net.d/${primary.name}, a single-plugin configuration the mesh cannot chain into; convert it to a .conflist (or remove it if stale)`,
      },
    ];
  }
  const types = (conf.plugins as unknown[]).map(p =>
    typeof p === 'object' && p !== null && typeof (p as CniConfig).type === 'string'
      ? String((p as CniConfig).type)
      : '',
  );
  const out: NodeFinding[] = [];
  for (const t of types) {
    const what = CONFLICTING_CNI_PLUGINS[t];
    if (what !== undefined) {
      out.push({
        check: 'cni-conflicts',
        level: 'error',
        message: `node ${node}: /etc/cni/net.d/${primary.name} chains ${what}, which captures the same pods as the mesh; uninstall it first`,
      });
    }
  }
  if (out.length === 0) {
    out.push({
      check: 'cni-conflicts',
      level: 'ok',
      message: `node ${node}: ${primary.name} (${types.filter(t => t !== '').join(', ')})${types.includes(MESH_CNI_PLUGIN) ? ', the mesh chained' : ''}`,
    });
  }
  return out;
}

/** nftables support and CNI configuration, node by node (probes absent: API facts only). */
export function nodeFindings(
  nodes: readonly NodeInfo[],
  probes: readonly NodeProbe[] | undefined,
): NodeFinding[] {
  return [...nodes]
    .sort((a, b) => a.name.localeCompare(b.name))
    .flatMap(n => {
      if (probes === undefined || (n.os !== '' && n.os !== 'linux')) return nftFindings(n, undefined);
      const probe = probes.find(p => p.node === n.name) ?? {
        node: n.name,
        error: 'no probe ran there',
        cniFiles: [],
      };
      return [...nftFindings(n, probe), ...cniFindingsOf(n.name, probe)];
    });
}

interface ProbePodStatus {
  readonly status?: {
    readonly phase?: string;
    readonly containerStatuses?: readonly {
      readonly state?: { readonly waiting?: { readonly reason?: string } };
    }[];
  };
}

/** The probe pod of one node (pinned with `nodeName`, tolerating every taint). */
export function probePod(namespace: string, node: string, image: string): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `precheck-${node}`
        .slice(0, 63)
        .replace(/[^a-z0-9-]/g, '-')
        .replace(/-+$/, ''),
      namespace,
      labels: { app: 'ambientctl-precheck' },
    },
    spec: {
      nodeName: node,
      hostNetwork: true,
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 0,
      tolerations: [{ operator: 'Exists' }],
      containers: [
        {
          name: 'probe',
          image,
          command: ['sh', '-c', probeScript()],
          securityContext: { privileged: true },
          volumeMounts: [{ name: 'cni-net-dir', mountPath: PROBE_CNI_DIR, readOnly: true }],
        },
      ],
      volumes: [{ name: 'cni-net-dir', hostPath: { path: '/etc/cni/net.d', type: 'DirectoryOrCreate' } }],
    },
  };
}

/**
 * Runs one probe pod per node in a throw-away namespace and reads their logs; the namespace is
 * deleted afterwards whatever happened. A node whose pod fails or does not finish in time gets
 * an `error` (reported as a warning by `nodeFindings`), never a thrown error.
 */
export async function probeNodes(
  ctx: CommandContext,
  client: KubeClient,
  nodes: readonly string[],
  options: { readonly image: string; readonly timeoutMs: number },
): Promise<NodeProbe[]> {
  const namespace = `ambientctl-precheck-${ctx.now().getTime().toString(36)}`;
  await client.create('/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: {
      name: namespace,
      labels: {
        'pod-security.kubernetes.io/enforce': 'privileged',
        'app.kubernetes.io/managed-by': 'ambientctl',
      },
    },
  });
  const results = new Map<string, NodeProbe>();
  try {
    const names = new Map<string, string>();
    for (const node of nodes) {
      const pod = probePod(namespace, node, options.image) as { metadata: { name: string } };
      names.set(node, pod.metadata.name);
      await client.create(`/api/v1/namespaces/${namespace}/pods`, pod);
    }
    const podPath = (node: string): string =>
      `/api/v1/namespaces/${namespace}/pods/${encodeURIComponent(names.get(node) ?? '')}`;
    try {
      await pollUntil(
        ctx,
        async () => {
          for (const node of nodes) {
            if (results.has(node)) continue;
            const p = await client.find<ProbePodStatus>(podPath(node));
            const phase = p?.status?.phase;
            const waiting = p?.status?.containerStatuses?.[0]?.state?.waiting?.reason;
            if (phase === 'Succeeded' || phase === 'Failed') {
              let log: string;
              try {
                log = String(await client.request<unknown>('GET', `${podPath(node)}/log`));
              } catch (err) {
                results.set(node, { node, error: `cannot read its log: ${errorMessage(err)}`, cniFiles: [] });
                continue;
              }
              const parsed = parseProbeLog(node, log);
              results.set(
                node,
                phase === 'Failed' && parsed.error !== undefined
                  ? { ...parsed, error: `the probe pod failed: ${log.trim().split('\n').pop() ?? ''}` }
                  : parsed,
              );
            } else if (
              waiting === 'ErrImagePull' ||
              waiting === 'ImagePullBackOff' ||
              waiting === 'InvalidImageName'
            ) {
              results.set(node, {
                node,
                error: `the probe image ${options.image} cannot be pulled (${waiting}); pass --probe-image`,
                cniFiles: [],
              });
            }
          }
          return {
            done: results.size === nodes.length,
            status: `probed ${results.size}/${nodes.length} node${nodes.length === 1 ? '' : 's'}`,
          };
        },
        {
          timeoutMs: options.timeoutMs,
          intervalMs: 1000,
          onTimeout: last => `node probes did not finish (${last})`,
        },
      );
    } catch (err) {
      for (const node of nodes) {
        if (!results.has(node)) results.set(node, { node, error: errorMessage(err), cniFiles: [] });
      }
    }
  } finally {
    await client.delete(`/api/v1/namespaces/${namespace}`).catch(() => false);
  }
  return nodes.map(n => results.get(n) ?? { node: n, error: 'no probe ran there', cniFiles: [] });
}
