// Reconciling the control plane: `Istio` → its IstioRevision(s) (by update strategy, pruning the
// inactive ones) and status from them; `IstioRevision` → istiod (Deployment, Service, RBAC, the
// mesh ConfigMap from `values.meshConfig`), Ready from the istiod Deployment, InUse from the
// namespaces and waypoints that select the revision, directly or through a tag (`usage.ts`). Both carry the finalizer: deleting an Istio deletes its
// revisions, deleting a revision deletes its istiod.
import { ApplyPatch, type KubeClient } from '@ambient-mesh/kube';
import { renderComponent, type ManifestObject, type RenderOptions } from '@ambient-mesh/install';
import { parse, stringify } from 'yaml';
import { deleteObjects, ensureFinalizer, errorMessage, releaseFinalizer, writeStatus } from './cr-ops.ts';
import type { ReconcileResult } from './component-reconciler.ts';
import { overrideImages, renderIstiod } from './render.ts';
import { FIELD_MANAGER, sailPath, type SailObject } from './resources.ts';
import {
  desiredRevision,
  activeRevisionName,
  pruneRevisions,
  resolveVersion,
  type IstioRevisionSpec,
  type IstioSpec,
  type RevisionUsage,
} from './revisions.ts';
import {
  ConditionType,
  Reason,
  deploymentReadiness,
  inUseCondition,
  istioStatus,
  istiodReady,
  revisionStatus,
  type DeploymentStatusLike,
  type ReconcileOutcome,
  type RevisionSummary,
} from './status.ts';
import { readMeshReferences } from './mesh-references.ts';
import { revisionReferences, type MeshReferences } from './usage.ts';
import { ISTIO_VALUES, checkValues, invalidValuesMessage, type IstioValues } from './values.ts';

/** istiod replicas when `values.pilot.replicaCount` is unset (Istio's chart default, as Sail). */
export const DEFAULT_ISTIOD_REPLICAS = 1;

/** What the Istio reconcile adds: when to look again (a RevisionBased grace period running). */
export type IstioReconcileResult = ReconcileResult & { readonly retryAfterMs?: number };

export interface IstioReconcilerOptions {
  readonly client: KubeClient;
  readonly render?: RenderOptions;
  readonly now?: () => Date;
  /** What refers to revisions (namespaces, waypoints, tags); default: read from the cluster. */
  readonly references?: () => Promise<MeshReferences>;
}

type Revision = SailObject<IstioRevisionSpec>;
type Istio = SailObject<IstioSpec>;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isObject(b) && isObject(v) ? deepMerge(b, v) : v;
  }
  return out;
}

/**
 * The mesh ConfigMap's `mesh` document: the manifest's, written for `istio-system`, moved to the
 * revision's namespace (root namespace, discovery address) with `values.meshConfig` merged over it.
 */
export function meshConfigDocument(
  manifestMesh: string,
  namespace: string,
  service: string,
  meshConfig: Record<string, unknown> | undefined,
): string {
  const base = (parse(manifestMesh) ?? {}) as Record<string, unknown>;
  const placed = deepMerge(base, {
    rootNamespace: namespace,
    defaultConfig: { discoveryAddress: `${service}.${namespace}.svc:15012` },
  });
  return stringify(meshConfig === undefined ? placed : deepMerge(placed, meshConfig));
}

/** The objects an IstioRevision owns (pure over the install package's istiod manifests). */
export function revisionObjects(manifests: readonly ManifestObject[], rev: Revision): ManifestObject[] {
  const values: IstioValues = rev.spec.values;
  const revision = values.revision ?? '';
  const objects = renderIstiod(
    manifests,
    {
      kind: 'IstioRevision',
      owner: rev,
      namespace: rev.spec.namespace,
      revision,
      version: resolveVersion(rev.spec.version),
    },
    values,
  );
  const service = revision === '' ? 'istiod' : `istiod-${revision}`;
  for (const o of objects) {
    if (o.kind !== 'ConfigMap') continue;
    const data = (o as { data?: Record<string, string> }).data;
    if (data?.mesh !== undefined)
      data.mesh = meshConfigDocument(data.mesh, rev.spec.namespace, service, values.meshConfig);
  }
  return objects;
}

function ownedBy(o: { metadata: { ownerReferences?: { uid: string }[] } }, uid: string | undefined): boolean {
  return uid !== undefined && (o.metadata.ownerReferences ?? []).some(r => r.uid === uid);
}

function conditionOf(
  o: Revision,
  type: string,
): { status?: string; lastTransitionTime?: string } | undefined {
  return o.status?.conditions?.find(c => c.type === type);
}

export class IstioReconciler {
  readonly #client: KubeClient;
  readonly #render: RenderOptions;
  readonly #now: () => Date;
  readonly #references: () => Promise<MeshReferences>;

  constructor(options: IstioReconcilerOptions) {
    this.#client = options.client;
    this.#render = options.render ?? {};
    this.#now = options.now ?? (() => new Date());
    this.#references = options.references ?? (() => readMeshReferences(options.client));
  }

  async #revisionsOf(istio: Istio): Promise<Revision[]> {
    const all = await this.#client.list<Revision>(sailPath('IstioRevision'));
    return all.items.filter(r => ownedBy(r, istio.metadata.uid));
  }

  /** Reconciles the Istio `name` once. */
  async reconcileIstio(name: string): Promise<IstioReconcileResult> {
    const cr = await this.#client.find<Istio>(sailPath('Istio', name));
    if (cr === undefined) return { kind: 'gone' };
    const owned = await this.#revisionsOf(cr);
    if (cr.metadata.deletionTimestamp !== undefined) {
      // Each revision's own finalizer removes its istiod.
      for (const r of owned)
        await this.#client.delete(sailPath('IstioRevision', r.metadata.name), {
          propagationPolicy: 'Background',
        });
      await releaseFinalizer(this.#client, 'Istio', cr);
      return { kind: 'uninstalled', deleted: owned.length };
    }
    await ensureFinalizer(this.#client, 'Istio', cr);

    let outcome: ReconcileOutcome = { ok: true };
    let applied = 0;
    let retryAfterMs: number | undefined;
    const problems = checkValues(cr.spec.values, ISTIO_VALUES);
    if (problems.length > 0) {
      outcome = { ok: false, reason: Reason.InvalidValues, message: invalidValuesMessage(problems) };
    } else {
      try {
        const revision = desiredRevision(cr);
        await this.#client.request('PATCH', sailPath('IstioRevision', revision.metadata.name), {
          body: revision,
          contentType: ApplyPatch,
          query: { fieldManager: FIELD_MANAGER, force: true },
        });
        applied = 1;
        const usage: RevisionUsage[] = owned.map(r => {
          const inUse = conditionOf(r, ConditionType.InUse);
          const since =
            inUse?.status === 'False' && inUse.lastTransitionTime !== undefined
              ? Date.parse(inUse.lastTransitionTime)
              : undefined;
          return {
            name: r.metadata.name,
            inUse: inUse?.status === 'True' || inUse?.status === 'False' ? inUse.status : 'Unknown',
            ...(since === undefined ? {} : { notInUseSinceMs: since }),
          };
        });
        const prune = pruneRevisions(cr, usage, this.#now().getTime());
        if (prune.kind === 'delete') {
          for (const n of prune.names)
            await this.#client.delete(sailPath('IstioRevision', n), { propagationPolicy: 'Background' });
        } else {
          retryAfterMs = prune.retryAfterMs;
        }
      } catch (err) {
        outcome = { ok: false, reason: Reason.ReconcileError, message: errorMessage(err) };
      }
    }

    const current = await this.#revisionsOf(cr);
    const summaries: RevisionSummary[] = current.map(r => ({
      name: r.metadata.name,
      ready: conditionOf(r, ConditionType.Ready)?.status === 'True',
      inUse: conditionOf(r, ConditionType.InUse)?.status === 'True',
    }));
    const status = istioStatus(
      cr.metadata.generation,
      cr.status,
      outcome,
      activeRevisionName(cr),
      summaries,
      this.#now(),
    );
    await writeStatus(this.#client, 'Istio', cr, status);
    return {
      kind: 'reconciled',
      status,
      previous: cr.status,
      applied,
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    };
  }

  /** Reconciles the IstioRevision `name` once. */
  async reconcileRevision(name: string): Promise<ReconcileResult> {
    const cr = await this.#client.find<Revision>(sailPath('IstioRevision', name));
    if (cr === undefined) return { kind: 'gone' };
    const values = cr.spec.values;
    const problems = checkValues(values, ISTIO_VALUES);
    const replicas = Number.isInteger(values.pilot?.replicaCount)
      ? (values.pilot?.replicaCount ?? DEFAULT_ISTIOD_REPLICAS)
      : DEFAULT_ISTIOD_REPLICAS;
    const { images, ...render } = this.#render;
    const desired = overrideImages(
      revisionObjects(
        renderComponent('istiod', {
          ...render,
          istiodReplicas: replicas,
          nodeUntaint: values.pilot?.taint?.enabled === true,
          ...(values.pilot?.taint?.namespace === undefined
            ? {}
            : { cniNamespace: values.pilot.taint.namespace }),
        }),
        cr,
      ),
      images,
    );

    if (cr.metadata.deletionTimestamp !== undefined) {
      const deleted = await deleteObjects(this.#client, desired);
      await releaseFinalizer(this.#client, 'IstioRevision', cr);
      return { kind: 'uninstalled', deleted };
    }
    await ensureFinalizer(this.#client, 'IstioRevision', cr);

    let outcome: ReconcileOutcome = { ok: true };
    let applied = 0;
    if (problems.length > 0) {
      outcome = { ok: false, reason: Reason.InvalidValues, message: invalidValuesMessage(problems) };
    } else {
      try {
        for (const o of desired) {
          await this.#client.apply(o, { fieldManager: FIELD_MANAGER, force: true });
          applied += 1;
        }
      } catch (err) {
        outcome = { ok: false, reason: Reason.ReconcileError, message: errorMessage(err) };
      }
    }
    const deployment = desired.find(o => o.kind === 'Deployment');
    const live =
      deployment === undefined
        ? undefined
        : await this.#client.find<{ status?: DeploymentStatusLike }>(
            `/apis/apps/v1/namespaces/${encodeURIComponent(cr.spec.namespace)}/deployments/${encodeURIComponent(deployment.metadata.name)}`,
          );
    const ready = istiodReady(
      live === undefined ? deploymentReadiness(undefined) : deploymentReadiness(live.status ?? {}),
    );
    const inUse = inUseCondition(revisionReferences(name, await this.#references()));
    const status = revisionStatus(cr.metadata.generation, cr.status, outcome, ready, inUse, this.#now());
    await writeStatus(this.#client, 'IstioRevision', cr, status);
    return { kind: 'reconciled', status, previous: cr.status, applied };
  }
}
