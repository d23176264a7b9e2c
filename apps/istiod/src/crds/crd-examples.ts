/**
 * Resources written the way Istio's documentation writes them, for the fields Ambient Mesh
 * supports. The CRD test checks that our CRDs accept every one of them (and reject bad values).
 * The valid ones are declared with the spec types generated from those CRDs (so the types accept
 * them); @ambient-mesh/mesh-api's tests check that those types reject the invalid ones.
 */
import type {
  AuthorizationPolicySpec,
  GatewayClassSpec,
  GatewaySpec,
  PeerAuthenticationSpec,
  RequestAuthenticationSpec,
  ServiceEntrySpec,
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

export const workloadGroupExamples: readonly WorkloadGroupSpec[] = [
  {
    metadata: { labels: { app: 'vm' }, annotations: { team: 'a' } },
    template: { serviceAccount: 'vm-sa', ports: { http: 8080 }, network: 'vm-network' },
    probe: { httpGet: { path: '/ready', port: 8080 }, periodSeconds: 5 },
  },
  { template: {} },
];

export const invalidWorkloadGroups = [
  { metadata: { labels: { a: 1 } }, template: {} },
  { template: { ports: { http: 'x' } } },
  {},
];

export const gatewayClassExamples: readonly GatewayClassSpec[] = [
  { controllerName: 'istio.io/gateway-controller', description: 'The default Istio GatewayClass' },
  { controllerName: 'istio.io/mesh-controller' },
];

export const invalidGatewayClasses: readonly Record<string, unknown>[] = [
  { description: 'no controller' },
  { controllerName: '' },
];
