import { describe, expect, it } from 'vitest';
import { authenticateBearer, bearerToken, type TokenReviewer } from './token-review.ts';

describe('authenticateBearer', () => {
  it('maps a pod-bound service account token', async () => {
    const reviewer: TokenReviewer = (token, audiences) =>
      Promise.resolve({
        authenticated: token === 'good' && audiences.includes('istio-ca'),
        username: 'system:serviceaccount:istio-system:ztunnel',
        audiences: ['istio-ca'],
        extra: {
          'authentication.kubernetes.io/pod-name': ['zt-1'],
          'authentication.kubernetes.io/pod-uid': ['u1'],
        },
      });
    const res = await authenticateBearer('Bearer good', reviewer, ['istio-ca']);
    expect(res).toEqual({
      ok: true,
      identity: { namespace: 'istio-system', serviceAccount: 'ztunnel', podName: 'zt-1', podUid: 'u1' },
    });
  });

  it.each<[string, unknown, TokenReviewer]>([
    ['a missing header', undefined, () => Promise.resolve({ authenticated: true })],
    ['a non-bearer header', 'Basic abc', () => Promise.resolve({ authenticated: true })],
    ['a rejected token', 'Bearer t', () => Promise.resolve({ authenticated: false, error: 'expired' })],
    [
      'a user that is not a service account',
      'Bearer t',
      () => Promise.resolve({ authenticated: true, username: 'alice' }),
    ],
    [
      'a token for another audience',
      'Bearer t',
      () =>
        Promise.resolve({ authenticated: true, username: 'system:serviceaccount:a:b', audiences: ['other'] }),
    ],
    ['a failing TokenReview call', 'Bearer t', () => Promise.reject(new Error('connection refused'))],
  ])('refuses %s', async (_n, header, reviewer) => {
    const res = await authenticateBearer(header, reviewer, ['istio-ca']);
    expect(res.ok).toBe(false);
    if (!res.ok) expect(res.error.code).toBe('ISTIOD_UNAUTHENTICATED');
  });

  it('extracts bearer tokens strictly', () => {
    expect(bearerToken('Bearer abc')).toBe('abc');
    expect(bearerToken('Bearer ')).toBeUndefined();
    expect(bearerToken(['Bearer abc'])).toBeUndefined();
  });
});
