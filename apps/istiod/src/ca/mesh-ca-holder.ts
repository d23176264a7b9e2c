/**
 * The CA istiod signs with right now, and the roots it hands out. Single writer (`change`, called
 * by the cacerts watch); readers (the CA service, the serving certificate, the root publisher) ask
 * `current` / `rootCertPem` on every use or subscribe to changes, so a new CA takes effect without
 * a restart.
 *
 * A new CA whose roots are all trusted already (a new intermediate under the same root, a root
 * removed) signs at once. A new CA that brings a root the workloads do not hold yet is staged
 * (`root-distribution.ts`): the CA in use keeps signing, but every answer and the published
 * bundle carry the new roots too; once every certificate signed before has passed its refresh
 * point, the new CA signs. So no workload presents a certificate from the new root to a peer
 * that does not trust it yet.
 */
import { errorMessage } from '@ambient-mesh/errors';
import type { Logger, TimerHandle, Timers } from '@ambient-mesh/runtime';
import {
  CA_DEFAULTS,
  TrustBundle,
  type IssuedCertificate,
  type SignRequest,
} from '@ambient-mesh/spiffe-certs';
import type { MeshCa } from './ca-bootstrap.ts';
import { planCaChange, refreshPoint } from './root-distribution.ts';

export type MeshCaListener = (next: MeshCa, previous: MeshCa) => void;

export type CaChangeOutcome =
  | { readonly kind: 'switched' }
  /** The new roots are being distributed; the new CA signs from `switchAt`. */
  | { readonly kind: 'staged'; readonly switchAt: Date; readonly addedRoots: number };

export interface MeshCaHolderOptions {
  /** Timers and clock of the distribution wait; without them a change always switches at once. */
  readonly timers?: Timers;
  readonly logger?: Logger;
  /** The lifetime to assume before any certificate was signed (`DEFAULT_WORKLOAD_CERT_TTL`). */
  readonly defaultLifetimeSeconds?: number;
}

interface Distribution {
  readonly next: MeshCa;
  readonly roots: TrustBundle;
  readonly since: number;
  readonly switchAt: number;
  readonly timer: TimerHandle;
}

export class MeshCaHolder {
  #current: MeshCa;
  #distribution: Distribution | undefined;
  /** The longest time from signing to refresh point of a workload certificate signed so far. */
  #longestRefreshDelayMs: number | undefined;
  readonly #options: MeshCaHolderOptions;
  readonly #listeners = new Set<MeshCaListener>();
  readonly #rootListeners = new Set<() => void>();

  constructor(initial: MeshCa, options: MeshCaHolderOptions = {}) {
    this.#current = initial;
    this.#options = options;
  }

  /** The CA that signs now. */
  get current(): MeshCa {
    return this.#current;
  }

  /** The roots to publish and to answer with: during a distribution, the new roots as well. */
  get rootCertPem(): string {
    return this.#distribution?.roots.pem ?? this.#current.rootCertPem;
  }

  /** The CA waiting for its roots to be distributed, and when it will sign. */
  get pending(): { readonly next: MeshCa; readonly switchAt: Date } | undefined {
    const d = this.#distribution;
    return d === undefined ? undefined : { next: d.next, switchAt: new Date(d.switchAt) };
  }

  /**
   * Signs with the CA in use when the call starts; the answer's root bundle is `rootCertPem`
   * (during a distribution, the distributed one).
   */
  async sign(request: SignRequest): Promise<IssuedCertificate> {
    const signedAt = this.#now();
    const issued = await this.#current.ca.sign(request);
    const delay = Math.max(0, refreshPoint(issued.notBefore, issued.notAfter) - signedAt);
    if (this.#longestRefreshDelayMs === undefined || delay > this.#longestRefreshDelayMs) {
      this.#longestRefreshDelayMs = delay;
    }
    // The answer carries the roots istiod publishes (during a distribution, the new ones too).
    const roots = this.rootCertPem;
    if (roots === issued.rootBundlePem) return issued;
    return {
      ...issued,
      rootBundlePem: roots,
      certChain: [issued.leafPem, ...issued.intermediatesPem, roots],
    };
  }

  /**
   * Takes a new CA: at once when its roots are trusted already, else after distributing them
   * (see the file comment). A later change replaces a pending one.
   */
  change(next: MeshCa): CaChangeOutcome {
    const timers = this.#options.timers;
    if (timers === undefined) {
      this.replace(next);
      return { kind: 'switched' };
    }
    const d = this.#distribution;
    const plan = planCaChange({
      trusted: TrustBundle.from(this.#current.rootCertPem),
      nextRoots: TrustBundle.from(next.rootCertPem),
      ...(d === undefined ? {} : { distributing: { roots: d.roots, since: d.since } }),
      longestRefreshDelayMs: this.#longestRefreshDelayMs,
      defaultLifetimeMs: (this.#options.defaultLifetimeSeconds ?? CA_DEFAULTS.workloadCertTtlSeconds) * 1000,
      now: this.#now(),
    });
    if (plan.kind === 'switch') {
      this.replace(next);
      return { kind: 'switched' };
    }
    this.#cancelDistribution();
    const switchAt = plan.since + plan.waitMs;
    const timer = timers.setTimeout(
      () => {
        if (this.#distribution?.next !== next) return;
        this.#options.logger?.info(
          { signer: next.ca.signingCertificate.subject.replaceAll('\n', ', ') },
          'the new roots have reached every workload; the new CA signs from now on',
        );
        this.replace(next);
      },
      Math.max(0, switchAt - this.#now()),
    );
    const previousRoots = this.rootCertPem;
    this.#distribution = { next, roots: plan.roots, since: plan.since, switchAt, timer };
    this.#options.logger?.info(
      {
        addedRoots: plan.added.map(r => r.subject.replaceAll('\n', ', ')),
        roots: plan.roots.size,
        switchAt: new Date(switchAt).toISOString(),
      },
      'the new CA brings roots the workloads do not trust yet: distributing them first, the CA in use keeps signing until every workload has renewed',
    );
    if (previousRoots !== plan.roots.pem) this.#emitRoots();
    return { kind: 'staged', switchAt: new Date(switchAt), addedRoots: plan.added.length };
  }

  /** Makes `next` the CA in use at once and tells every listener (a throwing listener is isolated). */
  replace(next: MeshCa): void {
    const previous = this.#current;
    const previousRoots = this.rootCertPem;
    this.#cancelDistribution();
    this.#current = next;
    for (const listener of [...this.#listeners]) {
      try {
        listener(next, previous);
      } catch (err) {
        this.#options.logger?.error({ err: errorMessage(err) }, 'a CA change listener failed');
      }
    }
    if (previousRoots !== this.rootCertPem) this.#emitRoots();
  }

  /** The signing CA changed. */
  onChange(listener: MeshCaListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** `rootCertPem` changed (a distribution started, or the new CA took over with other roots). */
  onRoots(listener: () => void): () => void {
    this.#rootListeners.add(listener);
    return () => {
      this.#rootListeners.delete(listener);
    };
  }

  /** Stops a pending switch (istiod shutting down). */
  close(): void {
    this.#cancelDistribution();
  }

  #cancelDistribution(): void {
    if (this.#distribution !== undefined) this.#options.timers?.clearTimeout(this.#distribution.timer);
    this.#distribution = undefined;
  }

  #emitRoots(): void {
    for (const listener of [...this.#rootListeners]) {
      try {
        listener();
      } catch (err) {
        this.#options.logger?.error({ err: errorMessage(err) }, 'a root change listener failed');
      }
    }
  }

  #now(): number {
    return this.#options.timers?.now() ?? Date.now();
  }
}
