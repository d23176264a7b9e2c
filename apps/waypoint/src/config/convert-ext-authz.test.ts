import { describe, expect, it } from 'vitest';
import { ProtoReader } from './proto-reader.ts';
import { convertExtAuthz } from './convert-ext-authz.ts';

describe('convertExtAuthz', () => {
  it('reads istiod’s HTTP config: cluster, prefix, timeout, header lists, status_on_error by enum name', () => {
    const r = new ProtoReader();
    const f = convertExtAuthz(
      r,
      'envoy.filters.http.ext_authz',
      {
        http_service: {
          path_prefix: '/check',
          server_uri: { uri: 'http://a', cluster: 'outbound|8000||a', timeout: { seconds: 2, nanos: 0 } },
          authorization_response: {
            allowed_upstream_headers: { patterns: [{ prefix: 'x-', ignore_case: true }] },
          },
        },
        status_on_error: { code: 'ServiceUnavailable' },
        failure_mode_allow: true,
        transport_api_version: 'V3',
      },
      'f',
    );
    expect(r.problems).toEqual([]);
    expect(f.service).toMatchObject({
      kind: 'http',
      cluster: 'outbound|8000||a',
      pathPrefix: '/check',
      timeoutMs: 2000,
      allowedClientHeaders: undefined,
    });
    expect(f.service.kind === 'http' && f.service.allowedUpstreamHeaders).toEqual([
      { kind: 'prefix', value: 'x-', ignoreCase: true },
    ]);
    expect(f.statusOnError).toBe(503);
    expect(f.failureModeAllow).toBe(true);
  });

  it('reads the Envoy gRPC service and defaults to fail closed with 403', () => {
    const r = new ProtoReader();
    const f = convertExtAuthz(
      r,
      'x',
      { grpc_service: { envoy_grpc: { cluster_name: 'outbound|9000||a', authority: 'a' } } },
      'f',
    );
    expect(r.problems).toEqual([]);
    expect(f.service).toEqual({ kind: 'grpc', cluster: 'outbound|9000||a', authority: 'a', timeoutMs: 200 });
    expect(f.statusOnError).toBe(403);
    expect(f.failureModeAllow).toBe(false);
  });

  it('reports what it does not implement (the listener is NACKed)', () => {
    const r = new ProtoReader();
    convertExtAuthz(
      r,
      'x',
      {
        grpc_service: { google_grpc: { target_uri: 'a:9000' } },
        with_request_body: { max_request_bytes: 10 },
      },
      'f',
    );
    expect(r.problems).toEqual([
      'f.with_request_body: is not supported by the waypoint',
      'f.grpc_service.google_grpc: is not supported by the waypoint',
      'f.grpc_service: needs envoy_grpc (google_grpc is not supported)',
    ]);
  });
});
