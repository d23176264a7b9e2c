// The type URLs the mesh agrees on (mesh-api) and the wire package's constants must not drift.
import { describe, expect, it } from 'vitest';
import { TypeUrl } from '@ambient-mesh/mesh-api';
import { TypeUrl as WireTypeUrl, typeUrlOf } from '@ambient-mesh/xds-types';
import { RESOURCE_WRAPPER_TYPE_URL } from './server/sotw-stream.ts';

describe('type URLs', () => {
  it('mesh-api and xds-types name the WDS types identically', () => {
    expect(TypeUrl.address).toBe(WireTypeUrl.ADDRESS);
    expect(TypeUrl.authorization).toBe(WireTypeUrl.AUTHORIZATION);
    expect(TypeUrl.workload).toBe(WireTypeUrl.WORKLOAD);
    expect(RESOURCE_WRAPPER_TYPE_URL).toBe(typeUrlOf('envoy.service.discovery.v3.Resource'));
  });
});
