import { ApiException } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { KubeApiError } from './errors.ts';

describe('KubeApiError', () => {
  it("names the HTTP status and the API's message of a rejected call", () => {
    const body = JSON.stringify({ kind: 'Status', message: 'pods "p" is forbidden: no', code: 403 });
    const err = new KubeApiError('patch pods/status ns/p', new ApiException(403, 'Forbidden', body, {}));
    expect(err.message).toBe(
      `Kubernetes API call 'patch pods/status ns/p' failed (HTTP 403: pods "p" is forbidden: no); ` +
        "check the API server and the agent's RBAC (ClusterRole ambient-cni-agent in deploy/cni-agent/cni-agent.yaml)",
    );
    expect(err.code).toBe('CNI_KUBE_FAILED');
  });

  it('names the transport error when the API never answered', () => {
    const err = new KubeApiError('patch pods/status ns/p', new Error('socket hang up'));
    expect(err.message).toContain('failed (socket hang up); check the API server');
  });

  it('keeps the plain message for a cause without details', () => {
    const err = new KubeApiError('list pods', undefined);
    expect(err.message).toContain("Kubernetes API call 'list pods' failed; check");
  });
});
