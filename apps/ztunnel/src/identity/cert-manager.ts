/**
 * Workload certificates of the node: one per identity, kept by spiffe-certs' `CertificateCache`
 * (refresh at half-life, backoff on failure, old certificate kept until it expires).
 *
 * The manager prefetches the identity of every in-mesh (HBONE) workload on this node and forgets an
 * identity when no local workload uses it any more. It also renders the `certificates` section
 * of `/config_dump`.
 */
import { X509Certificate } from 'node:crypto';
import { CertificateCache, SpiffeId } from '@ambient-mesh/spiffe-certs';
import type { CertificateFetcher, Clock, WorkloadCertificate } from '@ambient-mesh/spiffe-certs';
import { errorMessage } from '@ambient-mesh/errors';
import type { Logger } from '@ambient-mesh/runtime';
import type { ProxyStateReader } from '../state/proxy-state.ts';

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
 * How the CA is doing for this node: identities whose last fetch failed, split into those still
 * served with the certificate they have and those with none (their workloads cannot use mTLS).
 */
export interface CertificateHealth {
  readonly failingWithCertificate: number;
  readonly failingWithoutCertificate: number;
  /** The last fetch error, for logs and readiness messages. */
  readonly lastError: string | undefined;
}

export interface CertManagerOptions {
  readonly fetch: CertificateFetcher;
  /** Every fetch outcome and health change (metrics, readiness). */
  readonly observer?: {
    readonly fetched?: (result: 'success' | 'failure') => void;
    readonly health?: (health: CertificateHealth) => void;
  };
  readonly state: ProxyStateReader;
  readonly nodeName: string;
  readonly logger: Logger;
  readonly clock?: Clock;
}

function dumpCert(pem: string): CertDumpEntry {
  const cert = new X509Certificate(pem);
  return {
    pem,
    serialNumber: cert.serialNumber,
    validFrom: new Date(cert.validFrom).toISOString(),
    expirationTime: new Date(cert.validTo).toISOString(),
  };
}

export class CertManager {
  readonly cache: CertificateCache;
  readonly #options: CertManagerOptions;
  readonly #unsubscribe: () => void;
  /** Identity URI → whether it still has a usable certificate, for identities whose last fetch failed. */
  readonly #failing = new Map<string, boolean>();
  #lastError: string | undefined;

  constructor(options: CertManagerOptions) {
    this.#options = options;
    this.cache = new CertificateCache(
      options.clock === undefined ? { fetch: options.fetch } : { fetch: options.fetch, clock: options.clock },
    );
    // Every pod proxy listens for its identity's renewals: one listener per enrolled pod.
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
    this.#unsubscribe = options.state.subscribe(() => {
      this.#reconcile();
    });
    this.#reconcile();
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
  get(identity: string): Promise<WorkloadCertificate> {
    return this.cache.get(SpiffeId.parse(identity));
  }

  #reconcile(): void {
    const wanted = new Map<string, SpiffeId>();
    for (const workload of this.#options.state.workloadsOnNode(this.#options.nodeName)) {
      // Only workloads in the mesh (HBONE) get certificates, as upstream: not istiod, the CNI
      // agent or plain pods, which istiod sends with protocol NONE.
      if (workload.tunnelProtocol !== 'HBONE') continue;
      if (!SpiffeId.isValid(workload.identity)) continue;
      wanted.set(workload.identity, SpiffeId.parse(workload.identity));
    }
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
    this.#unsubscribe();
    this.cache.close();
  }
}
