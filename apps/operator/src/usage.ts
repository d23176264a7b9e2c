// What refers to a revision or a tag (pure): the InUse conditions of IstioRevisions and
// IstioRevisionTags. A namespace selects a revision or tag by `istio.io/rev`; without it, an
// ambient (`istio.io/dataplane-mode=ambient`) or injection-enabled namespace selects `default`.
// A waypoint Gateway (class `istio-waypoint`) selects by its own `istio.io/rev`, else its
// namespace's, else `default` (istiod's tag watcher decides so which istiod deploys it). A
// selection that names a tag resolves to the tag's revision. Beyond Sail, ambient namespaces and
// waypoints count, so RevisionBased pruning never removes a control plane they depend on.

export const REV_LABEL = 'istio.io/rev';
export const DEFAULT_TAG = 'default';
export const WAYPOINT_CLASS = 'istio-waypoint';

export interface LabelledNamespace {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
}

export interface WaypointGateway {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** A tag and the revision it points at. */
export interface TagPointer {
  readonly name: string;
  readonly revision: string;
}

export interface MeshReferences {
  readonly namespaces: readonly LabelledNamespace[];
  readonly waypoints: readonly WaypointGateway[];
  readonly tags: readonly TagPointer[];
}

/** The revision or tag a namespace selects; undefined when it is not in the mesh. */
export function namespaceSelection(labels: Readonly<Record<string, string>>): string | undefined {
  const rev = labels[REV_LABEL];
  if (rev !== undefined) return rev === '' ? DEFAULT_TAG : rev;
  return labels['istio.io/dataplane-mode'] === 'ambient' || labels['istio-injection'] === 'enabled'
    ? DEFAULT_TAG
    : undefined;
}

/** The revision or tag a waypoint selects: its label, its namespace's, else `default`. */
export function waypointSelection(
  gateway: WaypointGateway,
  namespaceLabels: Readonly<Record<string, string>> | undefined,
): string {
  const own = gateway.labels[REV_LABEL] ?? namespaceLabels?.[REV_LABEL];
  return own === undefined || own === '' ? DEFAULT_TAG : own;
}

/** A selection to the revision it reaches (a tag's revision, else the name itself). */
export function resolveSelection(selection: string, tags: readonly TagPointer[]): string {
  return tags.find(t => t.name === selection)?.revision ?? selection;
}

function selections(refs: MeshReferences): { what: string; selects: string }[] {
  const labelsOf = new Map(refs.namespaces.map(n => [n.name, n.labels]));
  const out: { what: string; selects: string }[] = [];
  for (const ns of refs.namespaces) {
    const s = namespaceSelection(ns.labels);
    if (s !== undefined) out.push({ what: `namespace ${ns.name}`, selects: s });
  }
  for (const gw of refs.waypoints)
    out.push({
      what: `waypoint ${gw.namespace}/${gw.name}`,
      selects: waypointSelection(gw, labelsOf.get(gw.namespace)),
    });
  return out;
}

/** What refers to the revision named `revision` (directly or through a tag). */
export function revisionReferences(revision: string, refs: MeshReferences): string[] {
  return selections(refs)
    .filter(s => resolveSelection(s.selects, refs.tags) === revision)
    .map(s => s.what);
}

/** What refers to the tag named `tag`. */
export function tagReferences(tag: string, refs: MeshReferences): string[] {
  return selections(refs)
    .filter(s => s.selects === tag)
    .map(s => s.what);
}
