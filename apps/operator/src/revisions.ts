// Istio → IstioRevision decisions (pure): the active revision's name by update strategy, the
// IstioRevision object the operator applies for it, and which old revisions may be pruned.
import type { IstioValues } from './values.ts';
import { API_VERSION, ownerReference, type SailObject } from './resources.ts';

export interface IstioSpec {
  namespace: string;
  version: string;
  profile?: string;
  updateStrategy?: {
    type?: 'InPlace' | 'RevisionBased';
    inactiveRevisionDeletionGracePeriodSeconds?: number;
    updateWorkloads?: boolean;
  };
  values?: IstioValues;
}

export interface IstioRevisionSpec {
  namespace: string;
  version: string;
  values: IstioValues;
}

/** The newest release each `vX.Y-latest` alias stands for. */
export const LATEST: Readonly<Record<string, string>> = {
  'v1.27-latest': 'v1.27.9',
  'v1.26-latest': 'v1.26.8',
  'v1.25-latest': 'v1.25.5',
  'v1.24-latest': 'v1.24.6',
  'v1.23-latest': 'v1.23.6',
  'v1.22-latest': 'v1.22.8',
};

/** A concrete `vX.Y.Z` for a version or alias. */
export function resolveVersion(version: string): string {
  return LATEST[version] ?? version;
}

/** Default grace period before an unused non-active revision is deleted (Sail's). */
export const DEFAULT_DELETION_GRACE_SECONDS = 30;

/**
 * The active revision's name: the Istio's name with InPlace (the default); with RevisionBased
 * `<name>-v<x>-<y>-<z>` of the resolved version.
 */
export function activeRevisionName(istio: SailObject<IstioSpec>): string {
  if (istio.spec.updateStrategy?.type !== 'RevisionBased') return istio.metadata.name;
  return `${istio.metadata.name}-${resolveVersion(istio.spec.version).replaceAll('.', '-')}`;
}

/**
 * The IstioRevision for the Istio's active revision. Values are the user's with the operator's
 * forced overrides (as Sail): `profile` from spec.profile, `revision` (empty for `default`),
 * `global.istioNamespace` = spec.namespace, and no `defaultRevision`.
 */
export function desiredRevision(istio: SailObject<IstioSpec>): SailObject<IstioRevisionSpec> {
  const name = activeRevisionName(istio);
  const { defaultRevision: _dropped, ...userValues } = structuredClone(istio.spec.values ?? {});
  const values: IstioValues = {
    ...userValues,
    ...(istio.spec.profile === undefined ? {} : { profile: istio.spec.profile }),
    revision: name === 'default' ? '' : name,
    global: { ...userValues.global, istioNamespace: istio.spec.namespace },
  };
  return {
    apiVersion: API_VERSION,
    kind: 'IstioRevision',
    metadata: {
      name,
      labels: { 'app.kubernetes.io/managed-by': 'ambient-mesh-operator' },
      ownerReferences: [ownerReference(istio, 'Istio')],
    },
    spec: { namespace: istio.spec.namespace, version: resolveVersion(istio.spec.version), values },
  };
}

export interface RevisionUsage {
  readonly name: string;
  /** The revision's InUse condition status; only an explicit False allows pruning. */
  readonly inUse: 'True' | 'False' | 'Unknown';
  /** When InUse last turned False (ms since epoch). */
  readonly notInUseSinceMs?: number;
}

export type PruneDecision =
  | { readonly kind: 'delete'; readonly names: readonly string[] }
  | { readonly kind: 'wait'; readonly names: readonly string[]; readonly retryAfterMs: number };

/**
 * Which non-active revisions to delete now (InPlace: every non-active one; RevisionBased: those
 * whose InUse is False for at least the grace period) and when to look again.
 */
export function pruneRevisions(
  istio: SailObject<IstioSpec>,
  owned: readonly RevisionUsage[],
  nowMs: number,
): PruneDecision {
  const active = activeRevisionName(istio);
  const inactive = owned.filter(r => r.name !== active);
  if (istio.spec.updateStrategy?.type !== 'RevisionBased')
    return { kind: 'delete', names: inactive.map(r => r.name) };
  const graceMs =
    (istio.spec.updateStrategy.inactiveRevisionDeletionGracePeriodSeconds ?? DEFAULT_DELETION_GRACE_SECONDS) *
    1000;
  const due: string[] = [];
  const waiting: string[] = [];
  let retryAfterMs = Number.POSITIVE_INFINITY;
  for (const r of inactive) {
    if (r.inUse !== 'False' || r.notInUseSinceMs === undefined) continue;
    const left = r.notInUseSinceMs + graceMs - nowMs;
    if (left <= 0) due.push(r.name);
    else {
      waiting.push(r.name);
      retryAfterMs = Math.min(retryAfterMs, left);
    }
  }
  if (due.length > 0 || waiting.length === 0) return { kind: 'delete', names: due };
  return { kind: 'wait', names: waiting, retryAfterMs };
}
