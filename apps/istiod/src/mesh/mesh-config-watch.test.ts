import { silentLogger } from '@ambient-mesh/runtime';
import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../kube/objects.ts';
import { DiscoveryFilter } from './discovery-filter.ts';
import { defaultMeshConfig, meshConfigMapName } from './mesh-config.ts';
import { MeshConfigWatch } from './mesh-config-watch.ts';

const defaults = { rootNamespace: 'istio-system', trustDomain: 'cluster.local' };
const configMap = (name: string, mesh: string): KubeObject =>
  ({ metadata: { name, namespace: 'istio-system' }, data: { mesh } }) as KubeObject;

describe('MeshConfigWatch of a revision', () => {
  it('names the ConfigMap istio, or istio-<revision> for a revision', () => {
    expect(meshConfigMapName()).toBe('istio');
    expect(meshConfigMapName('default')).toBe('istio');
    expect(meshConfigMapName('default-v1-27-9')).toBe('istio-default-v1-27-9');
  });

  it('a revisioned istiod follows its own ConfigMap and ignores the default revision’s', () => {
    const filter = new DiscoveryFilter({ upsert: () => undefined, delete: () => undefined });
    const watch = new MeshConfigWatch({
      initial: defaultMeshConfig(defaults),
      defaults,
      filter,
      logger: silentLogger(),
      configMap: meshConfigMapName('canary'),
    });
    const selectors = 'discoverySelectors:\n  - matchLabels: { mesh: yes }\n';
    watch.upsert(configMap('istio', selectors));
    expect(watch.current.discoverySelectors).toEqual([]);
    watch.upsert(configMap('istio-canary', selectors));
    expect(watch.current.discoverySelectors).toEqual([{ matchLabels: { mesh: 'yes' } }]);
  });
});
