// Reconciling a DaemonSet-backed CR (IstioCNI → cni-agent, ZTunnel → ztunnel): finalizer, value
// check, server-side apply of the rendered objects, readiness from the DaemonSet, Sail status; on
// deletion, delete what the CR owns and release the finalizer.
import type { KubeClient } from '@ambient-mesh/kube';
import { renderComponent, type ManifestObject, type RenderOptions } from '@ambient-mesh/install';
import { deleteObjects, ensureFinalizer, errorMessage, releaseFinalizer, writeStatus } from './cr-ops.ts';
import { overrideImages, renderCni, renderZtunnel, type RenderTarget } from './render.ts';
import { resolveVersion } from './revisions.ts';
import { FIELD_MANAGER, sailPath, type SailObject, type SailStatus } from './resources.ts';
import {
  Reason,
  componentStatus,
  daemonSetReadiness,
  daemonSetReady,
  type DaemonSetStatusLike,
  type ReconcileOutcome,
} from './status.ts';
import { CNI_VALUES, ZTUNNEL_VALUES, checkValues, invalidValuesMessage } from './values.ts';

export interface ComponentSpec {
  namespace: string;
  version: string;
  profile?: string;
  values?: Record<string, unknown>;
}

export type ComponentKind = 'IstioCNI' | 'ZTunnel';

interface ComponentDef {
  readonly manifest: 'cni-agent' | 'ztunnel';
  readonly daemonSet: string;
  readonly label: 'istio-cni' | 'ztunnel';
  readonly render: (
    manifests: readonly ManifestObject[],
    target: RenderTarget,
    values: Record<string, unknown>,
  ) => ManifestObject[];
  readonly shape: typeof CNI_VALUES;
}

const COMPONENTS: Readonly<Record<ComponentKind, ComponentDef>> = {
  IstioCNI: {
    manifest: 'cni-agent',
    daemonSet: 'istio-cni-node',
    label: 'istio-cni',
    render: (m, t, v) => renderCni(m, t, v),
    shape: CNI_VALUES,
  },
  ZTunnel: {
    manifest: 'ztunnel',
    daemonSet: 'ztunnel',
    label: 'ztunnel',
    render: (m, t, v) => renderZtunnel(m, t, v),
    shape: ZTUNNEL_VALUES,
  },
};

export interface ComponentReconcilerOptions {
  readonly client: KubeClient;
  readonly render?: RenderOptions;
  readonly now?: () => Date;
}

/** What one reconcile did, for logs, metrics and tests. */
export type ReconcileResult =
  | { readonly kind: 'gone' }
  | { readonly kind: 'uninstalled'; readonly deleted: number }
  | {
      readonly kind: 'reconciled';
      readonly status: SailStatus;
      /** The status the CR carried before (for events on transitions). */
      readonly previous: SailStatus | undefined;
      readonly applied: number;
    };

export class ComponentReconciler {
  readonly #client: KubeClient;
  readonly #render: RenderOptions;
  readonly #now: () => Date;

  constructor(options: ComponentReconcilerOptions) {
    this.#client = options.client;
    this.#render = options.render ?? {};
    this.#now = options.now ?? (() => new Date());
  }

  /** Reconciles the CR `name` of `kind` once. */
  async reconcile(kind: ComponentKind, name: string): Promise<ReconcileResult> {
    const def = COMPONENTS[kind];
    const cr = await this.#client.find<SailObject<ComponentSpec>>(sailPath(kind, name));
    if (cr === undefined) return { kind: 'gone' };
    const target: RenderTarget = {
      kind,
      owner: cr,
      namespace: cr.spec.namespace,
      version: resolveVersion(cr.spec.version),
    };
    const { images, ...render } = this.#render;
    const desired = overrideImages(
      def.render(renderComponent(def.manifest, render), target, cr.spec.values ?? {}),
      images,
    );

    if (cr.metadata.deletionTimestamp !== undefined) {
      const deleted = await deleteObjects(this.#client, desired);
      await releaseFinalizer(this.#client, kind, cr);
      return { kind: 'uninstalled', deleted };
    }

    await ensureFinalizer(this.#client, kind, cr);

    let outcome: ReconcileOutcome = { ok: true };
    let applied = 0;
    const problems = checkValues(cr.spec.values, def.shape);
    if (problems.length > 0) {
      // Nothing is touched: the running component stays as it was.
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

    const ds = await this.#client.find<{ status?: DaemonSetStatusLike }>(
      `/apis/apps/v1/namespaces/${encodeURIComponent(cr.spec.namespace)}/daemonsets/${def.daemonSet}`,
    );
    const ready = daemonSetReady(
      ds === undefined ? daemonSetReadiness(undefined) : daemonSetReadiness(ds.status ?? {}),
      def.label,
    );
    const status = componentStatus(cr.metadata.generation, cr.status, outcome, ready, this.#now());
    await writeStatus(this.#client, kind, cr, status);
    return { kind: 'reconciled', status, previous: cr.status, applied };
  }
}
