import { describe, expect, it } from 'vitest';
import { servingDnsNames } from './ca-material.ts';

describe('servingDnsNames', () => {
  it('the default revision serves as istiod.<ns>.svc and its forms, plus custom hosts', () => {
    expect(servingDnsNames('istio-system', 'cluster.local', ['istiod.example.com'])).toEqual([
      'istiod.istio-system.svc',
      'istiod.istio-system.svc.cluster.local',
      'istiod.istio-system',
      'istiod',
      'istiod.example.com',
    ]);
  });

  it('a revision also serves as istiod-<revision> (its own Service), besides istiod (a tag’s)', () => {
    const names = servingDnsNames('istio-system', 'cluster.local', [], 'default-v1-27-9');
    expect(names).toContain('istiod.istio-system.svc');
    expect(names).toContain('istiod-default-v1-27-9.istio-system.svc');
    expect(names).toContain('istiod-default-v1-27-9.istio-system.svc.cluster.local');
  });
});
