/** Sail resources for the operator's tests against the fake apiserver. */
import type { FakeApiServer } from '@ambient-mesh/kube/testing';

export const ISTIOS = '/apis/sailoperator.io/v1/istios';

/**
 * Stores the `Istio` `default` (uid `istio-uid`, generation 1): profile ambient in istio-system at
 * v1.27.9, with `spec` added or overriding.
 */
export function putIstio(server: FakeApiServer, spec: Record<string, unknown> = {}): void {
  server.put(ISTIOS, {
    apiVersion: 'sailoperator.io/v1',
    kind: 'Istio',
    metadata: { name: 'default', uid: 'istio-uid', generation: 1 },
    spec: { namespace: 'istio-system', version: 'v1.27.9', profile: 'ambient', ...spec },
  });
}
