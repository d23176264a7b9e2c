/**
 * istiod's certificate plumbing while it runs, in one place for the composition root:
 * - which signer the CA service uses (the mesh CA in the holder, or the Kubernetes CSR signer);
 * - istiod's own serving certificate (from Secret `ISTIOD_TLS_SECRET` as istio-csr issues it,
 *   else signed by the mesh CA and renewed at half-life and whenever the CA changes);
 * - the roots published in `istio-ca-root-cert` (several during a migration);
 * - the Secret events of istiod's namespace (`cacerts`, the TLS Secret).
 */
import { X509Certificate } from 'node:crypto';
import { errorMessage } from '@ambient-mesh/errors';
import type { Logger, TimerHandle, Timers } from '@ambient-mesh/runtime';
import { TrustBundle, type CaOptions } from '@ambient-mesh/spiffe-certs';
import type { KubeObject } from '../kube/objects.ts';
import type { CertificateSigner } from './ca-service.ts';
import type { MeshCa } from './ca-bootstrap.ts';
import { CacertsWatch, decodeSecretData, type CacertsOutcome } from './cacerts-watch.ts';
import { MeshCaHolder } from './mesh-ca-holder.ts';

export const SERVING_CERT_TTL_SECONDS = 24 * 60 * 60;

export interface ServingCredentials {
  readonly certPem: string;
  readonly keyPem: string;
}

/** A serving certificate issued outside istiod (istio-csr's `istiod-tls`): `tls.crt`, `tls.key`, `ca.crt`. */
export interface ExternalServingCert extends ServingCredentials {
  readonly caPem: string;
}

/** `tls.crt`/`tls.key`/`ca.crt` of a Secret, checked; a reason string when unusable. */
export function parseServingSecret(data: Readonly<Record<string, string>>): ExternalServingCert | string {
  const certPem = data['tls.crt'] ?? '';
  const keyPem = data['tls.key'] ?? '';
  const caPem = data['ca.crt'] ?? '';
  if (certPem.trim() === '' || keyPem.trim() === '') return 'tls.crt or tls.key is missing';
  try {
    const leaf = new X509Certificate(certPem);
    if (Date.now() > new Date(leaf.validTo).getTime()) return `tls.crt expired at ${leaf.validTo}`;
    if (caPem.trim() !== '') TrustBundle.from(caPem);
  } catch (err) {
    return `unusable certificate: ${errorMessage(err)}`;
  }
  return { certPem, keyPem, caPem };
}

/**
 * The roots to publish. With the CA server on, the mesh CA's roots; with it off and an external
 * serving certificate, only that certificate's CA (istiod's local root signs nothing then). Roots
 * of an external signer (the Kubernetes CSR path) and of the serving Secret are added.
 */
export function publishedRoots(input: {
  readonly caServer: boolean;
  readonly meshRootsPem: string;
  readonly servingCaPem?: string;
  readonly signerRootsPem?: string;
}): string {
  const extra = [input.servingCaPem, input.signerRootsPem].filter(
    (p): p is string => p !== undefined && p.trim() !== '',
  );
  const useMesh = input.caServer || input.servingCaPem === undefined || input.servingCaPem.trim() === '';
  const parts = useMesh ? [input.meshRootsPem, ...extra] : extra;
  let bundle = TrustBundle.from(parts[0] ?? input.meshRootsPem);
  for (const p of parts.slice(1)) bundle = bundle.merge(p);
  return bundle.pem;
}

export interface CaRuntimeOptions {
  readonly meshCa: MeshCa;
  readonly namespace: string;
  readonly caServer: boolean;
  readonly servingDnsNames: readonly string[];
  /** The Secret holding an externally issued serving certificate ('' disables). */
  readonly tlsSecretName: string;
  /** Its data at startup, if it exists. */
  readonly initialTlsSecret?: Readonly<Record<string, string>>;
  /** A signer other than the mesh CA (Kubernetes CSR path), and the roots it chains to. */
  readonly externalSigner?: { readonly signer: CertificateSigner; readonly rootsPem: string };
  readonly caOptions: CaOptions;
  readonly timers: Timers;
  readonly logger: Logger;
  readonly onCacertsOutcome?: (outcome: CacertsOutcome) => void;
}

export class CaRuntime {
  readonly holder: MeshCaHolder;
  readonly signer: CertificateSigner;
  readonly #opts: CaRuntimeOptions;
  readonly #cacerts: CacertsWatch;
  #external: ExternalServingCert | undefined;
  #rotation: TimerHandle | undefined;
  #closed = false;
  readonly #credentialListeners = new Set<(c: ServingCredentials) => void>();
  readonly #rootListeners = new Set<(pem: string) => void>();

  constructor(opts: CaRuntimeOptions) {
    this.#opts = opts;
    this.holder = new MeshCaHolder(opts.meshCa, {
      timers: opts.timers,
      logger: opts.logger,
      ...(opts.caOptions.defaultTtlSeconds === undefined
        ? {}
        : { defaultLifetimeSeconds: opts.caOptions.defaultTtlSeconds }),
    });
    this.signer = opts.externalSigner?.signer ?? this.holder;
    this.#cacerts = new CacertsWatch({
      holder: this.holder,
      namespace: opts.namespace,
      logger: opts.logger,
      caOptions: opts.caOptions,
      ...(opts.meshCa.cacertsFingerprint === undefined
        ? {}
        : { initialFingerprint: opts.meshCa.cacertsFingerprint }),
      ...(opts.onCacertsOutcome === undefined ? {} : { onOutcome: opts.onCacertsOutcome }),
    });
    if (opts.initialTlsSecret !== undefined) this.#acceptTlsSecret(opts.initialTlsSecret);
    // The serving certificate follows the signing CA; the published roots follow the holder's
    // roots, which change first when a new root is distributed before it signs.
    this.holder.onChange(() => {
      if (this.#external === undefined) this.#reissue();
    });
    this.holder.onRoots(() => {
      this.#rootsChanged();
    });
  }

  /** Where the serving certificate comes from now. */
  get servingSource(): 'secret' | 'mesh-ca' {
    return this.#external === undefined ? 'mesh-ca' : 'secret';
  }

  get rootsPem(): string {
    return publishedRoots({
      caServer: this.#opts.caServer,
      meshRootsPem: this.holder.rootCertPem,
      ...(this.#external === undefined ? {} : { servingCaPem: this.#external.caPem }),
      ...(this.#opts.externalSigner === undefined
        ? {}
        : { signerRootsPem: this.#opts.externalSigner.rootsPem }),
    });
  }

  /** The serving credentials to start with; schedules renewal when istiod signs them itself. */
  async initialCredentials(): Promise<ServingCredentials> {
    if (this.#external !== undefined) return this.#external;
    const creds = await this.#issue();
    this.#schedule();
    return creds;
  }

  onCredentials(listener: (c: ServingCredentials) => void): () => void {
    this.#credentialListeners.add(listener);
    return () => this.#credentialListeners.delete(listener);
  }

  onRoots(listener: (pem: string) => void): () => void {
    this.#rootListeners.add(listener);
    return () => this.#rootListeners.delete(listener);
  }

  /** True for the Secrets of istiod's namespace this runtime follows. */
  follows(obj: KubeObject): boolean {
    if (obj.metadata?.namespace !== this.#opts.namespace) return false;
    return this.#cacerts.matches(obj) || this.#isTlsSecret(obj);
  }

  upsertSecret(obj: KubeObject): Promise<unknown> {
    if (this.#cacerts.matches(obj)) return this.#cacerts.upsert(obj);
    if (this.#isTlsSecret(obj)) {
      const before = this.#external;
      this.#acceptTlsSecret(decodeSecretData(obj));
      if (this.#external !== before && this.#external !== undefined) {
        this.#cancel();
        this.#emitCredentials(this.#external);
        this.#rootsChanged();
      }
    }
    return Promise.resolve();
  }

  deleteSecret(obj: KubeObject): Promise<unknown> {
    if (this.#cacerts.matches(obj)) return this.#cacerts.delete();
    if (this.#isTlsSecret(obj) && this.#external !== undefined) {
      this.#opts.logger.warn(
        { secret: this.#opts.tlsSecretName },
        'the serving certificate Secret was deleted; istiod keeps the certificate it has',
      );
    }
    return Promise.resolve();
  }

  close(): void {
    this.#closed = true;
    this.#cancel();
    this.holder.close();
  }

  #isTlsSecret(obj: KubeObject): boolean {
    return this.#opts.tlsSecretName !== '' && obj.metadata?.name === this.#opts.tlsSecretName;
  }

  #acceptTlsSecret(data: Readonly<Record<string, string>>): void {
    const parsed = parseServingSecret(data);
    if (typeof parsed === 'string') {
      this.#opts.logger.error(
        { code: 'ISTIOD_SERVING_SECRET_INVALID', secret: this.#opts.tlsSecretName, err: parsed },
        'ignoring the serving certificate Secret; keeping the serving certificate in use',
      );
      return;
    }
    if (
      this.#external?.certPem === parsed.certPem &&
      this.#external.keyPem === parsed.keyPem &&
      this.#external.caPem === parsed.caPem
    ) {
      return;
    }
    this.#external = parsed;
    this.#opts.logger.info(
      { secret: this.#opts.tlsSecretName },
      'serving with the certificate from the Secret',
    );
  }

  async #issue(): Promise<ServingCredentials> {
    const serving = await this.holder.current.ca.signServingCertificate({
      dnsNames: this.#opts.servingDnsNames,
      ttlSeconds: SERVING_CERT_TTL_SECONDS,
    });
    return { certPem: serving.certChainPem, keyPem: serving.keyPem };
  }

  #reissue(): void {
    this.#cancel();
    this.#issue().then(
      creds => {
        if (this.#closed) return;
        this.#emitCredentials(creds);
        this.#opts.logger.info('rotated the istiod serving certificate');
        this.#schedule();
      },
      (err: unknown) => {
        this.#opts.logger.error({ err: errorMessage(err) }, 'serving certificate rotation failed; retrying');
        this.#schedule();
      },
    );
  }

  /** Renew at half the lifetime. */
  #schedule(): void {
    if (this.#closed) return;
    this.#cancel();
    this.#rotation = this.#opts.timers.setTimeout(
      () => {
        this.#reissue();
      },
      (SERVING_CERT_TTL_SECONDS * 1000) / 2,
    );
  }

  #cancel(): void {
    if (this.#rotation !== undefined) this.#opts.timers.clearTimeout(this.#rotation);
    this.#rotation = undefined;
  }

  #emitCredentials(creds: ServingCredentials): void {
    for (const l of this.#credentialListeners) l(creds);
  }

  #rootsChanged(): void {
    let pem: string;
    try {
      pem = this.rootsPem;
    } catch (err) {
      this.#opts.logger.error({ err: errorMessage(err) }, 'cannot build the published root bundle');
      return;
    }
    for (const l of this.#rootListeners) l(pem);
  }
}
