/**
 * `ambientctl x precheck`: is this cluster ready for Ambient Mesh? Checks the Kubernetes version
 * (Istio 1.27 supports 1.29 to 1.33), that the Gateway API CRDs are installed and at least
 * v1.3.0 (the mesh pins v1.4.1, experimental channel), that no CNI configuration visible from the
 * API conflicts (Cilium's ConfigMap), that the identity in use may create what an install
 * creates, and node by node that nftables is usable (kernel 5.13+, `nft` 1.0.1+, the kernel
 * accepting nftables) and that the node's CNI configuration can take the mesh's chained plugin
 * (a probe pod per node, node-probe.ts; `--no-node-probe` keeps to what the API says).
 * `precheckFindings` is pure; the command gathers its inputs.
 */
import type { Command } from 'commander';
import { errorMessage } from '@ambient-mesh/errors';
import type { CommandContext } from '../context.ts';
import { CliError, CliErrorCode } from '../errors.ts';
import { renderData, renderTable, type OutputFormat } from '../output.ts';
import { parseDuration } from '../wait.ts';
import {
  DEFAULT_PROBE_IMAGE,
  nodeFindings,
  probeNodes,
  type NodeInfo,
  type NodeProbe,
} from './node-probe.ts';

export const MIN_KUBERNETES_MINOR = 29;
export const MAX_TESTED_KUBERNETES_MINOR = 33;
export const MIN_GATEWAY_API = 'v1.3.0';
export const GATEWAY_API_CRDS = [
  'gatewayclasses.gateway.networking.k8s.io',
  'gateways.gateway.networking.k8s.io',
  'httproutes.gateway.networking.k8s.io',
] as const;

/** What an install creates: each must be allowed. */
export const INSTALL_ACCESS = [
  { verb: 'create', group: '', resource: 'namespaces' },
  { verb: 'create', group: 'apiextensions.k8s.io', resource: 'customresourcedefinitions' },
  { verb: 'create', group: 'rbac.authorization.k8s.io', resource: 'clusterroles' },
  { verb: 'create', group: 'rbac.authorization.k8s.io', resource: 'clusterrolebindings' },
  { verb: 'create', group: 'apps', resource: 'daemonsets' },
  { verb: 'create', group: 'apps', resource: 'deployments' },
  { verb: 'create', group: 'admissionregistration.k8s.io', resource: 'mutatingwebhookconfigurations' },
] as const;

export interface CrdInfo {
  readonly name: string;
  readonly bundleVersion?: string | undefined;
  readonly channel?: string | undefined;
}

export interface AccessResult {
  readonly verb: string;
  readonly group: string;
  readonly resource: string;
  readonly allowed: boolean;
}

export interface PrecheckInput {
  /** `gitVersion` of `/version`, e.g. `v1.33.2`. */
  readonly serverVersion: string;
  readonly crds: readonly CrdInfo[];
  readonly access: readonly AccessResult[];
  /** `kube-system/cilium-config`'s data when Cilium is installed. */
  readonly cilium?: Readonly<Record<string, string>> | undefined;
  /** Why the CNI configuration could not be read, if it could not. */
  readonly cniReadError?: string | undefined;
  /** The cluster's nodes (nftables support, CNI configuration per node). */
  readonly nodes?: readonly NodeInfo[] | undefined;
  /** Each node's probe answer; undefined when the probes were skipped. */
  readonly probes?: readonly NodeProbe[] | undefined;
}

/** Conflicting CNI configuration that can be seen from the API (Cilium's ConfigMap). */
export function cniFindings(input: PrecheckInput): Finding[] {
  if (input.cniReadError !== undefined) {
    return [
      {
        check: 'cni-conflicts',
        level: 'warning',
        message: `cannot read kube-system/cilium-config (${input.cniReadError}); check Cilium's settings by hand`,
      },
    ];
  }
  const c = input.cilium;
  if (c === undefined) {
    return [{ check: 'cni-conflicts', level: 'ok', message: 'no known conflicting CNI configuration' }];
  }
  const out: Finding[] = [];
  if (c['cni-exclusive'] === 'true') {
    out.push({
      check: 'cni-conflicts',
      level: 'error',
      message:
        "Cilium owns the CNI configuration exclusively (cni-exclusive: true) and removes the mesh's CNI plugin; install Cilium with cni.exclusive=false",
    });
  }
  const kpr = c['kube-proxy-replacement'];
  if ((kpr === 'true' || kpr === 'strict') && c['bpf-lb-sock-hostns-only'] !== 'true') {
    out.push({
      check: 'cni-conflicts',
      level: 'warning',
      message:
        "Cilium's socket load balancing rewrites Service addresses inside pods before ztunnel sees them; install Cilium with socketLB.hostNamespaceOnly=true",
    });
  }
  if (out.length === 0) {
    out.push({ check: 'cni-conflicts', level: 'ok', message: 'Cilium is configured to chain with the mesh' });
  }
  return out;
}

export type FindingLevel = 'ok' | 'warning' | 'error';

export interface Finding {
  readonly check: string;
  readonly level: FindingLevel;
  readonly message: string;
}

function semver(v: string): [number, number, number] | undefined {
  const m = /^v?(\d+)\.(\d+)(?:\.(\d+))?/.exec(v);
  return m === null ? undefined : [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)];
}

function lessThan(a: [number, number, number], b: [number, number, number]): boolean {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return (a[i] ?? 0) < (b[i] ?? 0);
  return false;
}

export function precheckFindings(input: PrecheckInput): Finding[] {
  const out: Finding[] = [];
  const v = semver(input.serverVersion);
  if (v === undefined) {
    out.push({
      check: 'kubernetes-version',
      level: 'warning',
      message: `cannot read the server version "${input.serverVersion}"`,
    });
  } else if (v[0] === 1 && v[1] < MIN_KUBERNETES_MINOR) {
    out.push({
      check: 'kubernetes-version',
      level: 'error',
      message: `Kubernetes ${input.serverVersion} is older than 1.${MIN_KUBERNETES_MINOR}, the oldest Istio 1.27 supports; upgrade the cluster`,
    });
  } else if (v[0] === 1 && v[1] > MAX_TESTED_KUBERNETES_MINOR) {
    out.push({
      check: 'kubernetes-version',
      level: 'warning',
      message: `Kubernetes ${input.serverVersion} is newer than 1.${MAX_TESTED_KUBERNETES_MINOR}, the newest Istio 1.27 is tested on`,
    });
  } else {
    out.push({ check: 'kubernetes-version', level: 'ok', message: `Kubernetes ${input.serverVersion}` });
  }
  const min = semver(MIN_GATEWAY_API) ?? [1, 3, 0];
  for (const name of GATEWAY_API_CRDS) {
    const crd = input.crds.find(c => c.name === name);
    if (crd === undefined) {
      out.push({
        check: 'gateway-api-crds',
        level: 'error',
        message: `CRD ${name} is not installed; install the Gateway API CRDs (${MIN_GATEWAY_API} or newer) before the mesh`,
      });
      continue;
    }
    const bv = crd.bundleVersion === undefined ? undefined : semver(crd.bundleVersion);
    if (bv !== undefined && lessThan(bv, min)) {
      out.push({
        check: 'gateway-api-crds',
        level: 'error',
        message: `CRD ${name} is Gateway API ${crd.bundleVersion}, older than ${MIN_GATEWAY_API}; upgrade the Gateway API CRDs`,
      });
    } else {
      out.push({
        check: 'gateway-api-crds',
        level: 'ok',
        message: `${name} ${crd.bundleVersion ?? '(no bundle-version)'}${crd.channel === undefined ? '' : ` ${crd.channel}`}`,
      });
    }
  }
  out.push(...cniFindings(input));
  out.push(...nodeFindings(input.nodes ?? [], input.probes));
  const denied = input.access.filter(a => !a.allowed);
  out.push(
    denied.length === 0
      ? {
          check: 'permissions',
          level: 'ok',
          message: 'the identity in use may create everything an install creates',
        }
      : {
          check: 'permissions',
          level: 'error',
          message: `the identity in use may not ${denied
            .map(a => `${a.verb} ${a.resource}${a.group === '' ? '' : `.${a.group}`}`)
            .join(', ')}; use a cluster-admin kubeconfig`,
        },
  );
  return out;
}

export function formatFindings(findings: readonly Finding[], format: OutputFormat): string {
  if (format !== 'table') return renderData(findings, format);
  const mark: Record<FindingLevel, string> = { ok: '✔', warning: '⚠', error: '✘' };
  const table = renderTable(
    ['CHECK', 'STATUS', 'MESSAGE'],
    findings.map(f => [f.check, `${mark[f.level]} ${f.level}`, f.message]),
  );
  const errors = findings.filter(f => f.level === 'error').length;
  return `${table}\n${errors === 0 ? '✔ No issues found: the cluster is ready for Ambient Mesh.' : `✘ ${errors} issue${errors === 1 ? '' : 's'} to fix before installing.`}\n`;
}

interface NodeObject {
  readonly metadata?: { readonly name?: string };
  readonly status?: {
    readonly nodeInfo?: { readonly operatingSystem?: string; readonly kernelVersion?: string };
  };
}

interface CrdObject {
  readonly metadata?: { readonly name?: string; readonly annotations?: Readonly<Record<string, string>> };
}

export function registerPrecheck(x: Command, ctx: CommandContext): void {
  x.command('precheck')
    .description(
      'Check the cluster is ready for Ambient Mesh: Kubernetes version, Gateway API CRDs, permissions, nftables and CNI configuration on every node',
    )
    .option(
      '--no-node-probe',
      'do not run a probe pod per node (nftables and CNI files); use what the API says',
    )
    .option(
      '--probe-image <image>',
      'the image of the node probes (it needs sh and nft)',
      DEFAULT_PROBE_IMAGE,
    )
    .option('--probe-timeout <duration>', 'how long to wait for the node probes', '2m')
    .addHelpText(
      'after',
      '\nExamples:\n  ambientctl x precheck\n  ambientctl x precheck --context staging -o json\n  ambientctl x precheck --no-node-probe',
    )
    .action(async (_o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<{
        output: string;
        nodeProbe: boolean;
        probeImage: string;
        probeTimeout: string;
      }>();
      const format = ctx.format(o.output);
      const probeTimeoutMs = parseDuration(o.probeTimeout);
      const { client } = ctx.cluster();
      const version = await client.get<{ gitVersion?: string }>('/version');
      const crds: CrdInfo[] = [];
      for (const name of GATEWAY_API_CRDS) {
        const crd = await client.find<CrdObject>(
          `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`,
        );
        if (crd !== undefined) {
          crds.push({
            name,
            bundleVersion: crd.metadata?.annotations?.['gateway.networking.k8s.io/bundle-version'],
            channel: crd.metadata?.annotations?.['gateway.networking.k8s.io/channel'],
          });
        }
      }
      const access: AccessResult[] = [];
      for (const a of INSTALL_ACCESS) {
        const review = await client.create<{ status?: { allowed?: boolean } }>(
          '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
          {
            apiVersion: 'authorization.k8s.io/v1',
            kind: 'SelfSubjectAccessReview',
            spec: { resourceAttributes: { verb: a.verb, group: a.group, resource: a.resource } },
          },
        );
        access.push({ ...a, allowed: review.status?.allowed === true });
      }
      let cilium: Record<string, string> | undefined;
      let cniReadError: string | undefined;
      try {
        cilium = (
          await client.find<{ data?: Record<string, string> }>(
            '/api/v1/namespaces/kube-system/configmaps/cilium-config',
          )
        )?.data;
      } catch (err) {
        cniReadError = errorMessage(err);
      }
      const nodes: NodeInfo[] = (await client.list<NodeObject>('/api/v1/nodes')).items.map(n => ({
        name: n.metadata?.name ?? '',
        os: n.status?.nodeInfo?.operatingSystem ?? '',
        kernelVersion: n.status?.nodeInfo?.kernelVersion ?? '',
      }));
      let probes: NodeProbe[] | undefined;
      if (o.nodeProbe) {
        const linux = nodes.filter(n => n.os === '' || n.os === 'linux').map(n => n.name);
        ctx.progress.step(`probing ${linux.length} node(s) for nftables and CNI configuration`);
        probes = await probeNodes(ctx, client, linux, { image: o.probeImage, timeoutMs: probeTimeoutMs });
      }
      const findings = precheckFindings({
        serverVersion: version.gitVersion ?? '',
        crds,
        access,
        cilium,
        cniReadError,
        nodes,
        probes,
      });
      ctx.out(formatFindings(findings, format));
      if (findings.some(f => f.level === 'error')) {
        throw new CliError(
          CliErrorCode.Failed,
          'precheck found issues (listed above); fix them before installing',
        );
      }
    });
}
