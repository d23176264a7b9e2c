/**
 * Follows Secret `cacerts` in istiod's namespace and swaps the plug-in CA without a restart.
 *
 * Every add/update of the Secret is validated (`validateCacerts`); a valid one goes to the holder,
 * which signs with it at once or, when it brings a root the workloads do not trust yet, after
 * distributing that root (`MeshCaHolder.change`); an invalid one is refused with its `ISTIOD_CACERTS_*` code and the CA in use stays.
 * A deleted Secret also keeps the CA in use (istiod never falls back to a new self-signed root
 * while running). Events are applied one at a time, in order.
 */
import { errorMessage } from '@ambient-mesh/errors';
import type { Logger } from '@ambient-mesh/runtime';
import type { CaOptions } from '@ambient-mesh/spiffe-certs';
import type { KubeObject } from '../kube/objects.ts';
import { CACERTS_SECRET_NAME, CaSources } from './ca-bootstrap.ts';
import { cacertsFingerprint, validateCacerts } from './cacerts.ts';
import type { MeshCaHolder } from './mesh-ca-holder.ts';

export type CacertsOutcome =
  | { readonly kind: 'ignored'; readonly reason: string }
  | { readonly kind: 'unchanged' }
  | { readonly kind: 'replaced' }
  /** A new root: distributed first, the new CA signs from `switchAt` (see `MeshCaHolder.change`). */
  | { readonly kind: 'staged'; readonly switchAt: string }
  | { readonly kind: 'refused'; readonly code: string; readonly message: string }
  | { readonly kind: 'kept-after-delete' };

export interface CacertsWatchOptions {
  readonly holder: MeshCaHolder;
  readonly namespace: string;
  readonly logger: Logger;
  readonly caOptions: CaOptions;
  /** Fingerprint of the cacerts data loaded at startup, if the CA came from the Secret. */
  readonly initialFingerprint?: string;
  readonly now?: () => number;
  /** Called with every outcome (metrics). */
  readonly onOutcome?: (outcome: CacertsOutcome) => void;
}

interface SecretLike extends KubeObject {
  readonly data?: Readonly<Record<string, string>>;
}

/** Base64 `data` of a Secret object, decoded. */
export function decodeSecretData(secret: KubeObject): Record<string, string> {
  const data = (secret as SecretLike).data ?? {};
  return Object.fromEntries(
    Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
  );
}

export class CacertsWatch {
  readonly #opts: CacertsWatchOptions;
  #fingerprint: string | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(opts: CacertsWatchOptions) {
    this.#opts = opts;
    this.#fingerprint = opts.initialFingerprint;
  }

  /** True for the one Secret this watch follows. */
  matches(obj: KubeObject): boolean {
    return obj.metadata?.name === CACERTS_SECRET_NAME && obj.metadata.namespace === this.#opts.namespace;
  }

  /** An add or update of the Secret. */
  upsert(secret: KubeObject): Promise<CacertsOutcome> {
    return this.#enqueue(() => this.#apply(decodeSecretData(secret)));
  }

  /** The Secret was deleted: the CA in use stays. */
  delete(): Promise<CacertsOutcome> {
    return this.#enqueue(() => {
      if (this.#fingerprint === undefined) return Promise.resolve({ kind: 'unchanged' } as const);
      this.#opts.logger.warn(
        `Secret ${CACERTS_SECRET_NAME} was deleted; istiod keeps signing with the plug-in CA it has until restarted`,
      );
      return Promise.resolve({ kind: 'kept-after-delete' } as const);
    });
  }

  #enqueue(step: () => Promise<CacertsOutcome>): Promise<CacertsOutcome> {
    const run = this.#queue.then(step, step).then(outcome => {
      this.#opts.onOutcome?.(outcome);
      return outcome;
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #apply(files: Record<string, string>): Promise<CacertsOutcome> {
    const { holder, logger } = this.#opts;
    if (holder.current.source === CaSources.PLUGGED_DIRECTORY) {
      return { kind: 'ignored', reason: 'the CA comes from the mounted cacerts directory' };
    }
    const fingerprint = cacertsFingerprint(files);
    if (fingerprint === this.#fingerprint) return { kind: 'unchanged' };
    const result = await validateCacerts(files, {
      caOptions: this.#opts.caOptions,
      ...(this.#opts.now === undefined ? {} : { now: this.#opts.now }),
    });
    if (!result.ok) {
      // Remember it, so a resync of the same bad Secret is not logged again.
      this.#fingerprint = fingerprint;
      logger.error(
        { code: result.error.code, err: errorMessage(result.error) },
        `refused the new Secret ${CACERTS_SECRET_NAME}; keeping the CA in use`,
      );
      return { kind: 'refused', code: result.error.code, message: result.error.message };
    }
    this.#fingerprint = fingerprint;
    const previous = holder.current;
    const change = holder.change({
      ca: result.ca,
      rootCertPem: result.ca.trustBundle.pem,
      source: CaSources.PLUGGED_SECRET,
    });
    const fields = {
      previousSource: previous.source,
      signer: result.ca.signingCertificate.subject.replaceAll('\n', ', '),
      roots: result.ca.trustBundle.size,
    };
    if (change.kind === 'staged') {
      logger.info(
        { ...fields, switchAt: change.switchAt.toISOString(), addedRoots: change.addedRoots },
        `loaded the plug-in CA from the updated Secret ${CACERTS_SECRET_NAME}; it signs once its new roots are distributed`,
      );
      return { kind: 'staged', switchAt: change.switchAt.toISOString() };
    }
    logger.info(fields, `loaded the plug-in CA from the updated Secret ${CACERTS_SECRET_NAME}`);
    return { kind: 'replaced' };
  }
}
