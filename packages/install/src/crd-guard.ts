/**
 * Never downgrade an installed CRD. Applying a CRD whose spec lacks a version listed in the live
 * CRD's `status.storedVersions` fails with 422, and replacing a newer Gateway API bundle with an
 * older subset would drop fields other controllers rely on. `crdApplyDecision` says whether a
 * CRD may be applied over what the cluster has; the installer skips (and reports) the others.
 */
import type { ManifestObject } from './manifests.ts';

export const GATEWAY_API_GROUP = 'gateway.networking.k8s.io';
export const BUNDLE_VERSION_ANNOTATION = 'gateway.networking.k8s.io/bundle-version';

/** What the guard reads of a live CRD. */
export interface LiveCrd {
  readonly metadata?: { readonly annotations?: Readonly<Record<string, string>> };
  readonly status?: { readonly storedVersions?: readonly string[] };
}

export type CrdDecision = { readonly apply: true } | { readonly apply: false; readonly reason: string };

function versionsOf(o: ManifestObject): string[] {
  const versions = (o as { spec?: { versions?: readonly { name?: string }[] } }).spec?.versions ?? [];
  return versions.map(v => v.name ?? '').filter(n => n !== '');
}

/** `v1.4.1` -> [1, 4, 1]; undefined when not a semantic version. */
function semver(v: string | undefined): number[] | undefined {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(v ?? '');
  return m === null ? undefined : [Number(m[1]), Number(m[2]), Number(m[3])];
}

function older(a: number[], b: number[]): boolean {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return (a[i] ?? 0) < (b[i] ?? 0);
  return false;
}

/** Whether `next` may be applied over `live` (undefined: not installed yet). */
export function crdApplyDecision(next: ManifestObject, live: LiveCrd | undefined): CrdDecision {
  if (live === undefined) return { apply: true };
  const served = new Set(versionsOf(next));
  const missing = (live.status?.storedVersions ?? []).filter(v => !served.has(v));
  if (missing.length > 0) {
    return {
      apply: false,
      reason: `the installed CRD stores version(s) ${missing.join(', ')} that this manifest lacks`,
    };
  }
  const ours = semver(next.metadata.annotations?.[BUNDLE_VERSION_ANNOTATION]);
  const theirs = semver(live.metadata?.annotations?.[BUNDLE_VERSION_ANNOTATION]);
  if (ours !== undefined && theirs !== undefined && older(ours, theirs)) {
    return {
      apply: false,
      reason: `the installed bundle ${live.metadata?.annotations?.[BUNDLE_VERSION_ANNOTATION] ?? ''} is newer than ${next.metadata.annotations?.[BUNDLE_VERSION_ANNOTATION] ?? ''}`,
    };
  }
  return { apply: true };
}

/**
 * The CRDs to install: the repository's, with its Gateway API CRDs replaced by `gatewayApi` when
 * given (the real upstream bundle instead of our hand-written subset).
 */
export function withGatewayApiCrds(
  repoCrds: readonly ManifestObject[],
  gatewayApi: readonly ManifestObject[] | undefined,
): ManifestObject[] {
  if (gatewayApi === undefined) return [...repoCrds];
  const isGatewayApi = (o: ManifestObject): boolean =>
    (o as { spec?: { group?: string } }).spec?.group === GATEWAY_API_GROUP;
  return [...repoCrds.filter(o => !isGatewayApi(o)), ...gatewayApi];
}
