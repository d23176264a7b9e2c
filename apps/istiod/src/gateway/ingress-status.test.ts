import { systemTimers } from '@ambient-mesh/kube';
import { FakeApiServer, until } from '@ambient-mesh/kube/testing';
import { silentLogger, type Logs } from '@ambient-mesh/runtime';
import { CertificateAuthority } from '@ambient-mesh/spiffe-certs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { KubeObject } from '../kube/objects.ts';
import { createGatewaySide, type GatewaySide } from './gateway-side.ts';
import { hostnamesIntersect, ingressAcceptance } from './ingress-routes.ts';
import { kubeGatewayApi, kubeGatewayInformers } from './kube-gateway-api.ts';
import { evaluateListener, listenerConflicts, type ListenerRefs } from './listener-status.ts';
import type { GatewayListener, GatewayModel } from './model.ts';

type Cond = { type: string; status: string; reason?: string; message?: string };

const noRefs: ListenerRefs = { secret: () => undefined, secretGrantAllows: () => false };
const gwBase = { namespace: 'infra', generation: 3 };

function condOf(conds: readonly Cond[], type: string): Cond | undefined {
  return conds.find(c => c.type === type);
}

describe('listener status of ingress Gateways', () => {
  const https = (
    ref: Partial<{ group: string; kind: string; name: string; namespace: string }>,
  ): GatewayListener => ({
    name: 'https',
    port: 443,
    protocol: 'HTTPS',
    allowedFrom: 'Same',
    tls: {
      mode: 'Terminate',
      certificateRefs: [{ group: '', kind: 'Secret', name: 'cert', namespace: 'infra', ...ref }],
    },
  });
  const refs = (secrets: Record<string, boolean>, grant = false): ListenerRefs => ({
    secret: (ns, name) => {
      const v = secrets[`${ns}/${name}`];
      return v === undefined ? undefined : { valid: v };
    },
    secretGrantAllows: () => grant,
  });

  it('a listener with a usable Secret is Accepted, Programmed and ResolvedRefs with HTTPRoute and GRPCRoute', () => {
    const e = evaluateListener(gwBase, https({}), refs({ 'infra/cert': true }), undefined);
    expect(e.supportedKinds.map(k => k.kind)).toEqual(['HTTPRoute', 'GRPCRoute']);
    expect(e.conditions.map(c => [c.type, c.status, c.reason, c.observedGeneration])).toEqual([
      ['Accepted', 'True', 'Accepted', 3],
      ['Conflicted', 'False', 'NoConflicts', 3],
      ['Programmed', 'True', 'Programmed', 3],
      ['ResolvedRefs', 'True', 'ResolvedRefs', 3],
    ]);
  });

  it.each([
    ['a missing Secret', {}, {}],
    ['a Secret without a usable certificate', {}, { 'infra/cert': false }],
    ['a reference of an unsupported group', { group: 'wrong.group.company.io' }, { 'infra/cert': true }],
    ['a reference of an unsupported kind', { kind: 'WrongKind' }, { 'infra/cert': true }],
  ])('%s gives ResolvedRefs=False InvalidCertificateRef and Programmed=False', (_what, ref, secrets) => {
    const e = evaluateListener(gwBase, https(ref), refs(secrets), undefined);
    expect(condOf(e.conditions, 'ResolvedRefs')).toMatchObject({
      status: 'False',
      reason: 'InvalidCertificateRef',
    });
    expect(condOf(e.conditions, 'Programmed')).toMatchObject({ status: 'False', reason: 'Invalid' });
    expect(condOf(e.conditions, 'Accepted')?.status).toBe('True');
  });

  it('a MUTUAL listener needs ca.crt in its Secret; a TLS passthrough listener needs no Secret and takes TLSRoute', () => {
    const mutual = https({});
    const l: GatewayListener = { ...mutual, tls: { ...mutual.tls!, mutual: true } };
    const withCa: ListenerRefs = {
      secret: () => ({ valid: true, ca: true }),
      secretGrantAllows: () => false,
    };
    const noCa: ListenerRefs = { secret: () => ({ valid: true, ca: false }), secretGrantAllows: () => false };
    expect(condOf(evaluateListener(gwBase, l, withCa, undefined).conditions, 'Programmed')?.status).toBe(
      'True',
    );
    const missing = evaluateListener(gwBase, l, noCa, undefined);
    expect(condOf(missing.conditions, 'ResolvedRefs')).toMatchObject({
      status: 'False',
      reason: 'InvalidCertificateRef',
      message: expect.stringMatching(/MUTUAL needs ca\.crt/) as unknown,
    });
    const passthrough: GatewayListener = {
      name: 'tls',
      port: 443,
      protocol: 'TLS',
      allowedFrom: 'Same',
      tls: { mode: 'Passthrough', certificateRefs: [] },
    };
    const e = evaluateListener(gwBase, passthrough, refs({}), undefined);
    expect(e.supportedKinds.map(k => k.kind)).toEqual(['TLSRoute']);
    expect(e.conditions.map(c => [c.type, c.status])).toEqual([
      ['Accepted', 'True'],
      ['Conflicted', 'False'],
      ['Programmed', 'True'],
      ['ResolvedRefs', 'True'],
    ]);
  });

  it('HTTPS and TLS listeners may share a port; the same hostname on both conflicts', () => {
    const tls = (hostname?: string): GatewayListener => ({
      name: 'tls',
      port: 443,
      protocol: 'TLS',
      allowedFrom: 'Same',
      ...(hostname === undefined ? {} : { hostname }),
      tls: { mode: 'Passthrough', certificateRefs: [] },
    });
    const site: GatewayListener = { ...https({}), hostname: 'www.example.com' };
    expect(listenerConflicts([site, tls('db.example.com')]).size).toBe(0);
    expect(listenerConflicts([site, tls('www.example.com')]).get('tls')?.reason).toBe('HostnameConflict');
    expect(listenerConflicts([site, { ...tls(), protocol: 'TCP' }]).get('tls')?.reason).toBe(
      'ProtocolConflict',
    );
  });

  it('a Secret of another namespace needs a ReferenceGrant (RefNotPermitted without one)', () => {
    const l = https({ namespace: 'certs' });
    const secrets = { 'certs/cert': true };
    expect(
      condOf(evaluateListener(gwBase, l, refs(secrets, false), undefined).conditions, 'ResolvedRefs'),
    ).toMatchObject({
      status: 'False',
      reason: 'RefNotPermitted',
    });
    expect(
      condOf(evaluateListener(gwBase, l, refs(secrets, true), undefined).conditions, 'ResolvedRefs'),
    ).toMatchObject({
      status: 'True',
      reason: 'ResolvedRefs',
    });
  });

  it('allowedRoutes.kinds the protocol cannot take give InvalidRouteKinds and only the valid kinds', () => {
    const l = (kinds: string[]): GatewayListener => ({
      name: 'http',
      port: 80,
      protocol: 'HTTP',
      allowedFrom: 'Same',
      allowedKinds: kinds.map(kind => ({ group: 'gateway.networking.k8s.io', kind })),
    });
    const none = evaluateListener(gwBase, l(['FooRoute']), noRefs, undefined);
    expect(none.supportedKinds).toEqual([]);
    expect(condOf(none.conditions, 'ResolvedRefs')).toMatchObject({
      status: 'False',
      reason: 'InvalidRouteKinds',
    });
    const mixed = evaluateListener(gwBase, l(['HTTPRoute', 'FooRoute']), noRefs, undefined);
    expect(mixed.supportedKinds).toEqual([{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute' }]);
    expect(condOf(mixed.conditions, 'ResolvedRefs')).toMatchObject({
      status: 'False',
      reason: 'InvalidRouteKinds',
    });
    const ok = evaluateListener(gwBase, l(['HTTPRoute']), noRefs, undefined);
    expect(condOf(ok.conditions, 'ResolvedRefs')?.status).toBe('True');
  });

  it('an unsupported protocol is not Accepted; listeners sharing a port conflict', () => {
    const udp: GatewayListener = { name: 'udp', port: 53, protocol: 'UDP', allowedFrom: 'Same' };
    expect(condOf(evaluateListener(gwBase, udp, noRefs, undefined).conditions, 'Accepted')).toMatchObject({
      status: 'False',
      reason: 'UnsupportedProtocol',
    });
    const a: GatewayListener = { name: 'a', port: 80, protocol: 'HTTP', allowedFrom: 'Same' };
    const b: GatewayListener = { name: 'b', port: 80, protocol: 'TCP', allowedFrom: 'Same' };
    const c: GatewayListener = {
      name: 'c',
      port: 81,
      protocol: 'HTTP',
      allowedFrom: 'Same',
      hostname: 'x.example.com',
    };
    const d: GatewayListener = {
      name: 'd',
      port: 81,
      protocol: 'HTTP',
      allowedFrom: 'Same',
      hostname: 'y.example.com',
    };
    const conflicts = listenerConflicts([a, b, c, d]);
    expect(conflicts.get('a')?.reason).toBe('ProtocolConflict');
    expect(conflicts.has('c')).toBe(false);
    const e = evaluateListener(gwBase, a, noRefs, conflicts.get('a'));
    expect(condOf(e.conditions, 'Conflicted')).toMatchObject({ status: 'True', reason: 'ProtocolConflict' });
    expect(listenerConflicts([c, { ...d, hostname: 'x.example.com' }]).get('c')?.reason).toBe(
      'HostnameConflict',
    );
  });
});

describe('route acceptance by ingress Gateway listeners', () => {
  const gw = (listeners: GatewayListener[]): GatewayModel => ({
    namespace: 'infra',
    name: 'gw',
    uid: 'u',
    generation: 1,
    className: 'istio',
    listeners,
    labels: {},
    annotations: {},
    status: { conditions: [], addresses: [], listeners: [] },
  });
  const route = (namespace: string, hostnames: string[] = []) => ({
    kind: 'HTTPRoute' as const,
    namespace,
    hostnames,
    generation: 2,
  });
  const ref = (extra: { sectionName?: string; port?: number } = {}) => ({
    group: 'gateway.networking.k8s.io',
    kind: 'Gateway',
    namespace: 'infra',
    name: 'gw',
    ...extra,
  });
  const labels = (ns: string): Record<string, string> => (ns === 'apps' ? { team: 'a' } : {});
  const http = (name: string, extra: Partial<GatewayListener> = {}): GatewayListener => ({
    name,
    port: 80,
    protocol: 'HTTP',
    allowedFrom: 'Same',
    ...extra,
  });

  it('accepts a route on every listener that takes it, naming them', () => {
    const a = ingressAcceptance(route('infra'), ref(), gw([http('a'), http('b', { port: 8080 })]), labels);
    expect(a.condition).toMatchObject({ status: 'True', reason: 'Accepted', observedGeneration: 2 });
    expect(a.listeners).toEqual(['a', 'b']);
    expect(
      ingressAcceptance(
        route('infra'),
        ref({ port: 8080 }),
        gw([http('a'), http('b', { port: 8080 })]),
        labels,
      ).listeners,
    ).toEqual(['b']);
  });

  it('accepts a TLSRoute only on TLS listeners, and an HTTPRoute not on them', () => {
    const tls: GatewayListener = {
      name: 'tls',
      port: 443,
      protocol: 'TLS',
      allowedFrom: 'Same',
      tls: { mode: 'Passthrough', certificateRefs: [] },
    };
    const g = gw([http('a'), tls]);
    const tlsRoute = { ...route('infra', ['secure.example.com']), kind: 'TLSRoute' as const };
    expect(ingressAcceptance(tlsRoute, ref(), g, labels).listeners).toEqual(['tls']);
    expect(ingressAcceptance(route('infra'), ref(), g, labels).listeners).toEqual(['a']);
    expect(ingressAcceptance(tlsRoute, ref({ sectionName: 'a' }), g, labels).condition).toMatchObject({
      status: 'False',
      reason: 'NotAllowedByListeners',
    });
  });

  it('NoMatchingParent for a sectionName or port no listener has, and for a missing Gateway', () => {
    expect(
      ingressAcceptance(route('infra'), ref({ sectionName: 'nope' }), gw([http('a')]), labels).condition,
    ).toMatchObject({
      status: 'False',
      reason: 'NoMatchingParent',
    });
    expect(
      ingressAcceptance(route('infra'), ref({ port: 9 }), gw([http('a')]), labels).condition.reason,
    ).toBe('NoMatchingParent');
    expect(ingressAcceptance(route('infra'), ref(), undefined, labels).condition.reason).toBe(
      'NoMatchingParent',
    );
  });

  it('NotAllowedByListeners for a namespace or a kind the listeners do not allow', () => {
    expect(ingressAcceptance(route('apps'), ref(), gw([http('a')]), labels).condition).toMatchObject({
      status: 'False',
      reason: 'NotAllowedByListeners',
    });
    const selector = http('a', { allowedFrom: 'Selector', allowedSelector: { matchLabels: { team: 'a' } } });
    expect(ingressAcceptance(route('apps'), ref(), gw([selector]), labels).condition.status).toBe('True');
    expect(ingressAcceptance(route('other'), ref(), gw([selector]), labels).condition.reason).toBe(
      'NotAllowedByListeners',
    );
    const grpcOnly = http('a', { allowedKinds: [{ group: 'gateway.networking.k8s.io', kind: 'GRPCRoute' }] });
    expect(ingressAcceptance(route('infra'), ref(), gw([grpcOnly]), labels).condition.reason).toBe(
      'NotAllowedByListeners',
    );
  });

  it('NoMatchingListenerHostname when only the hostnames keep the route off every listener', () => {
    const l = http('a', { hostname: '*.example.com' });
    expect(
      ingressAcceptance(route('infra', ['foo.other.org']), ref(), gw([l]), labels).condition,
    ).toMatchObject({
      status: 'False',
      reason: 'NoMatchingListenerHostname',
    });
    expect(
      ingressAcceptance(route('infra', ['a.example.com']), ref(), gw([l]), labels).condition.status,
    ).toBe('True');
  });

  it('intersects hostnames with wildcards as Gateway API does', () => {
    expect(hostnamesIntersect(undefined, 'a.b')).toBe(true);
    expect(hostnamesIntersect('*.example.com', 'foo.example.com')).toBe(true);
    expect(hostnamesIntersect('*.example.com', 'example.com')).toBe(false);
    expect(hostnamesIntersect('foo.example.com', '*.example.com')).toBe(true);
    expect(hostnamesIntersect('*.example.com', '*.foo.example.com')).toBe(true);
    expect(hostnamesIntersect('a.example.com', 'b.example.com')).toBe(false);
  });
});

const API = '/apis/gateway.networking.k8s.io/v1';
const logs: Logs = { for: () => silentLogger() } as unknown as Logs;

type Stored = KubeObject &
  Record<string, unknown> & {
    status?: {
      conditions?: Cond[];
      addresses?: { type: string; value: string }[];
      listeners?: {
        name: string;
        attachedRoutes: number;
        supportedKinds: { kind: string }[];
        conditions: Cond[];
      }[];
      parents?: {
        parentRef: { name: string; namespace?: string; sectionName?: string };
        controllerName: string;
        conditions: Cond[];
      }[];
    };
  };

describe('ingress Gateway and route status through the Gateway side', () => {
  let server: FakeApiServer;
  let side: GatewaySide | undefined;
  let leader = true;

  beforeEach(async () => {
    server = await FakeApiServer.start();
    leader = true;
    for (const ns of ['infra', 'apps', 'certs'])
      server.put('/api/v1/namespaces', {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: ns, labels: {} },
      });
    server.put('/api/v1/services', {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web', namespace: 'infra' },
      spec: { clusterIP: '10.96.0.10', ports: [{ port: 8080, name: 'http' }] },
    });
  });

  afterEach(async () => {
    await side?.stop();
    side = undefined;
    await server.close();
  });

  function start(): GatewaySide {
    const api = kubeGatewayApi(server.kubeConfig());
    side = createGatewaySide({
      deps: { api, informers: kubeGatewayInformers(server.kubeConfig()) },
      image: 'ambient-mesh/waypoint:0.1.0',
      podNamespace: 'istio-system',
      domain: 'cluster.local',
      clusterId: 'Kubernetes',
      trustDomain: 'cluster.local',
      logs,
      timers: systemTimers,
      isLeader: () => leader,
    });
    void side.start();
    return side;
  }

  const secret = (name: string, ns: string, data: Record<string, string>): Stored => ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: ns },
    type: 'kubernetes.io/tls',
    data,
  });

  const gateway = (): Stored => ({
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name: 'gw', namespace: 'infra', uid: 'uid-gw', generation: 1 },
    spec: {
      gatewayClassName: 'istio',
      listeners: [
        { name: 'http', port: 80, protocol: 'HTTP', allowedRoutes: { namespaces: { from: 'Same' } } },
        {
          name: 'https',
          port: 443,
          protocol: 'HTTPS',
          hostname: '*.example.com',
          allowedRoutes: { namespaces: { from: 'All' } },
          tls: { certificateRefs: [{ name: 'cert', namespace: 'certs' }] },
        },
      ],
    },
  });

  const httpRoute = (name: string, ns: string, spec: Record<string, unknown>): Stored => ({
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name, namespace: ns, generation: 1 },
    spec,
  });

  const parentOf = (name: string, ns: string, section?: string) =>
    (server.get(`${API}/httproutes`, name, ns) as Stored | undefined)?.status?.parents?.find(
      p => p.parentRef.name === 'gw' && p.parentRef.sectionName === section,
    );
  const listenerOf = (name: string) =>
    (server.get(`${API}/gateways`, 'gw', 'infra') as Stored | undefined)?.status?.listeners?.find(
      l => l.name === name,
    );

  it('writes a TLSRoute (v1alpha2) parent on a TLS passthrough listener, and counts it there', async () => {
    const TLS_API = '/apis/gateway.networking.k8s.io/v1alpha2';
    server.put(`${API}/gateways`, {
      ...gateway(),
      spec: {
        gatewayClassName: 'istio',
        listeners: [{ name: 'tls', port: 443, protocol: 'TLS', tls: { mode: 'Passthrough' } }],
      },
    });
    server.put(`${TLS_API}/tlsroutes`, {
      apiVersion: 'gateway.networking.k8s.io/v1alpha2',
      kind: 'TLSRoute',
      metadata: { name: 'secure', namespace: 'infra', generation: 1 },
      spec: {
        parentRefs: [{ name: 'gw', sectionName: 'tls' }],
        hostnames: ['secure.example.com'],
        rules: [{ backendRefs: [{ name: 'web', port: 8080 }] }],
      },
    });
    start();
    const parent = await until('TLSRoute parent status', () =>
      (server.get(`${TLS_API}/tlsroutes`, 'secure', 'infra') as Stored | undefined)?.status?.parents?.find(
        p => p.parentRef.name === 'gw',
      ),
    );
    // As upstream with ambient on: ResolvedWaypoints on ingress parents too.
    expect(parent.conditions.map(c => [c.type, c.status, c.message])).toEqual([
      ['Accepted', 'True', 'Route was valid'],
      ['ResolvedRefs', 'True', 'All references resolved'],
      ['ResolvedWaypoints', 'True', 'All waypoints resolved'],
    ]);
    await until('tls listener attachedRoutes 1', () => listenerOf('tls')?.attachedRoutes === 1 || undefined);
    expect(listenerOf('tls')?.supportedKinds.map(k => k.kind)).toEqual(['TLSRoute']);
  });

  it('writes listener checks, LoadBalancer addresses, route parents and attachedRoutes', async () => {
    const ca = await CertificateAuthority.createSelfSigned();
    const cert = await ca.signServingCertificate({ dnsNames: ['*.example.com'], ttlSeconds: 3600 });
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    server.put(
      '/api/v1/secrets',
      secret('cert', 'certs', { 'tls.crt': b64(cert.certPem), 'tls.key': b64(cert.keyPem) }),
    );
    server.put(`${API}/gateways`, gateway());
    server.put(
      `${API}/httproutes`,
      httpRoute('ok', 'infra', {
        parentRefs: [{ name: 'gw', namespace: 'infra', sectionName: 'http' }],
        rules: [{ backendRefs: [{ name: 'web', port: 8080 }] }],
      }),
    );
    server.put(
      `${API}/httproutes`,
      httpRoute('missing-backend', 'apps', {
        parentRefs: [{ name: 'gw', namespace: 'infra', sectionName: 'https' }],
        hostnames: ['a.example.com'],
        rules: [{ backendRefs: [{ name: 'nope', port: 8080 }] }],
      }),
    );
    server.put(
      `${API}/httproutes`,
      httpRoute('other-ns', 'apps', {
        parentRefs: [{ name: 'gw', namespace: 'infra', sectionName: 'http' }],
        rules: [{ backendRefs: [{ name: 'web', namespace: 'infra', port: 8080 }] }],
      }),
    );
    server.put(
      `${API}/httproutes`,
      httpRoute('bad-host', 'apps', {
        parentRefs: [{ name: 'gw', namespace: 'infra', sectionName: 'https' }],
        hostnames: ['foo.other.org'],
        rules: [{ backendRefs: [{ name: 'web', namespace: 'infra', port: 8080 }] }],
      }),
    );
    start();

    // The certificate of another namespace is not permitted until a ReferenceGrant allows it.
    await until('https listener RefNotPermitted', () =>
      listenerOf('https')?.conditions.find(c => c.type === 'ResolvedRefs' && c.reason === 'RefNotPermitted'),
    );
    expect(listenerOf('https')?.conditions.find(c => c.type === 'Programmed')).toMatchObject({
      status: 'False',
      reason: 'Invalid',
    });
    server.put(`/apis/gateway.networking.k8s.io/v1beta1/referencegrants`, {
      apiVersion: 'gateway.networking.k8s.io/v1beta1',
      kind: 'ReferenceGrant',
      metadata: { name: 'certs', namespace: 'certs' },
      spec: {
        from: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', namespace: 'infra' }],
        to: [{ group: '', kind: 'Secret' }],
      },
    });
    await until('https listener resolved', () =>
      listenerOf('https')?.conditions.find(c => c.type === 'ResolvedRefs' && c.status === 'True'),
    );

    expect(parentOf('ok', 'infra', 'http')?.conditions).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ type: 'Accepted', status: 'True', reason: 'Accepted' }),
        expect.objectContaining({ type: 'ResolvedRefs', status: 'True', reason: 'ResolvedRefs' }),
      ]),
    );
    await until('missing-backend parent status', () => parentOf('missing-backend', 'apps', 'https'));
    expect(parentOf('missing-backend', 'apps', 'https')?.conditions).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ type: 'Accepted', status: 'True' }),
        expect.objectContaining({ type: 'ResolvedRefs', status: 'False', reason: 'BackendNotFound' }),
      ]),
    );
    await until(
      'other-ns and bad-host parent status',
      () => parentOf('other-ns', 'apps', 'http') && parentOf('bad-host', 'apps', 'https'),
    );
    expect(parentOf('other-ns', 'apps', 'http')?.conditions.find(c => c.type === 'Accepted')).toMatchObject({
      status: 'False',
      reason: 'NotAllowedByListeners',
    });
    // Cross-namespace backend without a grant for Services.
    expect(
      parentOf('other-ns', 'apps', 'http')?.conditions.find(c => c.type === 'ResolvedRefs'),
    ).toMatchObject({
      status: 'False',
      reason: 'RefNotPermitted',
    });
    expect(parentOf('bad-host', 'apps', 'https')?.conditions.find(c => c.type === 'Accepted')).toMatchObject({
      status: 'False',
      reason: 'NoMatchingListenerHostname',
    });
    expect(parentOf('ok', 'infra', 'http')?.controllerName).toBe('istio.io/gateway-controller');
    // The parentRef is echoed as written: its namespace is named because the route names it.
    expect(parentOf('ok', 'infra', 'http')?.parentRef).toMatchObject({ namespace: 'infra' });

    // attachedRoutes counts accepted routes, including one whose backend is missing.
    await until(
      'attachedRoutes',
      () => listenerOf('http')?.attachedRoutes === 1 && listenerOf('https')?.attachedRoutes === 1,
    );

    // Programmed waits for the LoadBalancer address; then status.addresses carries it.
    const gwCond = (type: string) =>
      (server.get(`${API}/gateways`, 'gw', 'infra') as Stored | undefined)?.status?.conditions?.find(
        c => c.type === type,
      );
    await until('AddressNotAssigned', () => gwCond('Programmed')?.reason === 'AddressNotAssigned');
    expect(gwCond('Accepted')).toMatchObject({ status: 'True', reason: 'Accepted' });
    const svc = await until(
      'the generated Service',
      () => server.get('/api/v1/services', 'gw-istio', 'infra') as Stored | undefined,
    );
    server.put('/api/v1/services', {
      ...svc,
      spec: { ...(svc as { spec: object }).spec, clusterIP: '10.96.0.20', clusterIPs: ['10.96.0.20'] },
      status: { loadBalancer: { ingress: [{ ip: '10.211.134.200' }] } },
    });
    await until('Programmed', () => gwCond('Programmed')?.status === 'True');
    expect((server.get(`${API}/gateways`, 'gw', 'infra') as Stored).status?.addresses).toEqual([
      { type: 'IPAddress', value: '10.211.134.200' },
    ]);
  });

  it('a malformed Secret is InvalidCertificateRef, and nothing is written while not the leader', async () => {
    leader = false;
    server.put(
      '/api/v1/secrets',
      secret('cert', 'infra', { 'tls.crt': 'bm90IGEgY2VydA==', 'tls.key': 'bm9wZQ==' }),
    );
    const gw = gateway();
    (gw['spec'] as { listeners: { tls?: unknown }[] }).listeners[1]!.tls = {
      certificateRefs: [{ name: 'cert' }],
    };
    server.put(`${API}/gateways`, gw);
    server.put(
      `${API}/httproutes`,
      httpRoute('ok', 'infra', {
        parentRefs: [{ name: 'gw' }],
        rules: [{ backendRefs: [{ name: 'web', port: 8080 }] }],
      }),
    );
    const s = start();
    await until(
      'informers listed',
      () => server.count('GET', '/api/v1/secrets') > 0 && server.count('GET', `${API}/httproutes`) > 0,
    );
    await s.controller?.idle();
    expect((server.get(`${API}/gateways`, 'gw', 'infra') as Stored).status).toBeUndefined();
    expect((server.get(`${API}/httproutes`, 'ok', 'infra') as Stored).status).toBeUndefined();
    leader = true;
    s.resync();
    await until('InvalidCertificateRef', () =>
      listenerOf('https')?.conditions.find(
        c => c.type === 'ResolvedRefs' && c.reason === 'InvalidCertificateRef',
      ),
    );
    await until('route parent written', () => parentOf('ok', 'infra'));
    expect(parentOf('ok', 'infra')?.conditions.find(c => c.type === 'Accepted')?.status).toBe('True');
    expect(parentOf('ok', 'infra')?.parentRef.namespace).toBeUndefined();
  });
});
