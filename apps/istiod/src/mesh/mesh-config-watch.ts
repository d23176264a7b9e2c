/**
 * The live MeshConfig: the single writer of istiod's current mesh config. It starts from the
 * `istio` ConfigMap read at startup and follows that ConfigMap's informer events. A valid change
 * of `discoverySelectors` goes to the discovery filter at once (namespaces enter or leave and WDS
 * is recomputed for them); `trustDomain` and `rootNamespace` are fixed for the process, as the CA
 * and the index are built with them, so changing them is logged as needing a restart. An invalid
 * or deleted ConfigMap keeps the last good config (invalid) or returns to the defaults (deleted).
 */
import type { Logger } from '@ambient-mesh/runtime';
import type { KubeObject } from '../kube/objects.ts';
import type { DiscoveryFilter } from './discovery-filter.ts';
import {
  MESH_CONFIG_KEY,
  defaultMeshConfig,
  meshConfigMapName,
  parseMeshConfig,
  type MeshConfig,
  type MeshConfigDefaults,
} from './mesh-config.ts';

export interface MeshConfigWatchOptions {
  readonly initial: MeshConfig;
  readonly defaults: MeshConfigDefaults;
  readonly filter: DiscoveryFilter;
  readonly logger: Logger;
  /** The ConfigMap followed (default `istio`; `istio-<revision>` for a revision). */
  readonly configMap?: string;
  /** Called with each new valid config (the waypoints' tracing providers follow it). */
  readonly onChange?: (next: MeshConfig) => void;
}

interface ConfigMapObject extends KubeObject {
  readonly data?: Readonly<Record<string, string>>;
}

export class MeshConfigWatch {
  readonly #opts: MeshConfigWatchOptions;
  #current: MeshConfig;

  readonly #name: string;

  constructor(opts: MeshConfigWatchOptions) {
    this.#opts = opts;
    this.#current = opts.initial;
    this.#name = opts.configMap ?? meshConfigMapName();
  }

  get current(): MeshConfig {
    return this.#current;
  }

  /** A ConfigMap add or update (other ConfigMaps than the followed one are ignored). */
  upsert(obj: KubeObject): void {
    if (obj.metadata?.name !== this.#name) return;
    const text = (obj as ConfigMapObject).data?.[MESH_CONFIG_KEY];
    const parsed = parseMeshConfig(text, this.#opts.defaults);
    if (!parsed.ok) {
      this.#opts.logger.error(
        { err: parsed.error.message, code: parsed.error.code },
        'ignoring the mesh config change; keeping the last valid one',
      );
      return;
    }
    this.#set(parsed.value);
  }

  /** The ConfigMap was deleted: upstream's defaults apply. */
  delete(obj: KubeObject): void {
    if (obj.metadata?.name !== this.#name) return;
    this.#set(defaultMeshConfig(this.#opts.defaults));
  }

  #set(next: MeshConfig): void {
    const prev = this.#current;
    this.#current = next;
    const log = this.#opts.logger;
    for (const key of ['trustDomain', 'rootNamespace'] as const) {
      if (prev[key] !== next[key])
        log.warn(
          { field: key, running: prev[key], configured: next[key] },
          'mesh config field needs an istiod restart',
        );
    }
    if (JSON.stringify(prev.discoverySelectors) !== JSON.stringify(next.discoverySelectors)) {
      const { entered, left } = this.#opts.filter.setSelectors(next.discoverySelectors);
      log.info({ selectors: next.discoverySelectors.length, entered, left }, 'discovery selectors changed');
    }
    this.#opts.onChange?.(next);
  }
}
