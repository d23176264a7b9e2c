// The local stand-in for kubernetes_sd's pod role: the targets and meta labels it writes, and
// deploy/prometheus's configuration rewritten to file_sd, which Debian's promtool accepts.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadManifests } from '@ambient-mesh/install';
import { parse, stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import {
  UnsupportedDiscovery,
  podTargetGroups,
  withPodFileSd,
  type PodLike,
  type PrometheusConfig,
} from './pod-sd.ts';

const pod: PodLike = {
  metadata: {
    name: 'ztunnel-x',
    namespace: 'istio-system',
    labels: { app: 'ztunnel', 'app.kubernetes.io/name': 'ztunnel' },
    annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '15020' },
  },
  spec: {
    nodeName: 'node-0',
    containers: [
      { name: 'istio-proxy', ports: [{ containerPort: 15020, name: 'stats' }, { containerPort: 15008 }] },
    ],
  },
  status: { podIP: '10.244.0.7', phase: 'Running' },
};

describe('local pod discovery for Prometheus', () => {
  it('gives one target per container port with the pod role meta labels', () => {
    const groups = podTargetGroups(pod);
    expect(groups.map(g => g.targets)).toEqual([['10.244.0.7:15020'], ['10.244.0.7:15008']]);
    expect(groups[0]!.labels).toMatchObject({
      __meta_kubernetes_namespace: 'istio-system',
      __meta_kubernetes_pod_name: 'ztunnel-x',
      __meta_kubernetes_pod_phase: 'Running',
      __meta_kubernetes_pod_node_name: 'node-0',
      __meta_kubernetes_pod_label_app_kubernetes_io_name: 'ztunnel',
      __meta_kubernetes_pod_annotation_prometheus_io_scrape: 'true',
      __meta_kubernetes_pod_annotation_prometheus_io_port: '15020',
      __meta_kubernetes_pod_container_name: 'istio-proxy',
      __meta_kubernetes_pod_container_port_name: 'stats',
      __meta_kubernetes_pod_container_port_number: '15020',
    });
  });

  it('gives the bare pod IP for a container without ports, and nothing for a pod without an IP', () => {
    const bare: PodLike = { ...pod, spec: { containers: [{ name: 'discovery' }] } };
    expect(podTargetGroups(bare).map(g => g.targets)).toEqual([['10.244.0.7']]);
    expect(podTargetGroups({ ...pod, status: { phase: 'Pending' } })).toEqual([]);
  });

  it("rewrites deploy/prometheus's kubernetes_sd to a file_sd that Debian's promtool accepts", () => {
    const cm = loadManifests('prometheus').find(o => o.kind === 'ConfigMap') as unknown as {
      data: Record<string, string>;
    };
    const dir = mkdtempSync(join(tmpdir(), 'pod-sd-'));
    try {
      const targets = join(dir, 'pods.json');
      writeFileSync(targets, JSON.stringify(podTargetGroups(pod)));
      const { config, rewritten } = withPodFileSd(
        parse(cm.data['prometheus.yml']!) as PrometheusConfig,
        targets,
      );
      expect(rewritten).toBe(true);
      expect(JSON.stringify(config)).not.toContain('kubernetes_sd_configs');
      writeFileSync(join(dir, 'prometheus.yml'), stringify(config));
      const out = execFileSync('promtool', ['check', 'config', join(dir, 'prometheus.yml')], {
        encoding: 'utf8',
      });
      expect(out).toContain('SUCCESS');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses roles other than pod, naming the job', () => {
    expect(() =>
      withPodFileSd(
        { scrape_configs: [{ job_name: 'svc', kubernetes_sd_configs: [{ role: 'service' }] }] },
        '/x',
      ),
    ).toThrow(UnsupportedDiscovery);
  });
});
