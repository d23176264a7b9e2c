/**
 * A proxy's workload certificates: the identities it wants, each kept fresh by a
 * {@link CertificateCache} (refresh at half-life, backoff on failure, old certificate kept until it
 * expires), with structured logs of every outcome, the CA's health (identities whose last fetch
 * failed, with or without a certificate still in use) and the `certificates` section of a config
 * dump. ztunnel keeps one per node (the identities of its local workloads); the waypoint one for
 * its own identity.
 */
import { X509Certificate } from 'node:crypto';
import { errorMessage } from '@ambient-mesh/errors';
import type { Logger } from '@ambient-mesh/runtime';
import { CertificateCache } from './certificate-cache.ts';
import type { BackoffOptions, CertificateCacheOptions, CertificateFetcher } from './certificate-cache.ts';
import type { Clock } from './clock.ts';
import { parseCertificates, splitPemCertificates } from './pem.ts';
import { TrustBundle } from './trust-bundle.ts';
import { SpiffeId } from './spiffe-id.ts';
import type { WorkloadCertificate } from './workload-certificate.ts';

export interface CertDumpEntry {
  readonly pem: string;
  readonly serialNumber: string;
  readonly validFrom: string;
  readonly expirationTime: string;
}

export interface CertificateDump {
  readonly identity: string;
  readonly state: 'Available' | 'Initializing' | 'Unavailable';
  readonly certChain: readonly CertDumpEntry[];
  readonly rootCerts: readonly CertDumpEntry[];
}

/**
 * How the CA is doing: identities whose last fetch failed, split into those still served with
 * the certificate they have and those with none (they cannot use mTLS).
 */
export interface CertificateHealth {
  readonly failingWithCertificate: number;
  readonly failingWithoutCertificate: number;
  /** The last fetch error, for logs and readiness messages. */
  readonly lastError: string | undefined;
}

export interface CertificateManagerOptions {
  readonly fetch: CertificateFetcher;
  /** Every fetch outcome and health change (metrics, readiness). */
  readonly observer?: {
    readonly fetched?: (result: 'success' | 'failure') => void;
    readonly health?: (health: CertificateHealth) => void;
  };
  readonly logger: Logger;
  readonly clock?: Clock;
  readonly backoff?: Partial<BackoffOptions>;
  readonly minRefreshDelayMs?: number;
}

/** A new certificate of an identity: a renewal, or a new one after the previous one expired. */
export type CertificateListener = (certificate: WorkloadCertificate) => void;

function dumpCert(pem: string): CertDumpEntry {
  const cert = new X509Certificate(pem);
  return {
    pem,
    serialNumber: cert.serialNumber,
    validFrom: new Date(cert.validFrom).toISOString(),
    expirationTime: new Date(cert.validTo).toISOString(),
  };
}

function pemList(input: string | readonly string[]): string[] {
  const list = typeof input === 'string' ? [input] : input;
  return list.flatMap(pem => splitPemCertificates(pem));
}

/**
 * The dump of a certificate held outside a manager (e.g. mounted files): its chain and roots as
 * PEM text. Throws `InvalidCertificateError` when one is unreadable.
 */
export function certificateDump(
  identity: string,
  certChain: string | readonly string[],
  roots: TrustBundle | string | readonly string[],
): CertificateDump {
  const rootPems = roots instanceof TrustBundle ? roots.roots.map(c => c.toString()) : pemList(roots);
  return {
    identity,
    state: 'Available',
    certChain: parseCertificates(pemList(certChain)).map(c => dumpCert(c.toString())),
    rootCerts: parseCertificates(rootPems).map(c => dumpCert(c.toString())),
  };
}

export class CertificateManager {
  readonly cache: CertificateCache;
  readonly #options: CertificateManagerOptions;
  /** Identity URI → whether it still has a usable certificate, for identities whose last fetch failed. */
  readonly #failing = new Map<string, boolean>();
  #lastError: string | undefined;

  constructor(options: CertificateManagerOptions) {
    this.#options = options;
    const cacheOptions: CertificateCacheOptions = {
      fetch: options.fetch,
      ...(options.clock === undefined ? {} : { clock: options.clock }),
      ...(options.backoff === undefined ? {} : { backoff: options.backoff }),
      ...(options.minRefreshDelayMs === undefined ? {} : { minRefreshDelayMs: options.minRefreshDelayMs }),
    };
    this.cache = new CertificateCache(cacheOptions);
    // Every proxy (one per pod in ztunnel) listens for its identity's renewals.
    this.cache.setMaxListeners(0);
    const log = options.logger;
    this.cache.on('issued', ({ identity, certificate }) => {
      this.#recovered(identity.uri);
      log.info({ identity: identity.uri, expires: certificate.notAfter.toISOString() }, 'certificate issued');
    });
    this.cache.on('renewed', ({ identity, certificate }) => {
      this.#recovered(identity.uri);
      log.info(
        { identity: identity.uri, expires: certificate.notAfter.toISOString() },
        'certificate renewed',
      );
    });
    this.cache.on('renewal-failed', ({ identity, error, retryInMs, current }) => {
      const cause = (error as { cause?: unknown }).cause;
      this.#lastError =
        cause === undefined ? errorMessage(error) : `${errorMessage(error)} (${errorMessage(cause)})`;
      this.#failing.set(identity.uri, current !== undefined);
      this.#options.observer?.fetched?.('failure');
      this.#reportHealth();
      log.warn(
        { identity: identity.uri, error: errorMessage(error), retryInMs, keptCurrent: current !== undefined },
        'certificate fetch failed',
      );
    });
    this.cache.on('expired', ({ identity }) => {
      if (this.#failing.has(identity.uri)) {
        this.#failing.set(identity.uri, false);
        this.#reportHealth();
      }
      log.error({ identity: identity.uri }, 'certificate expired before it could be renewed');
    });
  }

  get health(): CertificateHealth {
    let withCert = 0;
    let without = 0;
    for (const has of this.#failing.values()) {
      if (has) withCert++;
      else without++;
    }
    return {
      failingWithCertificate: withCert,
      failingWithoutCertificate: without,
      lastError: this.#lastError,
    };
  }

  #recovered(uri: string): void {
    this.#options.observer?.fetched?.('success');
    if (this.#failing.delete(uri)) this.#reportHealth();
  }

  #reportHealth(): void {
    this.#options.observer?.health?.(this.health);
  }

  /** The certificate for `identity`, fetching it if needed. */
  get(identity: string | SpiffeId): Promise<WorkloadCertificate> {
    if (typeof identity === 'string') {
      // The common case, once per connection: a valid certificate is held, and the text need
      // not be parsed to find it (a held one was parsed when it was first asked for).
      const current = this.cache.peekUri(identity);
      if (current !== undefined) return Promise.resolve(current);
      return this.cache.get(SpiffeId.parse(identity));
    }
    return this.cache.get(identity);
  }

  /** The valid certificate in use for `identity`, if any (no fetch). */
  peek(identity: string | SpiffeId): WorkloadCertificate | undefined {
    return this.cache.peek(typeof identity === 'string' ? SpiffeId.parse(identity) : identity);
  }

  /**
   * Keeps exactly `identities`: each new one is fetched now (and then renewed), each one held
   * but not wanted any more is forgotten.
   */
  want(identities: Iterable<SpiffeId>): void {
    const wanted = new Map<string, SpiffeId>();
    for (const identity of identities) wanted.set(identity.uri, identity);
    const held = new Set<string>();
    for (const identity of this.cache.identities()) {
      held.add(identity.uri);
      if (!wanted.has(identity.uri)) {
        this.cache.forget(identity);
        if (this.#failing.delete(identity.uri)) this.#reportHealth();
      }
    }
    for (const [uri, identity] of wanted) if (!held.has(uri)) this.cache.prefetch(identity);
  }

  /**
   * Calls `listener` with each new certificate of `identity` (a renewal, or a new one after the
   * previous one expired: either must be presented from then on); returns the unsubscribe function.
   */
  onCertificate(identity: string | SpiffeId, listener: CertificateListener): () => void {
    const uri = typeof identity === 'string' ? identity : identity.uri;
    const forward = (event: { identity: SpiffeId; certificate: WorkloadCertificate }): void => {
      if (event.identity.uri === uri) listener(event.certificate);
    };
    this.cache.on('renewed', forward);
    this.cache.on('issued', forward);
    return () => {
      this.cache.off('renewed', forward);
      this.cache.off('issued', forward);
    };
  }

  dump(): CertificateDump[] {
    return this.cache.identities().map(identity => {
      const current = this.cache.peek(identity);
      if (current === undefined)
        return { identity: identity.uri, state: 'Initializing', certChain: [], rootCerts: [] };
      return {
        identity: identity.uri,
        state: 'Available',
        certChain: current.certChain.map(dumpCert),
        rootCerts: current.roots.roots.map(c => dumpCert(c.toString())),
      };
    });
  }

  close(): void {
    this.cache.close();
  }
}
