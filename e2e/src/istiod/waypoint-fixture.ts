/**
 * The waypoint fixture of the differential check (issue 18): one waypoint Gateway, two Services
 * bound to it with a pod each, a weighted HTTPRoute with retries and timeouts, a DestinationRule
 * (LB policy, connection pool, outlier detection) and an L7 AuthorizationPolicy with `targetRefs`.
 * Both clusters (upstream istiod's and ours) get exactly these objects, plus a stand-in waypoint
 * pod: the xDS test client presents that pod's name and IP, as a waypoint's istio-proxy would.
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { KubeClient } from '@ambient-mesh/kube';
import { toStruct, type core } from '@ambient-mesh/xds-types';
import { waitFor } from '../exec.ts';

export const WPD_NS = 'wpdiff';
export const WAYPOINT = 'waypoint';
/** The stand-in waypoint pod: labelled like the generated Deployment's pods, so the waypoint Service selects it. */
export const STANDIN_POD = 'waypoint-standin';
export const HOST = (svc: string): string => `${svc}.${WPD_NS}.svc.cluster.local`;

const GW_API = `/apis/gateway.networking.k8s.io/v1/namespaces/${WPD_NS}`;
export const PATHS = {
  gateway: `${GW_API}/gateways/${WAYPOINT}`,
  route: `${GW_API}/httproutes/reviews`,
  policy: `/apis/security.istio.io/v1/namespaces/${WPD_NS}/authorizationpolicies/reviews-l7`,
  deployment: `/apis/apps/v1/namespaces/${WPD_NS}/deployments/${WAYPOINT}`,
  service: `/api/v1/namespaces/${WPD_NS}/services/${WAYPOINT}`,
} as const;

const WAYPOINT_POD_LABELS = {
  'gateway.networking.k8s.io/gateway-name': WAYPOINT,
  'service.istio.io/canonical-name': WAYPOINT,
  'istio.io/gateway-name': WAYPOINT,
} as const;

function pod(name: string, labels: Record<string, string>, serviceAccount: string): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: WPD_NS, labels },
    spec: {
      serviceAccountName: serviceAccount,
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'app',
          image: 'ambient-mesh/shell:0.1.0',
          command: ['sleep', '86400'],
          ports: [{ name: 'http', containerPort: 9080 }],
        },
      ],
    },
  };
}

function service(name: string): object {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: WPD_NS, labels: { 'istio.io/use-waypoint': WAYPOINT } },
    spec: { selector: { app: name }, ports: [{ name: 'http', port: 9080, targetPort: 9080 }] },
  };
}

/** The HTTPRoute: a header-matched rule to ratings, then an 80/20 split with retries and timeouts. */
export const HTTP_ROUTE = {
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'HTTPRoute',
  metadata: { name: 'reviews', namespace: WPD_NS },
  spec: {
    parentRefs: [{ group: '', kind: 'Service', name: 'reviews', port: 9080 }],
    rules: [
      {
        matches: [
          { path: { type: 'PathPrefix', value: '/canary' }, headers: [{ name: 'x-canary', value: 'yes' }] },
        ],
        backendRefs: [{ name: 'ratings', port: 9080 }],
        timeouts: { request: '2s' },
      },
      {
        matches: [{ path: { type: 'PathPrefix', value: '/' } }],
        backendRefs: [
          { name: 'reviews', port: 9080, weight: 80 },
          { name: 'ratings', port: 9080, weight: 20 },
        ],
        timeouts: { request: '5s', backendRequest: '1s' },
        retry: { attempts: 3, codes: [503, 502], backoff: '100ms' },
      },
    ],
  },
};

export const DESTINATION_RULE = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'DestinationRule',
  metadata: { name: 'reviews', namespace: WPD_NS },
  spec: {
    host: HOST('reviews'),
    trafficPolicy: {
      loadBalancer: { simple: 'LEAST_REQUEST' },
      connectionPool: {
        tcp: { maxConnections: 10, connectTimeout: '3s' },
        http: { http1MaxPendingRequests: 5, http2MaxRequests: 20, maxRetries: 4, idleTimeout: '30s' },
      },
      outlierDetection: {
        consecutive5xxErrors: 3,
        interval: '5s',
        baseEjectionTime: '30s',
        maxEjectionPercent: 50,
      },
    },
  },
};

export const AUTHORIZATION_POLICY = {
  apiVersion: 'security.istio.io/v1',
  kind: 'AuthorizationPolicy',
  metadata: { name: 'reviews-l7', namespace: WPD_NS },
  spec: {
    targetRefs: [{ group: '', kind: 'Service', name: 'reviews' }],
    action: 'ALLOW',
    rules: [
      {
        from: [{ source: { principals: [`cluster.local/ns/${WPD_NS}/sa/client`] } }],
        to: [{ operation: { methods: ['GET'], paths: ['/reviews*', '/canary'] } }],
      },
      {
        to: [{ operation: { methods: ['HEAD'] } }],
        when: [{ key: 'request.headers[x-probe]', values: ['1'] }],
      },
    ],
  },
};

/**
 * Class defaults for `istio-waypoint` (both istiods read the ConfigMap labelled
 * `gateway.istio.io/defaults-for-class`): no replicas, so neither cluster runs a proxy that cannot
 * reach its istiod (upstream's image does not exist in the local cluster); the stand-in pod is
 * the waypoint's only endpoint.
 */
export const CLASS_DEFAULTS = {
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: {
    name: 'waypoint-class-defaults',
    namespace: 'istio-system',
    labels: { 'gateway.istio.io/defaults-for-class': 'istio-waypoint' },
  },
  data: { deployment: 'spec:\n  replicas: 0\n' },
};

/** Creates the fixture (namespace, SAs, pods, Services, Gateway, route, rule, policy) and returns the pod IPs by name. */
export async function createWaypointFixture(client: KubeClient): Promise<Map<string, string>> {
  await client.ensure('/api/v1/namespaces/istio-system/configmaps', CLASS_DEFAULTS);
  await client.ensure('/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: WPD_NS },
  });
  for (const sa of [WAYPOINT, 'reviews', 'ratings'])
    await client.ensure(`/api/v1/namespaces/${WPD_NS}/serviceaccounts`, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: sa, namespace: WPD_NS },
    });
  const pods = `/api/v1/namespaces/${WPD_NS}/pods`;
  await client.ensure(pods, pod('reviews-v1', { app: 'reviews', version: 'v1' }, 'reviews'));
  await client.ensure(pods, pod('ratings-v1', { app: 'ratings', version: 'v1' }, 'ratings'));
  await client.ensure(pods, pod(STANDIN_POD, { ...WAYPOINT_POD_LABELS }, WAYPOINT));
  for (const name of ['reviews', 'ratings'])
    await client.ensure(`/api/v1/namespaces/${WPD_NS}/services`, service(name));
  await client.ensure(`${GW_API}/gateways`, {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name: WAYPOINT, namespace: WPD_NS, labels: { 'istio.io/waypoint-for': 'service' } },
    spec: {
      gatewayClassName: 'istio-waypoint',
      listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }],
    },
  });
  await client.ensure(`${GW_API}/httproutes`, HTTP_ROUTE);
  await client.ensure(`/apis/networking.istio.io/v1/namespaces/${WPD_NS}/destinationrules`, DESTINATION_RULE);
  await client.ensure(
    `/apis/security.istio.io/v1/namespaces/${WPD_NS}/authorizationpolicies`,
    AUTHORIZATION_POLICY,
  );
  const ips = new Map<string, string>();
  for (const name of ['reviews-v1', 'ratings-v1', STANDIN_POD]) {
    const ip = await waitFor(
      `pod ${WPD_NS}/${name} to get an IP`,
      async () => {
        const p = await client.get<V1Pod>(`${pods}/${name}`);
        return (p.status?.podIP ?? '') === '' ? undefined : p.status?.podIP;
      },
      { timeoutMs: 120_000 },
    );
    ips.set(name, ip);
  }
  return ips;
}

/**
 * The `Node` of a waypoint proxy as istio-proxy sends it (`waypoint~<ip>~<pod>.<ns>~<ns>.svc.cluster.local`):
 * upstream finds the proxy's pod by that name and IP, and the waypoint's Services through the pod's
 * Service targets; ours reads the gateway-name label.
 */
export function waypointClientNode(ip: string): core.NodeInit {
  return {
    id: `waypoint~${ip}~${STANDIN_POD}.${WPD_NS}~${WPD_NS}.svc.cluster.local`,
    metadata: toStruct({
      NAME: STANDIN_POD,
      NAMESPACE: WPD_NS,
      INSTANCE_IPS: ip,
      SERVICE_ACCOUNT: WAYPOINT,
      CLUSTER_ID: 'Kubernetes',
      ISTIO_VERSION: '1.27.3',
      WORKLOAD_NAME: WAYPOINT,
      LABELS: { ...WAYPOINT_POD_LABELS },
    }),
  };
}
