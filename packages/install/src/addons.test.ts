// deploy/prometheus and deploy/console as the addons installAddons applies: what each object is,
// that the console finds Prometheus where the Service is, and that Prometheus may only read pods
// and scrapes by Istio's prometheus.io/* annotations (port 15020 when none is given).
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ADDONS, MESH_NAMESPACE, loadManifests, renderComponent, type ManifestObject } from './manifests.ts';

interface Container {
  name: string;
  image: string;
  args?: string[];
  env?: { name: string; value?: string }[];
  ports?: { containerPort: number }[];
  readinessProbe?: { httpGet?: { path: string; port: number } };
  volumeMounts?: { name: string; mountPath: string }[];
}
interface PodTemplate {
  spec: {
    selector: { matchLabels: Record<string, string> };
    template: {
      metadata: { labels: Record<string, string> };
      spec: {
        serviceAccountName: string;
        containers: Container[];
        volumes?: { name: string; configMap?: { name: string } }[];
      };
    };
  };
}
interface ServiceSpec {
  spec: { selector: Record<string, string>; ports: { port: number; targetPort: number }[] };
}
interface Relabel {
  source_labels?: string[];
  action?: string;
  regex?: string;
  target_label?: string;
  replacement?: string;
}
interface PromConfig {
  scrape_configs: {
    job_name: string;
    honor_labels?: boolean;
    kubernetes_sd_configs?: { role: string }[];
    relabel_configs: Relabel[];
  }[];
}

const of = (objects: ManifestObject[], kind: string): ManifestObject => {
  const o = objects.find(x => x.kind === kind);
  if (o === undefined) throw new Error(`no ${kind}`);
  return o;
};

/** Prometheus's relabel `replace`/`keep`/`drop`/`labelmap` on one target (full-anchored regexes). */
function relabel(labels: Record<string, string>, rules: readonly Relabel[]): Record<string, string> | null {
  let l = { ...labels };
  for (const r of rules) {
    const re = new RegExp(`^(?:${r.regex ?? '(.*)'})$`);
    const value = (r.source_labels ?? []).map(s => l[s] ?? '').join(';');
    const action = r.action ?? 'replace';
    if (action === 'keep' && !re.test(value)) return null;
    if (action === 'drop' && re.test(value)) return null;
    if (action === 'replace') {
      const m = re.exec(value);
      if (m !== null)
        l[r.target_label!] = (r.replacement ?? '$1').replace(/\$(\d)/g, (_, i: string) => m[Number(i)] ?? '');
    }
    if (action === 'labelmap') {
      for (const [k, v] of Object.entries(l)) {
        const m = re.exec(k);
        if (m !== null) l = { ...l, [m[1]!]: v };
      }
    }
  }
  return Object.fromEntries(
    Object.entries(l).filter(([k]) => !k.startsWith('__') || k === '__address__' || k === '__metrics_path__'),
  );
}

describe('the addons (deploy/prometheus, deploy/console)', () => {
  it('installs Prometheus before the console, each with its ServiceAccount, RBAC, Deployment and Service', () => {
    expect(ADDONS).toEqual(['prometheus', 'console']);
    for (const addon of ADDONS) {
      const objects = loadManifests(addon);
      expect(new Set(objects.map(o => o.kind))).toEqual(
        new Set([
          'ServiceAccount',
          'ClusterRole',
          'ClusterRoleBinding',
          'Deployment',
          'Service',
          ...(addon === 'prometheus' ? ['ConfigMap'] : []),
        ]),
      );
      for (const o of objects.filter(x => !x.kind.startsWith('Cluster')))
        expect(o.metadata.namespace).toBe(MESH_NAMESPACE);
    }
  });

  it('lets Prometheus only get, list and watch pods (its discovery)', () => {
    const role = of(loadManifests('prometheus'), 'ClusterRole') as ManifestObject & { rules: unknown };
    expect(role.rules).toEqual([{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] }]);
    const binding = of(loadManifests('prometheus'), 'ClusterRoleBinding') as ManifestObject & {
      subjects: unknown;
    };
    expect(binding.subjects).toEqual([
      { kind: 'ServiceAccount', name: 'prometheus', namespace: MESH_NAMESPACE },
    ]);
  });

  it('runs the pinned upstream image with the ConfigMap as its configuration, and serves it on the Service', () => {
    const objects = loadManifests('prometheus');
    const deploy = of(objects, 'Deployment') as unknown as PodTemplate;
    const pod = deploy.spec.template;
    expect(deploy.spec.selector.matchLabels).toEqual({ app: 'prometheus' });
    expect(pod.metadata.labels.app).toBe('prometheus');
    expect(pod.spec.serviceAccountName).toBe('prometheus');
    const c = pod.spec.containers[0]!;
    expect(c.image).toMatch(/^prom\/prometheus:v\d+\.\d+\.\d+$/);
    const configFile = c.args!.find(a => a.startsWith('--config.file='))!.slice('--config.file='.length);
    const mount = c.volumeMounts!.find(m => configFile.startsWith(`${m.mountPath}/`))!;
    const volume = pod.spec.volumes!.find(v => v.name === mount.name)!;
    const cm = of(objects, 'ConfigMap') as ManifestObject & { data: Record<string, string> };
    expect(volume.configMap?.name).toBe(cm.metadata.name);
    expect(Object.keys(cm.data)).toEqual([configFile.slice(mount.mountPath.length + 1)]);
    expect(c.readinessProbe?.httpGet).toEqual({ path: '/-/ready', port: 9090 });
    const svc = of(objects, 'Service') as unknown as ServiceSpec & ManifestObject;
    expect(svc.spec.selector).toEqual({ app: 'prometheus' });
    expect(svc.spec.ports).toEqual([{ name: 'http', port: 9090, targetPort: 9090 }]);
    expect(c.ports?.map(p => p.containerPort)).toEqual([9090]);
  });

  it("points the console's PROMETHEUS_URL at the Prometheus Service", () => {
    const svc = of(loadManifests('prometheus'), 'Service') as unknown as ServiceSpec & ManifestObject;
    const deploy = of(loadManifests('console'), 'Deployment') as unknown as PodTemplate;
    const env = deploy.spec.template.spec.containers[0]!.env!;
    expect(env.find(e => e.name === 'PROMETHEUS_URL')?.value).toBe(
      `http://${svc.metadata.name}.${svc.metadata.namespace}:${svc.spec.ports[0]!.port}`,
    );
  });

  it("scrapes running pods by Istio's prometheus.io annotations, on port 15020 unless one is given", () => {
    const cm = of(loadManifests('prometheus'), 'ConfigMap') as ManifestObject & {
      data: Record<string, string>;
    };
    const config = parse(cm.data['prometheus.yml']!) as PromConfig;
    expect(config.scrape_configs).toHaveLength(1);
    const job = config.scrape_configs[0]!;
    expect(job.kubernetes_sd_configs).toEqual([{ role: 'pod' }]);
    expect(job.honor_labels).toBe(true);
    // Targets as kubernetes_sd's pod role gives them (one per container port, or the bare IP).
    const pod = (annotations: Record<string, string>, phase = 'Running', address = '10.0.0.5:8080') => ({
      __address__: address,
      __metrics_path__: '/metrics',
      __meta_kubernetes_namespace: 'istio-system',
      __meta_kubernetes_pod_name: 'ztunnel-abc',
      __meta_kubernetes_pod_phase: phase,
      __meta_kubernetes_pod_label_app: 'ztunnel',
      ...Object.fromEntries(
        Object.entries(annotations).map(([k, v]) => [
          `__meta_kubernetes_pod_annotation_${k.replace(/[^a-zA-Z0-9_]/g, '_')}`,
          v,
        ]),
      ),
    });
    const rules = job.relabel_configs;
    expect(
      relabel(
        pod({
          'prometheus.io/scrape': 'true',
          'prometheus.io/port': '15020',
          'prometheus.io/path': '/metrics',
        }),
        rules,
      ),
    ).toEqual({
      __address__: '10.0.0.5:15020',
      __metrics_path__: '/metrics',
      namespace: 'istio-system',
      pod: 'ztunnel-abc',
      app: 'ztunnel',
    });
    // istiod's annotations name its port only; a pod without declared ports is its bare IP.
    expect(
      relabel(
        pod({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': '15014' }, 'Running', '10.0.0.6'),
        rules,
      ),
    ).toMatchObject({
      __address__: '10.0.0.6:15014',
      __metrics_path__: '/metrics',
    });
    expect(
      relabel(pod({ 'prometheus.io/scrape': 'true', 'prometheus.io/path': '/stats/prometheus' }), rules),
    ).toMatchObject({
      __address__: '10.0.0.5:15020',
      __metrics_path__: '/stats/prometheus',
    });
    expect(relabel(pod({}), rules)).toBeNull();
    expect(relabel(pod({ 'prometheus.io/scrape': 'false' }), rules)).toBeNull();
    expect(relabel(pod({ 'prometheus.io/scrape': 'true' }, 'Succeeded'), rules)).toBeNull();
  });

  it('swaps the images by name for a cluster, as for the mesh', () => {
    const [deploy] = renderComponent('prometheus', {
      images: { 'prom/prometheus': 'mirror/prometheus:1' },
    }).filter(o => o.kind === 'Deployment') as unknown as PodTemplate[];
    expect(deploy!.spec.template.spec.containers[0]!.image).toBe('mirror/prometheus:1');
  });
});
