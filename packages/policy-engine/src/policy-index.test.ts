import { describe, expect, it } from 'vitest';
import { PolicyIndex } from './policy-index.ts';
import type { security } from './wire.ts';

const auth = (namespace: string, name: string, scope: security.Scope): security.Authorization => ({
  name,
  namespace,
  scope,
  action: 1,
  rules: [],
});

describe('PolicyIndex', () => {
  it('returns global, own-namespace and named policies; skips unknown names', () => {
    const idx = new PolicyIndex();
    idx.upsert(auth('istio-system', 'g', 0));
    idx.upsert(auth('app', 'n', 1));
    idx.upsert(auth('other', 'n', 1));
    idx.upsert(auth('app', 'sel', 2), { app: 'a' });
    const r = idx.policiesForWorkload({
      namespace: 'app',
      authorizationPolicies: ['app/sel', 'app/missing', 'app/n'],
    });
    expect(r.policies.map(p => `${p.namespace}/${p.name}`)).toEqual(['istio-system/g', 'app/n', 'app/sel']);
    expect(r.unknown).toEqual(['app/missing']);
  });

  it('lists each policy once when the workload names GLOBAL, own-namespace or repeated policies', () => {
    const idx = new PolicyIndex();
    idx.upsert(auth('istio-system', 'g', 0));
    idx.upsert(auth('app', 'n', 1));
    idx.upsert(auth('app', 'sel', 2), { app: 'a' });
    const r = idx.policiesForWorkload({
      namespace: 'app',
      authorizationPolicies: ['istio-system/g', 'app/sel', 'app/n', 'app/sel', 'app/gone', 'app/gone'],
    });
    expect(r.policies.map(p => `${p.namespace}/${p.name}`)).toEqual(['istio-system/g', 'app/n', 'app/sel']);
    expect(r.unknown).toEqual(['app/gone']);
  });

  it('finds selector policies by labels in the workload and root namespaces only', () => {
    const idx = new PolicyIndex();
    idx.upsert(auth('app', 'by-app', 2), { app: 'a' });
    idx.upsert(auth('app', 'by-two', 2), { app: 'a', tier: 'db' });
    idx.upsert(auth('app', 'all', 2), {});
    idx.upsert(auth('istio-system', 'root', 2), { app: 'a' });
    idx.upsert(auth('other', 'elsewhere', 2), { app: 'a' });
    expect(idx.selectorPolicyKeys({ namespace: 'app', labels: { app: 'a' } })).toEqual([
      'app/all',
      'app/by-app',
      'istio-system/root',
    ]);
    expect(idx.selectorPolicyKeys({ namespace: 'app', labels: { app: 'a', tier: 'db' } })).toContain(
      'app/by-two',
    );
  });

  it('replaces on upsert and forgets on delete', () => {
    const idx = new PolicyIndex();
    idx.upsert(auth('app', 'p', 1));
    idx.upsert(auth('app', 'p', 2), { app: 'a' });
    expect(idx.size).toBe(1);
    expect(idx.policiesForWorkload({ namespace: 'app' }).policies).toEqual([]);
    expect(idx.selectorPolicyKeys({ namespace: 'app', labels: { app: 'a' } })).toEqual(['app/p']);
    expect(idx.delete('app/p')).toBe(true);
    expect(idx.delete('app/p')).toBe(false);
    expect(idx.selectorPolicyKeys({ namespace: 'app', labels: { app: 'a' } })).toEqual([]);
    expect(idx.get('app/p')).toBeUndefined();
  });

  it('answers for one workload among 10,000 policies by looking only at its buckets', () => {
    const idx = new PolicyIndex();
    for (let i = 0; i < 10_000; i++) idx.upsert(auth(`ns${i % 100}`, `p${i}`, 2), { app: `app${i}` });
    expect(idx.size).toBe(10_000);
    expect(idx.selectorPolicyKeys({ namespace: 'ns7', labels: { app: 'app507' } })).toEqual(['ns7/p507']);
    expect(idx.selectorPolicyKeys({ namespace: 'ns8', labels: { app: 'app507' } })).toEqual([]);
  });
});
