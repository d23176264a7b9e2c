// Kubernetes pod discovery for Debian's Prometheus, which is built without kubernetes_sd_configs:
// the local cluster runs the image prom/prometheus (deploy/prometheus) as this file's wrapper
// (e2e/src/workloads/prometheus.ts). It rewrites each `kubernetes_sd_configs: [{ role: pod }]` of
// the configuration into a file_sd over a targets file, and writes that file from the pods API
// with the same targets and `__meta_kubernetes_pod_*` labels kubernetes_sd's pod role gives, so
// the configuration's own relabelling (Prometheus's) decides what is scraped and how.

/** What discovery reads of a pod (the API's Pod, structurally). */
export interface PodLike {
  readonly metadata?: {
    readonly name?: string;
    readonly namespace?: string;
    readonly uid?: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
  };
  readonly spec?: {
    readonly nodeName?: string;
    readonly containers?: readonly {
      readonly name: string;
      readonly ports?: readonly {
        readonly containerPort: number;
        readonly name?: string;
        readonly protocol?: string;
      }[];
    }[];
  };
  readonly status?: {
    readonly podIP?: string;
    readonly hostIP?: string;
    readonly phase?: string;
    readonly conditions?: readonly { readonly type: string; readonly status: string }[];
  };
}

/** One file_sd target group. */
export interface TargetGroup {
  readonly targets: string[];
  readonly labels: Record<string, string>;
}

/** Prometheus's label name sanitising (strutil.SanitizeLabelName). */
export function sanitizeLabelName(name: string): string {
  return name.replace(/[^a-zA-Z0-9_]/g, '_');
}

/**
 * The targets kubernetes_sd's pod role gives for one pod: one per declared container port
 * (`<podIP>:<port>`), or one per container without ports (`<podIP>`), with the pod's meta labels.
 * Pods without an IP give none.
 */
export function podTargetGroups(pod: PodLike): TargetGroup[] {
  const ip = pod.status?.podIP;
  if (ip === undefined || ip === '') return [];
  const m = pod.metadata;
  const base: Record<string, string> = {
    __meta_kubernetes_namespace: m?.namespace ?? '',
    __meta_kubernetes_pod_name: m?.name ?? '',
    __meta_kubernetes_pod_ip: ip,
    __meta_kubernetes_pod_phase: pod.status?.phase ?? '',
    __meta_kubernetes_pod_node_name: pod.spec?.nodeName ?? '',
    __meta_kubernetes_pod_host_ip: pod.status?.hostIP ?? '',
    __meta_kubernetes_pod_uid: m?.uid ?? '',
    __meta_kubernetes_pod_ready: String(
      pod.status?.conditions?.some(c => c.type === 'Ready' && c.status === 'True') ?? false,
    ),
  };
  for (const [k, v] of Object.entries(m?.labels ?? {})) {
    base[`__meta_kubernetes_pod_label_${sanitizeLabelName(k)}`] = v;
    base[`__meta_kubernetes_pod_labelpresent_${sanitizeLabelName(k)}`] = 'true';
  }
  for (const [k, v] of Object.entries(m?.annotations ?? {})) {
    base[`__meta_kubernetes_pod_annotation_${sanitizeLabelName(k)}`] = v;
    base[`__meta_kubernetes_pod_annotationpresent_${sanitizeLabelName(k)}`] = 'true';
  }
  const groups: TargetGroup[] = [];
  for (const c of pod.spec?.containers ?? []) {
    const container = { ...base, __meta_kubernetes_pod_container_name: c.name };
    const ports = c.ports ?? [];
    if (ports.length === 0) {
      groups.push({ targets: [ip], labels: container });
      continue;
    }
    for (const p of ports) {
      groups.push({
        targets: [`${ip}:${p.containerPort}`],
        labels: {
          ...container,
          __meta_kubernetes_pod_container_port_name: p.name ?? '',
          __meta_kubernetes_pod_container_port_number: String(p.containerPort),
          __meta_kubernetes_pod_container_port_protocol: p.protocol ?? 'TCP',
        },
      });
    }
  }
  return groups;
}

interface ScrapeConfig {
  job_name?: string;
  kubernetes_sd_configs?: { role?: string }[];
  file_sd_configs?: { files: string[]; refresh_interval?: string }[];
  [key: string]: unknown;
}

/** Thrown for a discovery this wrapper does not provide (only the pod role is). */
export class UnsupportedDiscovery extends Error {}

/**
 * The configuration with every `kubernetes_sd_configs` (role pod) replaced by a file_sd over
 * `targetsFile`; answers whether any was. Other roles throw UnsupportedDiscovery.
 */
/** A Prometheus configuration, as parsed. */
export interface PrometheusConfig {
  scrape_configs?: ScrapeConfig[];
  [key: string]: unknown;
}

export function withPodFileSd(
  config: PrometheusConfig,
  targetsFile: string,
): { config: PrometheusConfig; rewritten: boolean } {
  let rewritten = false;
  const scrape = (config.scrape_configs ?? []).map(sc => {
    if (sc.kubernetes_sd_configs === undefined) return sc;
    for (const k of sc.kubernetes_sd_configs) {
      if (k.role !== 'pod')
        throw new UnsupportedDiscovery(
          `job ${sc.job_name ?? '?'}: kubernetes_sd_configs role '${k.role ?? ''}' is not provided locally (only role: pod)`,
        );
    }
    rewritten = true;
    const { kubernetes_sd_configs: _dropped, ...rest } = sc;
    return {
      ...rest,
      file_sd_configs: [...(sc.file_sd_configs ?? []), { files: [targetsFile], refresh_interval: '2s' }],
    };
  });
  return { config: { ...config, scrape_configs: scrape }, rewritten };
}
