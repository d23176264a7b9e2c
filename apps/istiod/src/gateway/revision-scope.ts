/**
 * Which Gateways this istiod's deployment controller manages, by revision, as upstream's tag
 * watcher (`pkg/revisions/tag_watcher.go`) decides it:
 *
 * - istiod runs as one revision (`REVISION`, `default` when unset) and owns the tags that point at
 *   it: a tag is a MutatingWebhookConfiguration labelled `istio.io/tag=<tag>` and
 *   `istio.io/rev=<revision>` (what `istioctl tag set` and the operator's IstioRevisionTag write).
 * - A Gateway selects a revision or tag by its own `istio.io/rev` label, else by its namespace's;
 *   none selects `default`. The Gateway is this istiod's when the selection is its revision or one
 *   of its tags. A Gateway in a namespace not (yet) known is taken, as upstream does.
 *
 * Pure state fed by the Namespace and tag informers; each `on*` answers whether the decision may
 * have changed, so the controller reconciles again only then.
 */
import { Label } from '@ambient-mesh/mesh-api';
import type { KubeObject } from '../kube/objects.ts';

/** The label naming a tag on its MutatingWebhookConfiguration. */
export const TAG_LABEL = 'istio.io/tag';

/** The revision of an istiod started without `REVISION`. */
export const DEFAULT_REVISION = 'default';

export class RevisionScope {
  readonly revision: string;
  /** MutatingWebhookConfiguration name -> the tag it carries and the revision it points at. */
  readonly #tags = new Map<string, { readonly tag: string; readonly revision: string }>();
  /** Namespace -> its `istio.io/rev` label ('' when it has none). */
  readonly #namespaces = new Map<string, string>();

  constructor(revision: string = DEFAULT_REVISION) {
    this.revision = revision === '' ? DEFAULT_REVISION : revision;
  }

  /** The revision and the tags pointing at it. */
  myTags(): Set<string> {
    const out = new Set([this.revision]);
    for (const t of this.#tags.values()) if (t.revision === this.revision) out.add(t.tag);
    return out;
  }

  /** A tag's webhook configuration was added, changed or deleted; true when my tags changed. */
  onTag(obj: KubeObject, deleted: boolean): boolean {
    const before = [...this.myTags()].sort().join(',');
    const name = obj.metadata?.name ?? '';
    const tag = obj.metadata?.labels?.[TAG_LABEL];
    const revision = obj.metadata?.labels?.[Label.revision];
    if (deleted || tag === undefined || revision === undefined) this.#tags.delete(name);
    else this.#tags.set(name, { tag, revision });
    return before !== [...this.myTags()].sort().join(',');
  }

  /** A namespace was added, changed or deleted; true when its revision selection changed. */
  onNamespace(obj: KubeObject, deleted: boolean): boolean {
    const name = obj.metadata?.name ?? '';
    const before = this.#namespaces.get(name);
    if (deleted) this.#namespaces.delete(name);
    else this.#namespaces.set(name, obj.metadata?.labels?.[Label.revision] ?? '');
    return before !== this.#namespaces.get(name);
  }

  /** The revision or tag a Gateway selects ('' for none); undefined when its namespace is unknown. */
  selection(namespace: string, labels: Readonly<Record<string, string>>): string | undefined {
    return labels[Label.revision] ?? this.#namespaces.get(namespace);
  }

  /** Whether this istiod manages an object of `namespace` carrying `labels`. */
  isMine(namespace: string, labels: Readonly<Record<string, string>>): boolean {
    const selected = this.selection(namespace, labels);
    if (selected === undefined) return true;
    return this.myTags().has(selected === '' ? DEFAULT_REVISION : selected);
  }
}

/** istiod's Service name for a revision: `istiod`, or `istiod-<revision>`. */
export function istiodServiceName(revision: string): string {
  return revision === '' || revision === DEFAULT_REVISION ? 'istiod' : `istiod-${revision}`;
}
