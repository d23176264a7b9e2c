import { X509Certificate } from 'node:crypto';
import { createTestCa, issueRawCert } from '@ambient-mesh/spiffe-certs/testing';
import { describe, expect, it } from 'vitest';
import { presentsExpectedIdentity } from './identity.ts';

describe('presentsExpectedIdentity', () => {
  it('matches exact IDs, and any ID of a trust domain for a spiffe://<td>/* entry', async () => {
    const ca = await createTestCa({ trustDomain: 'cluster.local' });
    const creds = await issueRawCert(ca, 'spiffe://cluster.local/ns/default/sa/reviews');
    const leaf = new X509Certificate(creds.certChain[0]!).raw;
    expect(presentsExpectedIdentity(leaf, ['spiffe://cluster.local/ns/default/sa/reviews'])).toBe(true);
    expect(presentsExpectedIdentity(leaf, ['spiffe://cluster.local/ns/default/sa/other'])).toBe(false);
    expect(presentsExpectedIdentity(leaf, ['spiffe://cluster.local/*'])).toBe(true);
    expect(presentsExpectedIdentity(leaf, ['spiffe://other.domain/*'])).toBe(false);
    expect(presentsExpectedIdentity(leaf, ['spiffe://cluster.local/ns/default/sa/*'])).toBe(true);
    expect(presentsExpectedIdentity(leaf, ['spiffe://cluster.local/ns/prod/*'])).toBe(false);
  });
});
