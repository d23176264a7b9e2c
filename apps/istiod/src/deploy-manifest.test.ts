// deploy/istiod carries what upstream tools find istiod by: the `istio.io/rev` label on the
// Deployment, the Service and the pods (`istioctl version` lists pods by `app=istiod,istio.io/rev`),
// the scrape annotations Prometheus and Kiali read, and the `istio` mesh ConfigMap.
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';

interface Obj {
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec?: {
    template?: { metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> } };
  };
  data?: Record<string, string>;
}

const objects = parseAllDocuments(
  readFileSync(new URL('../../../deploy/istiod/istiod.yaml', import.meta.url), 'utf8'),
).map(d => d.toJS() as Obj);
const find = (kind: string, name: string): Obj | undefined =>
  objects.find(o => o.kind === kind && o.metadata.name === name);

describe('deploy/istiod', () => {
  it('labels the Deployment, the Service and the pod template with istio.io/rev: default', () => {
    const deployment = find('Deployment', 'istiod');
    expect(deployment?.metadata.labels).toMatchObject({ app: 'istiod', 'istio.io/rev': 'default' });
    expect(find('Service', 'istiod')?.metadata.labels).toMatchObject({
      app: 'istiod',
      'istio.io/rev': 'default',
    });
    expect(deployment?.spec?.template?.metadata?.labels).toMatchObject({
      app: 'istiod',
      'istio.io/rev': 'default',
    });
  });

  it('asks Prometheus to scrape the monitoring port', () => {
    expect(find('Deployment', 'istiod')?.spec?.template?.metadata?.annotations).toMatchObject({
      'prometheus.io/scrape': 'true',
      'prometheus.io/port': '15014',
    });
  });

  it('ships the istio mesh ConfigMap with a mesh key', () => {
    const mesh = find('ConfigMap', 'istio');
    expect(mesh?.data?.mesh).toContain('rootNamespace: istio-system');
  });
});
