import { ApiException } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import {
  KubeApiError,
  KubeUnreachableError,
  isAlreadyExists,
  isConflict,
  isForbidden,
  isGone,
  isNotFound,
  isTransient,
} from './errors.ts';

describe('KubeApiError', () => {
  it('reads the Status body and says what to check', () => {
    const body = JSON.stringify({
      kind: 'Status',
      code: 403,
      reason: 'Forbidden',
      message: 'pods is forbidden',
    });
    const err = KubeApiError.fromResponse(403, body, 'GET /api/v1/pods');
    expect(err).toMatchObject({
      code: 'KUBE_FORBIDDEN',
      status: 403,
      reason: 'Forbidden',
      operation: 'GET /api/v1/pods',
    });
    expect(err.message).toContain('pods is forbidden');
    expect(err.message).toContain('check the RBAC rules');
    expect(isForbidden(err)).toBe(true);
    expect(isTransient(err)).toBe(false);
  });

  it('copes with a body that is not a Status', () => {
    const err = KubeApiError.fromResponse(502, '<html>bad gateway</html>', 'GET /x');
    expect(err).toMatchObject({ code: 'KUBE_SERVER_ERROR', reason: 'Unknown' });
    expect(err.message).toContain('bad gateway');
    expect(isTransient(err)).toBe(true);
  });

  it.each([
    [404, 'NotFound', 'KUBE_NOT_FOUND', isNotFound],
    [409, 'Conflict', 'KUBE_CONFLICT', isConflict],
    [410, 'Expired', 'KUBE_GONE', isGone],
  ] as const)('classifies %i', (status, reason, code, is) => {
    const err = new KubeApiError(status, reason, 'GET /x', 'detail');
    expect(err.code).toBe(code);
    expect(is(err)).toBe(true);
  });

  it('tells AlreadyExists from a resourceVersion conflict', () => {
    expect(isAlreadyExists(new KubeApiError(409, 'AlreadyExists', 'POST /x', 'exists'))).toBe(true);
    expect(isAlreadyExists(new KubeApiError(409, 'Conflict', 'PATCH /x', 'modified'))).toBe(false);
  });

  it("classifies client-node's ApiException by its code", () => {
    const err = new ApiException(404, 'Not Found', { reason: 'NotFound' }, {});
    expect(isNotFound(err)).toBe(true);
    expect(isTransient(new ApiException(503, 'x', {}, {}))).toBe(true);
  });

  it('treats no answer as transient', () => {
    const err = new KubeUnreachableError('GET /x', new Error('connect ECONNREFUSED'));
    expect(err.code).toBe('KUBE_UNREACHABLE');
    expect(err.message).toContain('check the server address');
    expect(isTransient(err)).toBe(true);
  });
});
