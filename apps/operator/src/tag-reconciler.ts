// Reconciling an `IstioRevisionTag`: resolve its target (an Istio's active revision, or an
// IstioRevision) and apply the tag's objects, as Sail's revision-tags chart does where it applies
// to ambient:
// - the MutatingWebhookConfiguration `istio-revision-tag-<tag>` labelled `istio.io/tag=<tag>` and
//   `istio.io/rev=<revision>`: istiod's tag watcher reads it to know its tags (which Gateways,
//   hence waypoints, it deploys). It carries no webhook: ambient has no sidecar injection.
// - for the tag `default`, the Service `istiod` in the revision's namespace selecting that
//   revision's istiod pods: the address ztunnel (and anything else configured for `istiod`)
//   reaches, so moving the tag moves them too.
// Status as Sail: `istioRevision`, `istiodNamespace`, Reconciled (reasons `NameAlreadyExists`,
// `RefNotFound`, `ReconcileError`) and InUse (namespaces, and beyond Sail waypoints, selecting it).
import type { KubeClient } from '@ambient-mesh/kube';
import { renderComponent, type ManifestObject } from '@ambient-mesh/install';
import { ensureFinalizer, errorMessage, objectPath, releaseFinalizer, writeStatus } from './cr-ops.ts';
import type { ReconcileResult } from './component-reconciler.ts';
import {
  FIELD_MANAGER,
  OWNER_LABEL,
  ownerLabel,
  ownerReference,
  sailPath,
  type ObjectMeta,
  type SailCondition,
  type SailObject,
  type SailStatus,
} from './resources.ts';
import { activeRevisionName, type IstioRevisionSpec, type IstioSpec } from './revisions.ts';
import { ConditionType, Reason, inUseCondition, mergeConditions } from './status.ts';
import { DEFAULT_TAG, REV_LABEL, tagReferences, type MeshReferences } from './usage.ts';

export interface IstioRevisionTagSpec {
  targetRef: { kind: string; name: string };
}

export type IstioRevisionTag = Omit<SailObject<IstioRevisionTagSpec>, 'status'> & { status?: TagStatus };

/** Sail's tag reasons. */
export const TagReason = {
  NameAlreadyExists: 'NameAlreadyExists',
  RefNotFound: 'RefNotFound',
} as const;

/** The tag's status: `istioRevision`/`istiodNamespace` besides Sail's common fields. */
export type TagStatus = SailStatus & { istioRevision?: string; istiodNamespace?: string };

/** The label naming a tag on its MutatingWebhookConfiguration (istioctl's and istiod's). */
export const TAG_LABEL = 'istio.io/tag';

/** A tag's resolution: the revision it points at, or why it points at none. */
export type TagTarget =
  | { readonly kind: 'revision'; readonly revision: string; readonly namespace: string }
  | { readonly kind: 'invalid'; readonly reason: string; readonly message: string };

/** Where a tag points (pure over the CRs it names). */
export function resolveTag(
  tag: IstioRevisionTag,
  lookup: {
    istio(name: string): SailObject<IstioSpec> | undefined;
    revision(name: string): SailObject<IstioRevisionSpec> | undefined;
  },
): TagTarget {
  const clash = lookup.revision(tag.metadata.name);
  if (clash !== undefined)
    return {
      kind: 'invalid',
      reason: TagReason.NameAlreadyExists,
      message: `an IstioRevision exists with this name (${tag.metadata.name})`,
    };
  const ref = tag.spec.targetRef;
  let revisionName: string;
  if (ref.kind === 'Istio') {
    const istio = lookup.istio(ref.name);
    if (istio === undefined)
      return {
        kind: 'invalid',
        reason: TagReason.RefNotFound,
        message: `referenced Istio resource ${ref.name} does not exist`,
      };
    revisionName = istio.status?.activeRevisionName ?? activeRevisionName(istio);
  } else if (ref.kind === 'IstioRevision') {
    revisionName = ref.name;
  } else {
    return {
      kind: 'invalid',
      reason: Reason.ReconcileError,
      message: `unknown spec.targetRef.kind ${ref.kind}: use Istio or IstioRevision`,
    };
  }
  const revision = lookup.revision(revisionName);
  if (revision === undefined)
    return {
      kind: 'invalid',
      reason: TagReason.RefNotFound,
      message: `referenced IstioRevision resource ${revisionName} does not exist`,
    };
  return { kind: 'revision', revision: revisionName, namespace: revision.spec.namespace };
}

/** The objects a tag owns, pointing at `revision` in `namespace` (pure over the istiod manifests). */
export function tagObjects(
  manifests: readonly ManifestObject[],
  tag: IstioRevisionTag,
  revision: string,
  namespace: string,
): ManifestObject[] {
  const labels = {
    [TAG_LABEL]: tag.metadata.name,
    [REV_LABEL]: revision,
    [OWNER_LABEL]: ownerLabel('IstioRevisionTag', tag.metadata.name),
    'app.kubernetes.io/managed-by': FIELD_MANAGER,
  };
  const owner = [ownerReference(tag, 'IstioRevisionTag')];
  const out: (ManifestObject & { metadata: ObjectMeta })[] = [
    {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingWebhookConfiguration',
      metadata: { name: `istio-revision-tag-${tag.metadata.name}`, labels, ownerReferences: owner },
      webhooks: [],
    },
  ];
  if (tag.metadata.name === DEFAULT_TAG) {
    const service = manifests.find(o => o.kind === 'Service') as
      { spec?: { ports?: unknown[]; selector?: Record<string, string> } } | undefined;
    out.push({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'istiod', namespace, labels: { ...labels, app: 'istiod' }, ownerReferences: owner },
      spec: {
        selector: { ...service?.spec?.selector, [REV_LABEL]: revision },
        ports: structuredClone(service?.spec?.ports ?? []),
      },
    });
  }
  return out;
}

export interface TagReconcilerOptions {
  readonly client: KubeClient;
  readonly now?: () => Date;
  /** What refers to revisions and tags (namespaces, waypoints, tags); read from the cluster. */
  readonly references: () => Promise<MeshReferences>;
}

export class TagReconciler {
  readonly #client: KubeClient;
  readonly #now: () => Date;
  readonly #references: () => Promise<MeshReferences>;

  constructor(options: TagReconcilerOptions) {
    this.#client = options.client;
    this.#now = options.now ?? (() => new Date());
    this.#references = options.references;
  }

  /** The objects the tag owns now, wherever its status says they are (for their removal). */
  #owned(tag: IstioRevisionTag, namespace: string | undefined): ManifestObject[] {
    const status = tag.status;
    return tagObjects(
      [],
      tag,
      status?.istioRevision ?? '',
      namespace ?? status?.istiodNamespace ?? 'istio-system',
    );
  }

  /** Deletes those of `objects` that carry this tag's owner label (never another owner's `istiod`). */
  async #deleteOwned(tag: IstioRevisionTag, objects: readonly ManifestObject[]): Promise<number> {
    let deleted = 0;
    for (const o of objects) {
      const path = objectPath(o);
      if (path === undefined) continue;
      const live = await this.#client.find<{ metadata: { labels?: Record<string, string> } }>(path);
      if (live?.metadata.labels?.[OWNER_LABEL] !== ownerLabel('IstioRevisionTag', tag.metadata.name))
        continue;
      if (await this.#client.delete(path, { propagationPolicy: 'Background' })) deleted += 1;
    }
    return deleted;
  }

  /** Reconciles the IstioRevisionTag `name` once. */
  async reconcile(name: string): Promise<ReconcileResult> {
    const tag = await this.#client.find<IstioRevisionTag>(sailPath('IstioRevisionTag', name));
    if (tag === undefined) return { kind: 'gone' };
    const previous = tag.status;
    if (tag.metadata.deletionTimestamp !== undefined) {
      const deleted = await this.#deleteOwned(tag, this.#owned(tag, undefined));
      await releaseFinalizer(this.#client, 'IstioRevisionTag', tag);
      return { kind: 'uninstalled', deleted };
    }
    await ensureFinalizer(this.#client, 'IstioRevisionTag', tag);

    const [istios, revisions] = await Promise.all([
      this.#client.list<SailObject<IstioSpec>>(sailPath('Istio')),
      this.#client.list<SailObject<IstioRevisionSpec>>(sailPath('IstioRevision')),
    ]);
    const target = resolveTag(tag, {
      istio: n => istios.items.find(i => i.metadata.name === n),
      revision: n => revisions.items.find(r => r.metadata.name === n),
    });
    let reconciled: SailCondition = {
      type: ConditionType.Reconciled,
      status: 'True',
      reason: Reason.Healthy,
    };
    let applied = 0;
    if (target.kind === 'invalid') {
      reconciled = { ...reconciled, status: 'False', reason: target.reason, message: target.message };
    } else {
      try {
        // The revision's namespace changed: the old Service goes first.
        if (previous?.istiodNamespace !== undefined && previous.istiodNamespace !== target.namespace)
          await this.#deleteOwned(
            tag,
            this.#owned(tag, previous.istiodNamespace).filter(o => o.kind === 'Service'),
          );
        for (const o of tagObjects(renderComponent('istiod'), tag, target.revision, target.namespace)) {
          if (objectPath(o) === undefined) continue;
          await this.#client.apply(o, { fieldManager: FIELD_MANAGER, force: true });
          applied += 1;
        }
      } catch (err) {
        reconciled = {
          ...reconciled,
          status: 'False',
          reason: Reason.ReconcileError,
          message: `error reconciling resource: ${errorMessage(err)}`,
        };
      }
    }
    const inUse = inUseCondition(tagReferences(name, await this.#references()));
    const conditions = mergeConditions(previous?.conditions, [reconciled, inUse], this.#now());
    const ok = reconciled.status === 'True' && target.kind === 'revision';
    const status: TagStatus = {
      ...(tag.metadata.generation === undefined ? {} : { observedGeneration: tag.metadata.generation }),
      conditions,
      state:
        reconciled.status !== 'True'
          ? (reconciled.reason ?? Reason.ReconcileError)
          : inUse.status !== 'True'
            ? (inUse.reason ?? Reason.NotReferencedByAnything)
            : Reason.Healthy,
      istioRevision: ok ? target.revision : (previous?.istioRevision ?? ''),
      istiodNamespace: ok ? target.namespace : (previous?.istiodNamespace ?? ''),
    };
    await writeStatus(this.#client, 'IstioRevisionTag', tag, status);
    return { kind: 'reconciled', status, previous, applied };
  }
}
