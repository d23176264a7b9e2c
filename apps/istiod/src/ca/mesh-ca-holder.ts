/**
 * The CA istiod signs with right now. Single writer (`replace`, called by the cacerts watch);
 * readers (the CA service, the serving certificate, the root publisher) ask `current` on every
 * use or subscribe to changes, so a replaced intermediate takes effect without a restart.
 */
import type { IssuedCertificate, SignRequest } from '@ambient-mesh/spiffe-certs';
import type { MeshCa } from './ca-bootstrap.ts';

export type MeshCaListener = (next: MeshCa, previous: MeshCa) => void;

export class MeshCaHolder {
  #current: MeshCa;
  readonly #listeners = new Set<MeshCaListener>();

  constructor(initial: MeshCa) {
    this.#current = initial;
  }

  get current(): MeshCa {
    return this.#current;
  }

  /** Signs with the CA in use when the call starts. */
  sign(request: SignRequest): Promise<IssuedCertificate> {
    return this.#current.ca.sign(request);
  }

  /** Makes `next` the CA in use and tells every listener (a throwing listener is isolated). */
  replace(next: MeshCa): void {
    const previous = this.#current;
    this.#current = next;
    for (const listener of [...this.#listeners]) {
      try {
        listener(next, previous);
      } catch {
        // Listeners log their own failures; one must not stop the others.
      }
    }
  }

  onChange(listener: MeshCaListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }
}
