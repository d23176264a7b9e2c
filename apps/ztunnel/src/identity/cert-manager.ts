/**
 * Workload certificates of the node: one per identity, kept by spiffe-certs' `CertificateManager`
 * (refresh at half-life, backoff on failure, old certificate kept until it expires, logs, health
 * and the `certificates` section of `/config_dump`).
 *
 * This manager prefetches the identity of every in-mesh (HBONE) workload on this node and forgets
 * an identity when no local workload uses it any more.
 */
import { CertificateManager, SpiffeId } from '@ambient-mesh/spiffe-certs';
import type { CertificateManagerOptions } from '@ambient-mesh/spiffe-certs';
import type { ProxyStateReader } from '../state/proxy-state.ts';

export type { CertDumpEntry, CertificateDump, CertificateHealth } from '@ambient-mesh/spiffe-certs';

export interface CertManagerOptions extends CertificateManagerOptions {
  readonly state: ProxyStateReader;
  readonly nodeName: string;
}

export class CertManager extends CertificateManager {
  readonly #options: CertManagerOptions;
  readonly #unsubscribe: () => void;

  constructor(options: CertManagerOptions) {
    super(options);
    this.#options = options;
    this.#unsubscribe = options.state.subscribe(() => {
      this.#reconcile();
    });
    this.#reconcile();
  }

  #reconcile(): void {
    const wanted: SpiffeId[] = [];
    for (const workload of this.#options.state.workloadsOnNode(this.#options.nodeName)) {
      // Only workloads in the mesh (HBONE) get certificates, as upstream: not istiod, the CNI
      // agent or plain pods, which istiod sends with protocol NONE.
      if (workload.tunnelProtocol !== 'HBONE') continue;
      if (!SpiffeId.isValid(workload.identity)) continue;
      wanted.push(SpiffeId.parse(workload.identity));
    }
    this.want(wanted);
  }

  override close(): void {
    this.#unsubscribe();
    super.close();
  }
}
