import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeApiServer } from '@ambient-mesh/kube/testing';
import { kubeConfigMapStore, kubeSecretStore, kubeStatusPatcher } from './kube-api.ts';

const POLICIES = '/apis/security.istio.io/v1/authorizationpolicies';

describe('Kubernetes adapters on an apiserver on loopback', () => {
  let server: FakeApiServer;

  beforeEach(async () => {
    server = await FakeApiServer.start();
  });

  afterEach(async () => {
    await server.close();
  });

  it("writes ZtunnelAccepted into a policy's status and keeps another controller's condition", async () => {
    const theirs = { type: 'WaypointBound', status: 'True', reason: 'Bound', message: 'bound' };
    server.put(POLICIES, {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'p', namespace: 'apps' },
      spec: {},
      status: {
        conditions: [theirs, { type: 'ZtunnelAccepted', status: 'False', reason: 'Invalid', message: 'x' }],
      },
    });
    const ours = {
      type: 'ZtunnelAccepted',
      status: 'True',
      reason: 'Accepted',
      message: 'ok',
      observedGeneration: 1,
    };
    await kubeStatusPatcher(server.kubeConfig())('authorizationpolicies', 'apps', 'p', {
      conditions: [ours],
    });
    expect(server.get(POLICIES, 'p', 'apps')?.status).toEqual({ conditions: [theirs, ours] });
    expect(server.requests.filter(r => r.method === 'PATCH').map(r => r.path)).toEqual([
      '/apis/security.istio.io/v1/namespaces/apps/authorizationpolicies/p/status',
    ]);
  });

  it('creates a secret once and reads it back decoded; a missing ConfigMap reads as undefined', async () => {
    const secrets = kubeSecretStore(server.kubeConfig());
    expect(await secrets.read('istio-system', 'cacerts')).toBeUndefined();
    expect(await secrets.create('istio-system', 'cacerts', 'Opaque', { 'ca.crt': 'PEM' })).toBe(true);
    expect(await secrets.create('istio-system', 'cacerts', 'Opaque', { 'ca.crt': 'other' })).toBe(false);
    // The fake keeps stringData as written; a real apiserver would turn it into base64 data.
    const stored = server.get('/api/v1/secrets', 'cacerts', 'istio-system');
    expect(stored?.stringData).toEqual({ 'ca.crt': 'PEM' });
    const maps = kubeConfigMapStore(server.kubeConfig());
    expect(await maps.read('apps', 'istio-ca-root-cert')).toBeUndefined();
  });
});
