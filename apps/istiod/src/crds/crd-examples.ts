/**
 * Resources written the way Istio's documentation writes them, for the fields Ambient Mesh
 * supports. The CRD test checks that our CRDs accept every one of them (and reject bad values).
 * The valid ones are declared with the spec types generated from those CRDs (so the types accept
 * them); @ambient-mesh/mesh-api's tests check that those types reject the invalid ones.
 */
import type {
  AuthorizationPolicySpec,
  DestinationRuleSpec,
  EnvoyFilterSpec,
  GatewayClassSpec,
  GatewaySpec,
  IstioGatewaySpec,
  PeerAuthenticationSpec,
  ProxyConfigSpec,
  RequestAuthenticationSpec,
  ServiceEntrySpec,
  SidecarSpec,
  TelemetrySpec,
  VirtualServiceSpec,
  WasmPluginSpec,
  WorkloadEntrySpec,
  WorkloadGroupSpec,
} from '@ambient-mesh/mesh-api';

export const authorizationPolicyExamples: readonly AuthorizationPolicySpec[] = [
  { action: 'ALLOW', rules: [{ from: [{ source: { principals: ['cluster.local/ns/default/sa/sleep'] } }] }] },
  {
    selector: { matchLabels: { app: 'httpbin', version: 'v1' } },
    action: 'ALLOW',
    rules: [
      {
        from: [
          { source: { principals: ['cluster.local/ns/default/sa/sleep'] } },
          { source: { namespaces: ['dev'] } },
        ],
        to: [{ operation: { methods: ['GET'], paths: ['/info*'] } }],
        when: [{ key: 'request.auth.claims[iss]', values: ['https://accounts.google.com'] }],
      },
    ],
  },
  {
    action: 'DENY',
    rules: [
      {
        from: [
          { source: { notNamespaces: ['foo'], ipBlocks: ['10.0.0.0/8'], notIpBlocks: ['10.1.0.0/16'] } },
        ],
        to: [{ operation: { ports: ['8080'], notPorts: ['9090'] } }],
      },
    ],
  },
  { selector: { matchLabels: { app: 'db' } }, action: 'ALLOW', rules: [{}] },
  {},
  {
    targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'waypoint' }],
    action: 'DENY',
    rules: [{ to: [{ operation: { methods: ['DELETE'], hosts: ['*.example.com'] } }] }],
  },
  {
    action: 'CUSTOM',
    provider: { name: 'ext-authz' },
    rules: [{ to: [{ operation: { paths: ['/admin'] } }] }],
  },
  {
    action: 'ALLOW',
    rules: [
      {
        from: [
          {
            source: {
              serviceAccounts: ['default/sleep', 'curl'],
              notServiceAccounts: ['default/bad'],
              requestPrincipals: ['*'],
              remoteIpBlocks: ['1.2.3.4'],
            },
          },
        ],
        when: [{ key: 'destination.port', notValues: ['22'] }],
      },
    ],
  },
];

export const peerAuthenticationExamples: readonly PeerAuthenticationSpec[] = [
  { mtls: { mode: 'STRICT' } },
  { mtls: { mode: 'PERMISSIVE' } },
  {},
  {
    selector: { matchLabels: { app: 'finance' } },
    mtls: { mode: 'STRICT' },
    portLevelMtls: { '8080': { mode: 'DISABLE' } },
  },
  { selector: { matchLabels: { app: 'legacy' } }, mtls: { mode: 'UNSET' } },
];

export const invalidAuthorizationPolicies = [
  { action: 'PERMIT' },
  { rules: [{ when: [{ values: ['x'] }] }] },
  { rules: [{ from: [{ source: { principals: 'not-a-list' } }] }] },
];

export const invalidPeerAuthentications = [
  { mtls: { mode: 'STRICTER' } },
  { portLevelMtls: { '80': { mode: 'ON' } } },
];

export const gatewayExamples: readonly GatewaySpec[] = [
  // As `istioctl waypoint generate` writes it.
  { gatewayClassName: 'istio-waypoint', listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }] },
  {
    gatewayClassName: 'istio-waypoint',
    listeners: [
      { name: 'mesh', port: 15008, protocol: 'HBONE', allowedRoutes: { namespaces: { from: 'All' } } },
    ],
  },
  {
    gatewayClassName: 'istio',
    listeners: [
      {
        name: 'https',
        hostname: '*.example.com',
        port: 443,
        protocol: 'HTTPS',
        tls: { mode: 'Terminate', certificateRefs: [{ name: 'cert' }] },
        allowedRoutes: { namespaces: { from: 'Selector', selector: { matchLabels: { shared: 'true' } } } },
      },
    ],
    addresses: [{ type: 'IPAddress', value: '192.0.2.10' }],
  },
];

export const invalidGateways: readonly Record<string, unknown>[] = [
  { listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }] },
  { gatewayClassName: 'istio-waypoint', listeners: [{ name: 'mesh', port: 0, protocol: 'HBONE' }] },
  {
    gatewayClassName: 'istio-waypoint',
    listeners: [
      { name: 'mesh', port: 15008, protocol: 'HBONE', allowedRoutes: { namespaces: { from: 'Everyone' } } },
    ],
  },
];

export const requestAuthenticationExamples: readonly RequestAuthenticationSpec[] = [
  {
    selector: { matchLabels: { app: 'httpbin' } },
    jwtRules: [{ issuer: 'issuer-foo', jwksUri: 'https://example.com/.well-known/jwks.json' }],
  },
  {
    targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'waypoint' }],
    jwtRules: [
      {
        issuer: 'https://accounts.google.com',
        audiences: ['bookstore_android.apps.example.com'],
        fromHeaders: [{ name: 'x-jwt-assertion', prefix: 'Bearer ' }],
        fromParams: ['my_token'],
        outputClaimToHeaders: [{ header: 'x-jwt-claim-foo', claim: 'foo' }],
        forwardOriginalToken: true,
        timeout: '5s',
      },
    ],
  },
  {},
];

export const invalidRequestAuthentications = [
  { jwtRules: [{ issuer: 'issuer-foo', fromHeaders: [{ prefix: 'Bearer ' }] }] },
  { jwtRules: [{ issuer: 'issuer-foo', forwardOriginalToken: 'yes' }] },
];

export const serviceEntryExamples: readonly ServiceEntrySpec[] = [
  {
    hosts: ['api.example.com'],
    location: 'MESH_EXTERNAL',
    ports: [{ number: 443, name: 'https', protocol: 'TLS' }],
    resolution: 'DNS',
  },
  {
    hosts: ['mymongodb.somedomain'],
    addresses: ['192.192.192.192/24'],
    ports: [{ number: 27018, name: 'mongodb', protocol: 'MONGO' }],
    location: 'MESH_INTERNAL',
    resolution: 'STATIC',
    endpoints: [{ address: '2.2.2.2' }, { address: '3.3.3.3', ports: { mongodb: 27019 } }],
  },
  {
    hosts: ['vm.example.com'],
    ports: [{ number: 80, name: 'http', protocol: 'HTTP', targetPort: 8080 }],
    location: 'MESH_INTERNAL',
    resolution: 'STATIC',
    workloadSelector: { labels: { app: 'vm' } },
    exportTo: ['.'],
  },
];

export const invalidServiceEntries = [
  { ports: [{ number: 80, name: 'http' }] },
  { hosts: ['api.example.com'], location: 'MESH_OUTSIDE' },
  { hosts: ['api.example.com'], ports: [{ number: 80 }] },
];

export const workloadEntryExamples: readonly WorkloadEntrySpec[] = [
  { address: '1.2.3.4', labels: { app: 'vm' }, serviceAccount: 'vm-sa' },
  {
    address: 'vm.example.com',
    ports: { http: 8080 },
    network: 'vm-network',
    locality: 'us-east1/a',
    weight: 2,
  },
  { network: 'remote' },
];

export const invalidWorkloadEntries = [{ ports: { http: '8080' } }, { address: 1234 }];

export const gatewayClassExamples: readonly GatewayClassSpec[] = [
  { controllerName: 'istio.io/gateway-controller', description: 'The default Istio GatewayClass' },
  { controllerName: 'istio.io/mesh-controller' },
];

export const invalidGatewayClasses: readonly Record<string, unknown>[] = [
  { description: 'no controller' },
  { controllerName: '' },
];

// Kinds Ambient Mesh stores but does not act on (Kiali and istioctl list them): their top-level
// fields are typed, everything below them is kept as written.

export const virtualServiceExamples: readonly VirtualServiceSpec[] = [
  {
    hosts: ['reviews'],
    http: [
      {
        match: [{ headers: { 'end-user': { exact: 'jason' } } }],
        route: [{ destination: { host: 'reviews', subset: 'v2' } }],
      },
      { route: [{ destination: { host: 'reviews', subset: 'v3' } }] },
    ],
  },
  {
    hosts: ['bookinfo.example.com'],
    gateways: ['bookinfo-gateway', 'mesh'],
    tcp: [{ match: [{ port: 27017 }], route: [{ destination: { host: 'mongo', port: { number: 5555 } } }] }],
    exportTo: ['.'],
  },
];

export const invalidVirtualServices = [{ hosts: 'reviews' }, { gateways: [42] }];

export const destinationRuleExamples: readonly DestinationRuleSpec[] = [
  {
    host: 'reviews',
    trafficPolicy: { loadBalancer: { simple: 'RANDOM' } },
    subsets: [
      { name: 'v1', labels: { version: 'v1' } },
      { name: 'v2', labels: { version: 'v2' }, trafficPolicy: { loadBalancer: { simple: 'ROUND_ROBIN' } } },
    ],
  },
  { host: 'ratings.prod.svc.cluster.local', trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } } },
];

export const invalidDestinationRules = [{ subsets: [{ name: 'v1' }] }, { host: 'reviews', subsets: [{}] }];

export const istioGatewayExamples: readonly IstioGatewaySpec[] = [
  {
    selector: { app: 'my-gateway-controller' },
    servers: [{ port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['uk.bookinfo.com'] }],
  },
];

export const invalidIstioGateways = [{ selector: { app: 1 } }, { servers: {} }];

export const sidecarExamples: readonly SidecarSpec[] = [
  { egress: [{ hosts: ['./*', 'istio-system/*'] }] },
  {
    workloadSelector: { labels: { app: 'ratings' } },
    outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' },
  },
];

export const invalidSidecars = [{ workloadSelector: { labels: ['app'] } }, { egress: 'all' }];

export const envoyFilterExamples: readonly EnvoyFilterSpec[] = [
  {
    workloadSelector: { labels: { app: 'reviews' } },
    configPatches: [
      {
        applyTo: 'NETWORK_FILTER',
        match: { context: 'SIDECAR_OUTBOUND', listener: { portNumber: 9307 } },
        patch: { operation: 'MERGE', value: { name: 'envoy.filters.network.tcp_proxy' } },
      },
    ],
    priority: 10,
  },
];

export const invalidEnvoyFilters = [{ priority: 'high' }, { configPatches: {} }];

export const workloadGroupExamples: readonly WorkloadGroupSpec[] = [
  {
    metadata: { labels: { app: 'reviews' } },
    template: { ports: { grpc: 3550, http: 8080 }, serviceAccount: 'default' },
    probe: { initialDelaySeconds: 5, httpGet: { path: '/foo', port: 3100 } },
  },
];

export const invalidWorkloadGroups = [{ metadata: { labels: { app: 'reviews' } } }, { template: 'vm' }];

export const proxyConfigExamples: readonly ProxyConfigSpec[] = [
  { concurrency: 0, image: { imageType: 'distroless' } },
  { selector: { matchLabels: { app: 'ratings' } }, environmentVariables: { EXAMPLE: 'x' } },
];

export const invalidProxyConfigs = [{ concurrency: 'two' }, { environmentVariables: { EXAMPLE: 1 } }];

export const telemetryExamples: readonly TelemetrySpec[] = [
  { tracing: [{ randomSamplingPercentage: 10 }] },
  {
    selector: { matchLabels: { service: 'dataprocessor' } },
    accessLogging: [{ providers: [{ name: 'envoy' }] }],
  },
];

export const invalidTelemetries = [{ selector: { matchLabels: ['service'] } }, { metrics: {} }];

export const wasmPluginExamples: readonly WasmPluginSpec[] = [
  {
    selector: { matchLabels: { istio: 'ingressgateway' } },
    url: 'oci://ghcr.io/istio-ecosystem/wasm-extensions/basic_auth:1.12.0',
    phase: 'AUTHN',
    pluginConfig: { basic_auth_rules: [{ prefix: '/productpage', request_methods: ['GET', 'POST'] }] },
  },
  {
    targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'waypoint' }],
    url: 'file:///opt/filters/openid.wasm',
    sha256: '1ef0c9a92b0420cf25f7fe5d481b231464bc88f486ca3b9c83ed5cc21d2f6210',
    priority: 10,
  },
];

export const invalidWasmPlugins = [
  { phase: 'AUTHN' },
  { url: '' },
  { url: 'file:///a.wasm', priority: 'high' },
];
