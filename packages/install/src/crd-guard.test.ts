import { describe, expect, it } from 'vitest';
import { crdApplyDecision, withGatewayApiCrds } from './crd-guard.ts';
import type { ManifestObject } from './manifests.ts';

function crd(name: string, group: string, versions: string[], bundle?: string): ManifestObject {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name,
      ...(bundle === undefined
        ? {}
        : { annotations: { 'gateway.networking.k8s.io/bundle-version': bundle } }),
    },
    spec: { group, versions: versions.map(v => ({ name: v })) },
  };
}

describe('crdApplyDecision', () => {
  const next = crd(
    'gateways.gateway.networking.k8s.io',
    'gateway.networking.k8s.io',
    ['v1', 'v1beta1'],
    'v1.3.0',
  );

  it('applies a CRD that is not installed', () => {
    expect(crdApplyDecision(next, undefined)).toEqual({ apply: true });
  });

  it('keeps an installed CRD whose stored versions the manifest lacks (the apiserver would answer 422)', () => {
    const d = crdApplyDecision(next, { status: { storedVersions: ['v1', 'v1alpha2'] } });
    expect(d).toEqual({ apply: false, reason: expect.stringContaining('v1alpha2') as string });
  });

  it('keeps an installed newer Gateway API bundle', () => {
    const live = { metadata: { annotations: { 'gateway.networking.k8s.io/bundle-version': 'v1.4.1' } } };
    expect(crdApplyDecision(next, live).apply).toBe(false);
  });

  it('applies over an older or equal bundle with compatible stored versions', () => {
    const live = {
      metadata: { annotations: { 'gateway.networking.k8s.io/bundle-version': 'v1.2.0' } },
      status: { storedVersions: ['v1'] },
    };
    expect(crdApplyDecision(next, live)).toEqual({ apply: true });
    expect(
      crdApplyDecision(next, {
        ...live,
        metadata: { annotations: { 'gateway.networking.k8s.io/bundle-version': 'v1.3.0' } },
      }),
    ).toEqual({ apply: true });
  });
});

describe('withGatewayApiCrds', () => {
  const istio = crd('authorizationpolicies.security.istio.io', 'security.istio.io', ['v1']);
  const ours = crd('gateways.gateway.networking.k8s.io', 'gateway.networking.k8s.io', ['v1'], 'v1.3.0');
  const upstream = [
    crd('gateways.gateway.networking.k8s.io', 'gateway.networking.k8s.io', ['v1'], 'v1.4.1'),
    crd('httproutes.gateway.networking.k8s.io', 'gateway.networking.k8s.io', ['v1'], 'v1.4.1'),
  ];

  it('keeps the repository CRDs when no bundle is given', () => {
    expect(withGatewayApiCrds([istio, ours], undefined)).toEqual([istio, ours]);
  });

  it('replaces the repository Gateway API CRDs by the bundle', () => {
    expect(withGatewayApiCrds([istio, ours], upstream)).toEqual([istio, ...upstream]);
  });
});
