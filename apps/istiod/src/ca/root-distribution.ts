/**
 * When a new CA may start signing: the decision of a root migration, as a pure function.
 *
 * A workload verifies its peers against the roots it received with its own certificate (the last
 * element of each `CreateCertificate` answer), and it receives new roots only when it renews. A
 * CA under a root the workloads do not hold yet must therefore not sign until every workload has
 * renewed once with a bundle that carries that root: otherwise the first workload on the new root
 * is refused by every peer that has not renewed yet (and refuses them in turn, if it no longer
 * trusts their root). So such a change is staged: first the roots are distributed (the previous
 * CA keeps signing, every answer and `istio-ca-root-cert` carry the previous roots plus the new
 * ones), then, once every certificate issued before has passed its refresh point, the new CA signs.
 */
import type { X509Certificate } from 'node:crypto';
import type { TrustBundle } from '@ambient-mesh/spiffe-certs';

/** The least and most time added to the refresh point, for the renewal itself (retries, load). */
export const DISTRIBUTION_GRACE_MIN_MS = 10_000;
export const DISTRIBUTION_GRACE_MAX_MS = 10 * 60_000;

export type CaChangePlan =
  /** Every root of the new CA is trusted already (a new intermediate, a root removed): sign now. */
  | { readonly kind: 'switch' }
  /**
   * Distribute `roots` first; the new CA signs after `waitMs` (counted from `since`, which is
   * earlier than now when the roots were already being distributed).
   */
  | {
      readonly kind: 'distribute';
      readonly roots: TrustBundle;
      readonly added: readonly X509Certificate[];
      readonly since: number;
      readonly waitMs: number;
    };

export interface CaChangeInput {
  /** The roots every workload holds: those of the CA signing now. */
  readonly trusted: TrustBundle;
  /** The roots of the CA that is to sign next. */
  readonly nextRoots: TrustBundle;
  /** A distribution already under way (a second change arrived during it). */
  readonly distributing?: { readonly roots: TrustBundle; readonly since: number };
  /**
   * The longest time, over the workload certificates signed so far, from signing to the
   * certificate's refresh point (the middle of its validity window, where ztunnel renews).
   * Undefined when none was signed yet.
   */
  readonly longestRefreshDelayMs: number | undefined;
  /** The lifetime to assume when none was signed yet (`DEFAULT_WORKLOAD_CERT_TTL`). */
  readonly defaultLifetimeMs: number;
  readonly now: number;
}

/** The refresh point of a certificate, ms since the epoch: the middle of its validity window. */
export function refreshPoint(notBefore: Date, notAfter: Date): number {
  return notBefore.getTime() + (notAfter.getTime() - notBefore.getTime()) / 2;
}

/**
 * How long after a change every certificate signed before it has been renewed: the longest
 * refresh delay plus a grace (a tenth of it, 10 s to 10 min) for the renewal itself.
 */
export function distributionWaitMs(refreshDelayMs: number): number {
  const grace = Math.min(DISTRIBUTION_GRACE_MAX_MS, Math.max(DISTRIBUTION_GRACE_MIN_MS, refreshDelayMs / 10));
  return Math.ceil(refreshDelayMs + grace);
}

export function planCaChange(input: CaChangeInput): CaChangePlan {
  const added = input.nextRoots.roots.filter(root => !input.trusted.contains(root));
  if (added.length === 0) return { kind: 'switch' };
  // The new roots first, so the bundle reads the same once the new CA signs with them.
  const roots = input.nextRoots.merge(input.trusted);
  const waitMs = distributionWaitMs(input.longestRefreshDelayMs ?? input.defaultLifetimeMs / 2);
  // Roots already on their way since `since` need not start over.
  const under = input.distributing;
  const since =
    under !== undefined && added.every(root => under.roots.contains(root)) ? under.since : input.now;
  return { kind: 'distribute', roots, added, since, waitMs };
}
