// Cluster tier: CUSTOM authorization through a waypoint (issue 20; issue 19's ext_authz) on a
// 2-node local cluster (name `extauthz`, slot 154), one cluster shared by the file. Istio's sample
// ext-authz server runs as a pod (image `registry.istio.io/testing/ext-authz`, mapped in
// e2e/images.json to the binary tools/install-deps.d/istio-upstream.sh builds); meshConfig names
// it twice, `envoyExtAuthzHttp` (port 8000) and `envoyExtAuthzGrpc` (port 9000). A CUSTOM
// AuthorizationPolicy on the Service `echo` names one provider or the other.
//
// What users see: `x-ext-authz: allow` 200 (the upstream got the service's
// `x-ext-authz-check-result: allowed`), anything else 403 with the service's
// `x-ext-authz-check-result: denied`, over HTTP and gRPC providers; paths outside the policy's
// rules are not checked; an unknown provider denies the matched requests (`RBAC: access denied`).
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../exec.ts';
import { ScenarioContext } from '../mesh/scenario.ts';
import { startWaypointMesh } from '../mesh/waypoint-mesh.ts';
import { curlInPod, echoPod, type MeshPod } from '../mesh/workloads.ts';

const NS = 'extauthz';
const AUTHZ_HOST = `ext-authz.${NS}.svc.cluster.local`;
const scenario = new ScenarioContext<MeshPod>('extauthz');
const { kube, pod } = scenario;
const AP_PATH = `/apis/security.istio.io/v1/namespaces/${NS}/authorizationpolicies`;
const MESH_CM = '/api/v1/namespaces/istio-system/configmaps';

/**
 * `<code> <x-ext-authz-check-result> <x-ext-authz-additional-header-override>` of one GET from
 * the client, trimmed (the gRPC sample sets the last header on its answers; the HTTP provider
 * passes only the first one to the client).
 */
async function check(path: string, headers: Record<string, string> = {}): Promise<string> {
  const out = await curlInPod(pod('client'), `http://echo.${NS}.svc.cluster.local${path}`, {
    headers,
    writeOut:
      '%{http_code} %header{x-ext-authz-check-result} %header{x-ext-authz-additional-header-override}',
  });
  return out.replace(/\s+/g, ' ').trim();
}

async function answers(
  what: string,
  path: string,
  headers: Record<string, string>,
  want: string,
): Promise<void> {
  await waitFor(what, async () => ((await check(path, headers)) === want ? true : undefined), {
    timeoutMs: 90_000,
    intervalMs: 500,
  });
}

async function setProviders(): Promise<void> {
  const c = kube().client;
  const providers = [
    {
      name: 'sample-http',
      envoyExtAuthzHttp: {
        service: AUTHZ_HOST,
        port: 8000,
        includeRequestHeadersInCheck: ['x-ext-authz'],
        headersToDownstreamOnDeny: ['x-ext-authz-check-result'],
      },
    },
    { name: 'sample-grpc', envoyExtAuthzGrpc: { service: AUTHZ_HOST, port: 9000 } },
  ];
  const existing = await c.find<{ data?: Record<string, string> }>(`${MESH_CM}/istio`);
  if (existing === undefined) {
    await c.create(MESH_CM, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'istio', namespace: 'istio-system' },
      data: { mesh: stringify({ extensionProviders: providers }) },
    });
    return;
  }
  const mesh = (parse(existing.data?.['mesh'] ?? '') ?? {}) as Record<string, unknown>;
  await c.mergePatch(`${MESH_CM}/istio`, {
    data: { mesh: stringify({ ...mesh, extensionProviders: providers }) },
  });
}

function customPolicy(provider: string): object {
  return {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name: 'ext-authz', namespace: NS },
    spec: {
      targetRefs: [{ kind: 'Service', group: '', name: 'echo' }],
      action: 'CUSTOM',
      provider: { name: provider },
      rules: [{ to: [{ operation: { paths: ['/authz*'] } }] }],
    },
  };
}

describe('CUSTOM authorization (ext_authz) through a waypoint on a 2-node local cluster', () => {
  beforeAll(async () => {
    await startWaypointMesh(scenario, {
      cluster: { name: 'extauthz', slot: 154 },
      namespace: NS,
      serviceAccounts: ['client', 'echo', 'ext-authz'],
      pods: [
        [
          'echo',
          echoPod('echo', { namespace: NS, node: 'node-1', serviceAccount: 'echo', containerPorts: [8080] }),
        ],
        ['client', echoPod('client', { namespace: NS, node: 'node-0', env: { PORT: '9090' } })],
        [
          'ext-authz',
          echoPod('ext-authz', {
            namespace: NS,
            node: 'node-0',
            image: 'registry.istio.io/testing/ext-authz:latest',
            containerPorts: [8000, 9000],
          }),
        ],
      ],
      services: [['echo', { app: 'echo' }]],
      probe: { from: 'client', service: 'echo' },
    });
    await kube().client.create(`/api/v1/namespaces/${NS}/services`, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'ext-authz', namespace: NS, labels: { 'istio.io/use-waypoint': 'none' } },
      spec: {
        selector: { app: 'ext-authz' },
        ports: [
          { name: 'http', port: 8000, targetPort: 8000 },
          { name: 'grpc', port: 9000, targetPort: 9000, appProtocol: 'grpc' },
        ],
      },
    });
    await setProviders();
    scenario.logSetupTime();
  }, 600_000);

  afterAll(async () => {
    await scenario.cluster?.stop();
    scenario.logWallTime();
  }, 180_000);

  it('HTTP provider: `x-ext-authz: allow` 200, otherwise 403 with the service’s header; other paths unchecked', async () => {
    await kube().client.create(AP_PATH, customPolicy('sample-http'));
    await answers('a request without the header denied by ext-authz', '/authz', {}, '403 denied');
    expect(await check('/authz', { 'x-ext-authz': 'allow' })).toBe('200');
    expect(await check('/authz/x', { 'x-ext-authz': 'deny' })).toBe('403 denied');
    // Outside the policy's rules: not sent to the authorizer.
    expect(await check('/public')).toBe('200');
  }, 180_000);

  it('gRPC provider (envoy.service.auth.v3.Authorization/Check): the same decisions', async () => {
    await kube().client.mergePatch(`${AP_PATH}/ext-authz`, { spec: { provider: { name: 'sample-grpc' } } });
    const grpcDenied = '403 denied grpc-additional-header-override-value';
    await answers('a request without the header denied by the gRPC check', '/authz', {}, grpcDenied);
    await answers('allowed by the gRPC check', '/authz', { 'x-ext-authz': 'allow' }, '200');
    expect(await check('/public')).toBe('200');
  }, 180_000);

  it('an unknown provider denies the requests the policy matches (fail closed), and only those', async () => {
    await kube().client.mergePatch(`${AP_PATH}/ext-authz`, {
      spec: { provider: { name: 'no-such-provider' } },
    });
    await answers(
      'allowed header no longer enough (no authorizer)',
      '/authz',
      { 'x-ext-authz': 'allow' },
      '403',
    );
    expect(await check('/public')).toBe('200');
  }, 180_000);
});
