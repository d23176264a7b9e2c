import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidSpiffeIdError, SpiffeId } from './index.ts';

describe('SpiffeId', () => {
  it('parses and formats spiffe://<td>/ns/<ns>/sa/<sa>', () => {
    const id = SpiffeId.parse('spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews');
    expect(id).toMatchObject({
      trustDomain: 'cluster.local',
      namespace: 'bookinfo',
      serviceAccount: 'bookinfo-reviews',
    });
    expect(id.toString()).toBe('spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews');
    expect(SpiffeId.of(id).equals(id)).toBe(true);
    expect(JSON.stringify({ id })).toBe('{"id":"spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews"}');
  });

  it.each([
    ['no scheme', 'cluster.local/ns/a/sa/b'],
    ['other scheme', 'https://cluster.local/ns/a/sa/b'],
    ['uppercase scheme', 'SPIFFE://cluster.local/ns/a/sa/b'],
    ['too few parts', 'spiffe://cluster.local/ns/a'],
    ['too many parts', 'spiffe://cluster.local/ns/a/sa/b/extra'],
    ['trailing slash', 'spiffe://cluster.local/ns/a/sa/b/'],
    ['swapped keywords', 'spiffe://cluster.local/sa/a/ns/b'],
    ['empty namespace', 'spiffe://cluster.local/ns//sa/b'],
    ['empty trust domain', 'spiffe:///ns/a/sa/b'],
    ['uppercase trust domain', 'spiffe://Cluster.local/ns/a/sa/b'],
    ['port in trust domain', 'spiffe://cluster.local:443/ns/a/sa/b'],
    ['percent-encoding', 'spiffe://cluster.local/ns/a/sa/b%2Fc'],
    ['encoded NUL', 'spiffe://cluster.local/ns/a/sa/b%00'],
    ['embedded NUL', 'spiffe://cluster.local/ns/a/sa/b\u0000c'],
    ['dot segment', 'spiffe://cluster.local/ns/../sa/b'],
    ['space', 'spiffe://cluster.local/ns/a/sa/b c'],
    ['query', 'spiffe://cluster.local/ns/a/sa/b?x=1'],
    ['non-ASCII', 'spiffe://cluster.local/ns/a/sa/bé'],
  ])('rejects %s with SPIFFE_INVALID_ID', (_name, uri) => {
    expect(SpiffeId.isValid(uri)).toBe(false);
    expect(() => SpiffeId.parse(uri)).toThrow(InvalidSpiffeIdError);
    const result = SpiffeId.tryParse(uri);
    expect(result.ok ? 'parsed' : result.error.code).toBe('SPIFFE_INVALID_ID');
    if (!result.ok) expect(result.error.message).not.toContain('\u0000');
  });

  it('round-trips every valid identity and compares exactly', () => {
    const label = fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,20}$/);
    fc.assert(
      fc.property(label, label, label, (td, ns, sa) => {
        const id = SpiffeId.of({ trustDomain: `${td}.local`, namespace: ns, serviceAccount: sa });
        expect(SpiffeId.parse(id.uri).equals(id)).toBe(true);
        expect(id.equals(`${id.uri}\u0000`)).toBe(false);
        expect(id.equals(id.uri.toUpperCase())).toBe(id.uri === id.uri.toUpperCase());
      }),
      { numRuns: 200 },
    );
  });
});
