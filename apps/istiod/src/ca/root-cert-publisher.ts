/**
 * Publishes the mesh roots to every namespace as ConfigMap `istio-ca-root-cert`
 * (key `root-cert.pem`), which ztunnel and workloads mount to trust istiod.
 */
import { errorMessage } from '@ambient-mesh/errors';
import type { Logger } from '@ambient-mesh/runtime';

export const ROOT_CERT_CONFIGMAP = 'istio-ca-root-cert';
export const ROOT_CERT_KEY = 'root-cert.pem';

export interface ConfigMapStore {
  read(namespace: string, name: string): Promise<Record<string, string> | undefined>;
  create(
    namespace: string,
    name: string,
    data: Record<string, string>,
    labels: Record<string, string>,
  ): Promise<void>;
  replace(
    namespace: string,
    name: string,
    data: Record<string, string>,
    labels: Record<string, string>,
  ): Promise<void>;
}

const LABELS = { 'istio.io/config': 'true' };

export class RootCertPublisher {
  readonly #store: ConfigMapStore;
  #rootCertPem: string;
  readonly #logger: Logger;

  constructor(store: ConfigMapStore, rootCertPem: string, logger: Logger) {
    this.#store = store;
    this.#rootCertPem = rootCertPem;
    this.#logger = logger;
  }

  get rootCertPem(): string {
    return this.#rootCertPem;
  }

  /**
   * Changes the roots to publish (a new plug-in CA, or a bundle with several roots during a
   * migration); returns true when they differ, so the caller republishes every namespace.
   */
  setRoots(rootCertPem: string): boolean {
    if (rootCertPem === this.#rootCertPem) return false;
    this.#rootCertPem = rootCertPem;
    return true;
  }

  /** Makes the namespace's ConfigMap hold the current roots. Never throws; returns what it did. */
  async publish(namespace: string): Promise<'created' | 'updated' | 'unchanged' | 'failed'> {
    const rootCertPem = this.#rootCertPem;
    const data = { [ROOT_CERT_KEY]: rootCertPem };
    try {
      const current = await this.#store.read(namespace, ROOT_CERT_CONFIGMAP);
      if (current === undefined) {
        await this.#store.create(namespace, ROOT_CERT_CONFIGMAP, data, LABELS);
        return 'created';
      }
      if (current[ROOT_CERT_KEY] === rootCertPem) return 'unchanged';
      await this.#store.replace(namespace, ROOT_CERT_CONFIGMAP, data, LABELS);
      return 'updated';
    } catch (err) {
      this.#logger.warn(
        { namespace, err: errorMessage(err) },
        `cannot publish ConfigMap ${ROOT_CERT_CONFIGMAP}`,
      );
      return 'failed';
    }
  }
}
