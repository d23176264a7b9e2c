import { describe, expect, it } from 'vitest';
import { type PodLike, formatPods, meshCandidate, progressLine, redirectionProgress } from './dataplane.ts';

function pod(
  name: string,
  opts: { redirected?: boolean; phase?: string; hostNetwork?: boolean; optOut?: boolean } = {},
): PodLike {
  return {
    metadata: {
      name,
      namespace: 'sample',
      ...(opts.redirected === true ? { annotations: { 'ambient.istio.io/redirection': 'enabled' } } : {}),
      ...(opts.optOut === true ? { labels: { 'istio.io/dataplane-mode': 'none' } } : {}),
    },
    spec: { hostNetwork: opts.hostNetwork ?? false },
    status: { phase: opts.phase ?? 'Running' },
  };
}

describe('dataplane enrollment progress', () => {
  it('counts only running, non-host-network pods that did not opt out', () => {
    expect(meshCandidate(pod('a'))).toBe(true);
    expect(meshCandidate(pod('b', { phase: 'Succeeded' }))).toBe(false);
    expect(meshCandidate(pod('c', { hostNetwork: true }))).toBe(false);
    expect(meshCandidate(pod('d', { optOut: true }))).toBe(false);
  });

  it('is done when every candidate is redirected (enroll) or none is (unenroll)', () => {
    const pods = [pod('a', { redirected: true }), pod('b'), pod('c', { hostNetwork: true })];
    const enrolling = redirectionProgress(pods, true);
    expect(enrolling).toEqual({ done: false, redirected: 1, total: 2, pending: ['b'] });
    expect(progressLine('sample', enrolling, true)).toBe('namespace sample: 1/2 pods redirected');
    expect(redirectionProgress(pods, false).pending).toEqual(['a']);
    expect(redirectionProgress([pod('a', { redirected: true })], true).done).toBe(true);
    expect(redirectionProgress([], true).done).toBe(true);
  });

  it('prints the pods and their redirection', () => {
    expect(formatPods([pod('a', { redirected: true }), pod('b')], 'table')).toBe(
      'NAMESPACE POD REDIRECTION\nsample    a   enabled\nsample    b   none\n',
    );
    expect(JSON.parse(formatPods([pod('a')], 'json'))).toEqual([
      { namespace: 'sample', pod: 'a', redirection: 'none' },
    ]);
  });
});
