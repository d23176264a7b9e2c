import { describe, expect, it } from 'vitest';
import { makeAuthorizationPolicy, makeService } from '../testing/fixtures.ts';
import { makeBackendPod, makeBoundService, makeWaypointGateway } from '../testing/waypoint-fixtures.ts';
import { waypointIndexes } from '../testing/waypoint-indexes.ts';
import { EnvoyType, EnvoyTypeUrls, decodeEnvoy, unpackTyped } from './envoy-protos.ts';
import { customPolicyProblem, parseExtAuthzProviders } from './translate-ext-authz.ts';
import { withPolicyProblem } from './policy-binding.ts';
import { WaypointKinds as K } from './waypoint-index.ts';

const reviews = 'inbound-vip|80|http|reviews.ns1.svc.cluster.local';
const authzHost = 'ext-authz.ns1.svc.cluster.local';

const mesh = {
  extensionProviders: [
    {
      name: 'authz-http',
      envoyExtAuthzHttp: {
        service: authzHost,
        port: 8000,
        timeout: '2s',
        pathPrefix: '/check',
        includeRequestHeadersInCheck: ['x-ext-authz'],
        headersToUpstreamOnAllow: ['x-ext-authz-check-result'],
        headersToDownstreamOnDeny: ['x-ext-authz-check-result', 'content-type'],
        statusOnError: '503',
        failOpen: true,
      },
    },
    { name: 'authz-grpc', envoyExtAuthzGrpc: { service: `ns1/${authzHost}`, port: 9000 } },
    { name: 'bad-port', envoyExtAuthzGrpc: { service: authzHost, port: 0 } },
    { name: 'otel', opentelemetry: { service: 'otel.x', port: 4317 } },
  ],
};

type Filter = { name: string; typedConfig: unknown };

function setup(provider: string) {
  const issues: string[] = [];
  const idx = waypointIndexes({
    extAuthzProviders: () => parseExtAuthzProviders(mesh),
    onExtAuthzIssues: (_wp, list) => issues.push(...list),
  });
  idx.upsert(K.GATEWAY, makeWaypointGateway('wp1', 'ns1'));
  idx.upsert(K.SERVICE, makeBoundService('reviews', 'ns1', 'wp1', '10.96.0.10'));
  idx.upsert(
    K.SERVICE,
    makeService('ext-authz', 'ns1', {
      clusterIP: '10.96.0.20',
      clusterIPs: ['10.96.0.20'],
      selector: { app: 'ext-authz' },
      ports: [
        { name: 'http', port: 8000, targetPort: 8000 },
        { name: 'grpc', port: 9000, targetPort: 9000 },
      ],
    }),
  );
  idx.upsert(K.POD, makeBackendPod('ext-authz', 'ns1', '10.244.0.9'));
  idx.upsert(
    K.AUTHORIZATION_POLICY,
    makeAuthorizationPolicy('ext', 'ns1', {
      targetRefs: [{ kind: 'Service', group: '', name: 'reviews' }],
      action: 'CUSTOM',
      provider: { name: provider },
      rules: [{ to: [{ operation: { paths: ['/admin*'] } }] }],
    }),
  );
  const main = decodeEnvoy(
    EnvoyType.listener,
    idx.waypoints.resourcesFor('ns1/wp1', EnvoyTypeUrls.listener).get('main_internal')!.value,
  ) as { filterChains: { name: string; filters: { typedConfig: unknown }[] }[] };
  const chain = main.filterChains.find(c => c.name === reviews)!;
  const hcm = unpackTyped(chain.filters[0]!.typedConfig) as { httpFilters: Filter[] };
  const clusters = idx.waypoints.resourcesFor('ns1/wp1', EnvoyTypeUrls.cluster);
  const clas = idx.waypoints.resourcesFor('ns1/wp1', EnvoyTypeUrls.clusterLoadAssignment);
  return { filters: hcm.httpFilters, clusters, clas, issues };
}

describe('meshConfig extensionProviders', () => {
  it('parses envoyExtAuthzHttp and envoyExtAuthzGrpc providers with upstream defaults and errors', () => {
    const providers = parseExtAuthzProviders(mesh);
    expect([...providers.keys()].sort()).toEqual(['authz-grpc', 'authz-http', 'bad-port']);
    const http = providers.get('authz-http')!;
    expect(http.ok && http.provider).toMatchObject({
      kind: 'http',
      port: 8000,
      timeoutMs: 2000,
      failOpen: true,
      statusOnError: 503,
      pathPrefix: '/check',
    });
    const grpc = providers.get('authz-grpc')!;
    // 600s and fail-closed are upstream's defaults.
    expect(grpc.ok && grpc.provider).toMatchObject({ kind: 'grpc', timeoutMs: 600_000, failOpen: false });
    expect(providers.get('bad-port')).toEqual({
      ok: false,
      error: 'port must be in the range [1, 65535], found: 0',
    });
  });
});

describe('CUSTOM AuthorizationPolicy on a waypoint', () => {
  it('programs a shadow RBAC filter and an HTTP ext_authz filter ahead of the others, and the provider cluster', () => {
    const { filters, clusters, clas, issues } = setup('authz-http');
    expect(issues).toEqual([]);
    expect(filters.map(f => f.name)).toEqual([
      'envoy.filters.http.rbac',
      'envoy.filters.http.ext_authz',
      'envoy.filters.http.router',
    ]);
    const shadow = unpackTyped(filters[0]!.typedConfig);
    expect(shadow.shadowRulesStatPrefix).toBe('istio_ext_authz_');
    expect(shadow.rules).toBeUndefined();
    expect(Object.keys((shadow.shadowRules as { policies: object }).policies)).toEqual([
      'istio-ext-authz-authz-http-ns[ns1]-policy[ext]-rule[0]',
    ]);
    const ext = unpackTyped(filters[1]!.typedConfig) as Record<string, never>;
    expect(ext.failureModeAllow).toBe(true);
    expect(ext.statusOnError).toEqual({ code: 'ServiceUnavailable' });
    expect(ext.filterEnabledMetadata).toEqual({
      filter: 'envoy.filters.http.rbac',
      path: [{ key: 'istio_ext_authz_shadow_effective_policy_id' }],
      value: { stringMatch: { prefix: 'istio-ext-authz-authz-http' } },
    });
    expect(ext.httpService).toMatchObject({
      pathPrefix: '/check',
      serverUri: {
        uri: `http://${authzHost}`,
        cluster: `outbound|8000||${authzHost}`,
        timeout: { seconds: 2 },
      },
      authorizationResponse: {
        allowedUpstreamHeaders: { patterns: [{ exact: 'x-ext-authz-check-result', ignoreCase: true }] },
      },
    });
    expect(ext.allowedHeaders).toEqual({ patterns: [{ exact: 'x-ext-authz', ignoreCase: true }] });
    expect(clusters.has(`outbound|8000||${authzHost}`)).toBe(true);
    const cla = decodeEnvoy(
      EnvoyType.clusterLoadAssignment,
      clas.get(`outbound|8000||${authzHost}`)!.value,
    ) as { endpoints: { lbEndpoints: { endpoint: { address: { socketAddress: unknown } } }[] }[] };
    expect(cla.endpoints[0]!.lbEndpoints.map(e => e.endpoint.address.socketAddress)).toEqual([
      { address: '10.244.0.9', portValue: 15008 },
    ]);
  });

  it('programs a gRPC ext_authz filter to the Envoy gRPC cluster with the service authority', () => {
    const { filters, clusters } = setup('authz-grpc');
    const ext = unpackTyped(filters[1]!.typedConfig) as Record<string, never>;
    expect(ext.grpcService).toEqual({
      envoyGrpc: { clusterName: `outbound|9000||${authzHost}`, authority: authzHost },
      timeout: { seconds: 600 },
    });
    // Fail closed: proto3 false is not on the wire.
    expect(ext.failureModeAllow).toBeUndefined();
    const cluster = decodeEnvoy(EnvoyType.cluster, clusters.get(`outbound|9000||${authzHost}`)!.value) as {
      typedExtensionProtocolOptions: Record<string, unknown>;
    };
    // Envoy gRPC needs HTTP/2 to the authorization service.
    expect(
      unpackTyped(
        cluster.typedExtensionProtocolOptions['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'],
      ),
    ).toMatchObject({ explicitHttpConfig: { http2ProtocolOptions: {} } });
  });

  it('denies the requests an unknown or invalid provider would check, and reports it', () => {
    for (const provider of ['nope', 'bad-port']) {
      const { filters, clusters, issues } = setup(provider);
      expect(filters.map(f => f.name)).toEqual(['envoy.filters.http.rbac', 'envoy.filters.http.router']);
      const rbac = unpackTyped(filters[0]!.typedConfig) as {
        rules: { action: string; policies: Record<string, unknown> };
      };
      expect(rbac.rules.action).toBe('DENY');
      expect(Object.keys(rbac.rules.policies)).toEqual([
        `istio-ext-authz-${provider}-ns[ns1]-policy[ext]-rule[0]-deny-due-to-bad-CUSTOM-action`,
      ]);
      expect([...clusters.keys()].some(k => k.startsWith('outbound|'))).toBe(false);
      expect(issues).toHaveLength(1);
      expect(issues[0]).toContain(`failed to process CUSTOM action for provider ${provider}`);
    }
  });

  it('states why a CUSTOM policy denies in its WaypointAccepted message (unknown or invalid provider)', () => {
    const providers = parseExtAuthzProviders(mesh);
    const policy = (provider: string, action = 'CUSTOM') =>
      makeAuthorizationPolicy('ext', 'ns1', { action, provider: { name: provider }, rules: [{}] });
    expect(customPolicyProblem(policy('authz-http'), providers)).toBeUndefined();
    expect(customPolicyProblem(policy('nope', 'ALLOW'), providers)).toBeUndefined();
    expect(customPolicyProblem(policy('nope'), providers)).toBe(
      'CUSTOM action cannot be enforced, requests matching its rules are denied: ' +
        'available providers are [authz-grpc authz-http bad-port] but found "nope"',
    );
    expect(customPolicyProblem(policy('bad-port'), providers)).toContain(
      'found errors in provider bad-port: port must be in the range [1, 65535], found: 0',
    );
    const bound = { status: 'True' as const, reason: 'Accepted', message: 'bound to ns1/waypoint' };
    expect(withPolicyProblem(bound, undefined)).toBe(bound);
    expect(withPolicyProblem(undefined, 'x')).toBeUndefined();
    expect(withPolicyProblem(bound, 'x')).toEqual({ ...bound, message: 'bound to ns1/waypoint; x' });
  });
});
