/**
 * The CRD types of @ambient-mesh/mesh-api are the validators' input shape, and the domain types
 * they return are still CRD objects: a validated spec can be written back as it is. The
 * `expectTypeOf` assertions are checked by `tsc` (the package's typecheck).
 */
import type * as crd from '@ambient-mesh/mesh-api';
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { AuthorizationPolicySpec, PeerAuthenticationSpec, PolicyRule } from './policy-types.ts';
import { AuthorizationAction, MtlsMode } from './policy-types.ts';
import { validateAuthorizationPolicy } from './validate-authorization-policy.ts';
import { validatePeerAuthentication } from './validate-peer-authentication.ts';

describe('CRD types as the validators’ input', () => {
  it('validated specs are CRD specs; the enums are the CRD’s', () => {
    expectTypeOf<AuthorizationPolicySpec>().toExtend<crd.AuthorizationPolicySpec>();
    expectTypeOf<PolicyRule>().toExtend<crd.PolicyRule>();
    expectTypeOf<PeerAuthenticationSpec>().toEqualTypeOf<crd.PeerAuthenticationSpec>();
    expectTypeOf<AuthorizationAction>().toEqualTypeOf<crd.AuthorizationAction>();
    expectTypeOf<MtlsMode>().toEqualTypeOf<crd.MtlsMode>();
    expect(Object.values(AuthorizationAction)).toEqual(['ALLOW', 'DENY', 'AUDIT', 'CUSTOM']);
    expect(Object.values(MtlsMode)).toEqual(['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT']);
  });

  it('accepts an AuthorizationPolicy as client-node reads it (creationTimestamp a Date)', () => {
    const created = new Date('2026-01-02T03:04:05Z');
    const input: crd.AuthorizationPolicy = {
      apiVersion: 'security.istio.io/v1beta1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'allow-sleep', namespace: 'app', creationTimestamp: created, generation: 2 },
      spec: {
        action: 'ALLOW',
        rules: [{ from: [{ source: { principals: ['cluster.local/ns/app/sa/sleep'] } }] }],
      },
    };
    const r = validateAuthorizationPolicy(input);
    expect(r).toEqual({
      ok: true,
      value: {
        apiVersion: 'security.istio.io/v1beta1',
        kind: 'AuthorizationPolicy',
        metadata: {
          name: 'allow-sleep',
          namespace: 'app',
          creationTimestamp: '2026-01-02T03:04:05.000Z',
          generation: 2,
        },
        spec: input.spec,
      },
    });
  });

  it('still reports what the CRD type allows but the domain needs: a source in every from', () => {
    const input: crd.PeerAuthentication = { metadata: { name: 'p' }, spec: { mtls: { mode: 'STRICT' } } };
    expect(validatePeerAuthentication(input)).toEqual({
      ok: false,
      errors: [{ path: 'metadata.namespace', message: 'is required' }],
    });
    const policy: crd.AuthorizationPolicy = {
      metadata: { name: 'p', namespace: 'app' },
      spec: { rules: [{ from: [{}] }] },
    };
    const r = validateAuthorizationPolicy(policy);
    expect(r.ok).toBe(false);
    expect(r.ok ? [] : r.errors.map(e => e.path)).toEqual(['spec.rules[0].from[0].source']);
  });
});
