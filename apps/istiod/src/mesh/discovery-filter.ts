/**
 * The discovery namespace filter (upstream's `discoverySelectors`): sits between the informers and
 * the WDS index and passes on only objects in namespaces the selectors choose. Cluster-scoped
 * objects (namespaces, nodes) always pass. It keeps every namespaced object it has seen, so when
 * the selectors or a namespace's labels change, the namespaces that enter are replayed as upserts
 * and those that leave as deletes: the index, and so WDS, is recomputed for exactly them.
 * No selectors (the default) selects every namespace, as upstream.
 */
import type { KubeObject, LabelSelector } from '../kube/objects.ts';
import { objectKey, selectorMatches } from '../kube/objects.ts';
import { ObjectKinds, type ObjectKind as WdsObjectKind } from '../wds/wds-index.ts';
import type { WaypointKind } from '../waypoint/waypoint-index.ts';

/** Kinds that pass through the filter: the WDS index's and the waypoint index's. */
type ObjectKind = WdsObjectKind | WaypointKind;

export interface FilteredSink {
  upsert(kind: ObjectKind, obj: KubeObject): unknown;
  delete(kind: ObjectKind, obj: KubeObject): unknown;
}

/** True when `labels` is chosen by the selectors (any of them); no selectors choose every namespace. */
export function namespaceSelected(
  selectors: readonly LabelSelector[],
  labels: Readonly<Record<string, string>>,
): boolean {
  return selectors.length === 0 || selectors.some(s => selectorMatches(s, labels));
}

export class DiscoveryFilter {
  readonly #sink: FilteredSink;
  #selectors: readonly LabelSelector[] = [];
  /** Namespace name → its labels. */
  readonly #namespaceLabels = new Map<string, Readonly<Record<string, string>>>();
  /** Namespaced objects by namespace, then `kind|key`. */
  readonly #objects = new Map<string, Map<string, { kind: ObjectKind; obj: KubeObject }>>();

  constructor(sink: FilteredSink, selectors: readonly LabelSelector[] = []) {
    this.#sink = sink;
    this.#selectors = selectors;
  }

  get selectors(): readonly LabelSelector[] {
    return this.#selectors;
  }

  /** Whether objects of namespace `ns` currently reach the index. */
  selected(ns: string): boolean {
    if (this.#selectors.length === 0) return true;
    const labels = this.#namespaceLabels.get(ns);
    return labels !== undefined && namespaceSelected(this.#selectors, labels);
  }

  /** The namespaces (known by a Namespace object) that are selected now. */
  selectedNamespaces(): string[] {
    return [...this.#namespaceLabels.keys()].filter(ns => this.selected(ns)).sort();
  }

  /** New selectors: namespaces that enter are replayed, those that leave are removed. */
  setSelectors(selectors: readonly LabelSelector[]): { entered: string[]; left: string[] } {
    const before = this.#selectedSet();
    this.#selectors = selectors;
    return this.#reconcile(before);
  }

  upsert(kind: ObjectKind, obj: KubeObject): void {
    if (kind === ObjectKinds.NAMESPACE) {
      const name = obj.metadata?.name ?? '';
      const before = this.#selectedSet();
      this.#namespaceLabels.set(name, obj.metadata?.labels ?? {});
      this.#sink.upsert(kind, obj);
      this.#reconcile(before);
      return;
    }
    const ns = obj.metadata?.namespace;
    if (ns === undefined || ns === '') {
      this.#sink.upsert(kind, obj);
      return;
    }
    let byKey = this.#objects.get(ns);
    if (byKey === undefined) {
      byKey = new Map();
      this.#objects.set(ns, byKey);
    }
    byKey.set(`${kind}|${objectKey(obj)}`, { kind, obj });
    if (this.selected(ns)) this.#sink.upsert(kind, obj);
  }

  delete(kind: ObjectKind, obj: KubeObject): void {
    if (kind === ObjectKinds.NAMESPACE) {
      const name = obj.metadata?.name ?? '';
      const before = this.#selectedSet();
      this.#namespaceLabels.delete(name);
      this.#reconcile(before);
      this.#sink.delete(kind, obj);
      return;
    }
    const ns = obj.metadata?.namespace;
    if (ns === undefined || ns === '') {
      this.#sink.delete(kind, obj);
      return;
    }
    const byKey = this.#objects.get(ns);
    byKey?.delete(`${kind}|${objectKey(obj)}`);
    if (byKey?.size === 0) this.#objects.delete(ns);
    // Deleting what the index never had is harmless; a namespace just left was already removed.
    if (this.selected(ns)) this.#sink.delete(kind, obj);
  }

  #selectedSet(): Set<string> {
    const out = new Set<string>();
    for (const ns of new Set([...this.#namespaceLabels.keys(), ...this.#objects.keys()]))
      if (this.selected(ns)) out.add(ns);
    return out;
  }

  #reconcile(before: ReadonlySet<string>): { entered: string[]; left: string[] } {
    const after = this.#selectedSet();
    const entered = [...after].filter(ns => !before.has(ns)).sort();
    const left = [...before].filter(ns => !after.has(ns)).sort();
    for (const ns of left)
      for (const { kind, obj } of this.#objects.get(ns)?.values() ?? []) this.#sink.delete(kind, obj);
    for (const ns of entered)
      for (const { kind, obj } of this.#objects.get(ns)?.values() ?? []) this.#sink.upsert(kind, obj);
    return { entered, left };
  }
}
