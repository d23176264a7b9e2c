/**
 * Resources written the way Istio's documentation writes them, for the fields Ambient Mesh
 * supports. The CRD test checks that our CRDs accept every one of them (and reject bad values).
 */
export const authorizationPolicyExamples: readonly Record<string, unknown>[] = [
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

export const peerAuthenticationExamples: readonly Record<string, unknown>[] = [
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

export const invalidAuthorizationPolicies: readonly Record<string, unknown>[] = [
  { action: 'PERMIT' },
  { rules: [{ when: [{ values: ['x'] }] }] },
  { rules: [{ from: [{ source: { principals: 'not-a-list' } }] }] },
];

export const invalidPeerAuthentications: readonly Record<string, unknown>[] = [
  { mtls: { mode: 'STRICTER' } },
  { portLevelMtls: { '80': { mode: 'ON' } } },
];

export const gatewayExamples: readonly Record<string, unknown>[] = [
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
