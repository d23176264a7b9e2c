import { Informer, KubeClient, clientSource, systemTimers } from '@ambient-mesh/kube';
import { FakeApiServer, until } from '@ambient-mesh/kube/testing';
import { silentLogger } from '@ambient-mesh/runtime';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { KubeObject } from '../kube/objects.ts';
import { GatewayController, type GatewayInformerFactory } from './controller.ts';
import { kubeGatewayApi } from './kube-gateway-api.ts';

const GW = '/apis/gateway.networking.k8s.io/v1/gateways';
const CLASSES = '/apis/gateway.networking.k8s.io/v1/gatewayclasses';
const SERVICES = '/api/v1/services';
const NAMESPACES = '/api/v1/namespaces';
const TAGS = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations';

type Stored = KubeObject &
  Record<string, unknown> & {
    status?: {
      conditions?: { type: string; status: string; reason?: string; message?: string }[];
      addresses?: unknown[];
      listeners?: {
        name: string;
        attachedRoutes: number;
        supportedKinds: unknown[];
        conditions: { type: string; status: string; reason?: string; message?: string }[];
      }[];
    };
  };

let server: FakeApiServer;
let controller: GatewayController | undefined;

function informers(): GatewayInformerFactory {
  const client = new KubeClient(server.kubeConfig());
  const paths = {
    GatewayClass: CLASSES,
    Gateway: GW,
    GatewayService: SERVICES,
    Namespace: NAMESPACES,
    RevisionTag: TAGS,
    ConfigMap: '/api/v1/configmaps',
    HTTPRoute: '/apis/gateway.networking.k8s.io/v1/httproutes',
    GRPCRoute: '/apis/gateway.networking.k8s.io/v1/grpcroutes',
    TLSRoute: '/apis/gateway.networking.k8s.io/v1alpha2/tlsroutes',
    Service: SERVICES,
    ReferenceGrant: '/apis/gateway.networking.k8s.io/v1beta1/referencegrants',
    Secret: '/api/v1/secrets',
  } as const;
  return kind =>
    new Informer<KubeObject>({
      name: kind,
      source: clientSource<KubeObject>(client, paths[kind]),
      minWatchMs: 0,
    });
}

function start(
  isLeader: () => boolean = () => true,
  attachedRoutes?: (gateway: string, listener: { name: string; port: number }) => number,
  revision?: string,
  caAddress?: string,
): GatewayController {
  controller = new GatewayController({
    ...(attachedRoutes === undefined ? {} : { attachedRoutes }),
    ...(revision === undefined ? {} : { revision }),
    api: kubeGatewayApi(server.kubeConfig()),
    informers: informers(),
    render: {
      image: 'ambient-mesh/waypoint:0.1.0',
      discoveryAddress: `${revision === undefined ? 'istiod' : `istiod-${revision}`}.istio-system.svc:15012`,
      clusterId: 'Kubernetes',
      trustDomain: 'cluster.local',
      ...(revision === undefined ? {} : { revision }),
      ...(caAddress === undefined ? {} : { caAddress }),
    },
    domain: 'cluster.local',
    logger: silentLogger(),
    timers: systemTimers,
    isLeader,
  });
  void controller.start();
  return controller;
}

function gateway(name: string, className: string, extra: Record<string, unknown> = {}): Stored {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: {
      name,
      namespace: 'app',
      uid: `uid-${name}`,
      generation: 1,
      labels: { 'istio.io/waypoint-for': 'service' },
    },
    spec: { gatewayClassName: className, listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }] },
    ...extra,
  };
}

const condition = (o: Stored | undefined, type: string) => o?.status?.conditions?.find(c => c.type === type);

beforeEach(async () => {
  server = await FakeApiServer.start();
});

afterEach(async () => {
  await controller?.stop();
  controller = undefined;
  await server.close();
});

describe('GatewayController', () => {
  it('creates the istio and istio-waypoint GatewayClasses with upstream controller names, Accepted', async () => {
    start();
    const accepted = (name: string) => condition(server.get(CLASSES, name) as Stored | undefined, 'Accepted');
    await until(
      'both classes Accepted',
      () => accepted('istio')?.status === 'True' && accepted('istio-waypoint'),
    );
    expect((server.get(CLASSES, 'istio') as unknown as { spec: unknown }).spec).toEqual({
      controllerName: 'istio.io/gateway-controller',
      description: 'The default Istio GatewayClass',
    });
    expect(
      (server.get(CLASSES, 'istio-waypoint') as unknown as { spec: { controllerName: string } }).spec
        .controllerName,
    ).toBe('istio.io/mesh-controller');
    expect(accepted('istio-waypoint')).toMatchObject({
      reason: 'Accepted',
      message: 'Handled by Istio controller',
    });
  });

  it("points the waypoint's CA_ADDR at istiod, or at the external CA server when one is configured", async () => {
    const env = async (name: string): Promise<Record<string, string | undefined>> => {
      const d = await until(
        `the ${name} Deployment`,
        () => server.get('/apis/apps/v1/deployments', name, 'app') as Stored | undefined,
      );
      const spec = (
        d as unknown as {
          spec: { template: { spec: { containers: { env: { name: string; value?: string }[] }[] } } };
        }
      ).spec.template.spec;
      return Object.fromEntries((spec.containers[0]?.env ?? []).map(e => [e.name, e.value]));
    };
    server.put(GW, gateway('waypoint', 'istio-waypoint'));
    start();
    expect(await env('waypoint')).toMatchObject({
      CA_ADDR: 'istiod.istio-system.svc:15012',
      XDS_ADDRESS: 'istiod.istio-system.svc:15012',
    });
    await controller?.stop();
    server.put(GW, gateway('external', 'istio-waypoint'));
    start(() => true, undefined, undefined, 'cert-manager-istio-csr.cert-manager.svc:443');
    // The CA moves; xDS stays with istiod.
    expect(await env('external')).toMatchObject({
      CA_ADDR: 'cert-manager-istio-csr.cert-manager.svc:443',
      XDS_ADDRESS: 'istiod.istio-system.svc:15012',
    });
  });

  it('deploys a waypoint Gateway (ServiceAccount, Deployment, Service) and reports Programmed once the Service has an IP', async () => {
    server.put(GW, gateway('waypoint', 'istio-waypoint'));
    start();
    const svc = await until(
      'waypoint Service',
      () => server.get(SERVICES, 'waypoint', 'app') as Stored | undefined,
    );
    expect(server.get('/api/v1/serviceaccounts', 'waypoint', 'app')).toBeDefined();
    const deployment = server.get('/apis/apps/v1/deployments', 'waypoint', 'app') as Stored;
    const owner = {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'Gateway',
      name: 'waypoint',
      uid: 'uid-waypoint',
    };
    expect(deployment.metadata?.ownerReferences).toEqual([owner]);
    // The proxy drains within the pod's grace period: its deadline is the pod's.
    const podSpec = (
      deployment as {
        spec: {
          template: {
            spec: {
              terminationGracePeriodSeconds: number;
              containers: { env: { name: string; value?: string }[] }[];
            };
          };
        };
      }
    ).spec.template.spec;
    expect(podSpec.containers[0]?.env).toContainEqual({
      name: 'TERMINATION_GRACE_PERIOD_SECONDS',
      value: String(podSpec.terminationGracePeriodSeconds),
    });
    expect(svc.metadata?.ownerReferences).toEqual([owner]);
    expect(svc.metadata?.labels).toMatchObject({
      'gateway.networking.k8s.io/gateway-name': 'waypoint',
      'gateway.istio.io/managed': 'istio.io-mesh-controller',
      'istio.io/waypoint-for': 'service',
    });
    expect((svc as { spec: unknown }).spec).toMatchObject({
      type: 'ClusterIP',
      selector: { 'gateway.networking.k8s.io/gateway-name': 'waypoint' },
      ports: [
        { name: 'status-port', port: 15021, appProtocol: 'tcp' },
        { name: 'mesh', port: 15008, appProtocol: 'hbone' },
      ],
    });
    // No cluster IP yet: not Programmed.
    const gw = () => server.get(GW, 'waypoint', 'app') as Stored;
    await until('Programmed=False', () => condition(gw(), 'Programmed')?.status === 'False');
    expect(condition(gw(), 'Programmed')?.reason).toBe('AddressNotAssigned');
    expect(condition(gw(), 'Accepted')).toMatchObject({ status: 'True', reason: 'Accepted' });
    // The apiserver allocates the IP.
    server.put(SERVICES, {
      ...svc,
      spec: { ...(svc as { spec: object }).spec, clusterIP: '10.96.0.20', clusterIPs: ['10.96.0.20'] },
    });
    await until('Programmed=True', () => condition(gw(), 'Programmed')?.status === 'True');
    expect(condition(gw(), 'Programmed')).toMatchObject({
      reason: 'Programmed',
      message: 'Resource programmed, assigned to service(s) waypoint.app.svc.cluster.local:15008',
    });
    expect(gw().status?.addresses).toEqual([
      { type: 'IPAddress', value: '10.96.0.20' },
      { type: 'Hostname', value: 'waypoint.app.svc.cluster.local' },
    ]);
  });

  it('honours spec.infrastructure labels and annotations on the pod template and Service', async () => {
    server.put(
      GW,
      gateway('wp2', 'istio-waypoint', {
        spec: {
          gatewayClassName: 'istio-waypoint',
          listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }],
          infrastructure: {
            labels: { team: 'a', 'gateway.networking.k8s.io/x': 'dropped' },
            annotations: { note: 'hi' },
          },
        },
      }),
    );
    start();
    const d = await until(
      'Deployment',
      () => server.get('/apis/apps/v1/deployments', 'wp2', 'app') as Stored | undefined,
    );
    const template = (
      d as {
        spec: {
          template: { metadata: { labels: Record<string, string>; annotations: Record<string, string> } };
        };
      }
    ).spec.template.metadata;
    expect(template.labels).toMatchObject({ team: 'a', 'istio.io/dataplane-mode': 'none' });
    expect(template.labels['gateway.networking.k8s.io/x']).toBeUndefined();
    expect(template.annotations).toMatchObject({ note: 'hi' });
    const svc = await until('Service', () => server.get(SERVICES, 'wp2', 'app') as Stored | undefined);
    expect(svc.metadata?.labels).toMatchObject({ team: 'a' });
    expect(svc.metadata?.annotations).toMatchObject({ note: 'hi' });
  });

  it('deploys an ingress Gateway of class istio as <name>-istio with a LoadBalancer Service on the listener ports', async () => {
    server.put(
      GW,
      gateway('ingress', 'istio', {
        spec: { gatewayClassName: 'istio', listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }] },
      }),
    );
    start();
    const svc = await until(
      'ingress Service',
      () => server.get(SERVICES, 'ingress-istio', 'app') as Stored | undefined,
    );
    expect((svc as { spec: unknown }).spec).toMatchObject({
      type: 'LoadBalancer',
      ports: [
        { name: 'status-port', port: 15021 },
        { name: 'http', port: 80, appProtocol: 'http' },
      ],
    });
    expect(svc.metadata?.labels).toMatchObject({ 'gateway.istio.io/managed': 'istio.io-gateway-controller' });
    server.put(SERVICES, { ...svc, spec: { ...(svc as { spec: object }).spec, clusterIP: '10.96.0.30' } });
    const gw = () => server.get(GW, 'ingress', 'app') as Stored;
    await until('pending LoadBalancer reported', () =>
      condition(gw(), 'Programmed')?.message?.includes('address pending for hostname'),
    );
    expect(condition(gw(), 'Programmed')).toMatchObject({ status: 'False', reason: 'AddressNotAssigned' });
  });

  it('ignores a Gateway of an unknown class and rejects an invalid one of ours in status', async () => {
    server.put(GW, gateway('other', 'some-other-class'));
    server.put(
      GW,
      gateway('broken', 'istio-waypoint', {
        spec: {
          gatewayClassName: 'istio-waypoint',
          listeners: [{ name: 'mesh', port: 0, protocol: 'HBONE' }],
        },
      }),
    );
    const c = start();
    const broken = () => server.get(GW, 'broken', 'app') as Stored;
    await until('broken Gateway rejected', () => condition(broken(), 'Accepted')?.status === 'False');
    expect(condition(broken(), 'Accepted')).toMatchObject({
      reason: 'Invalid',
      message: 'spec.listeners[0].port: must be an integer in 1..65535',
    });
    await until('classes created', () => server.get(CLASSES, 'istio-waypoint'));
    await c.idle();
    expect(server.get(SERVICES, 'other', 'app')).toBeUndefined();
    expect(server.get(SERVICES, 'broken', 'app')).toBeUndefined();
    expect((server.get(GW, 'other', 'app') as Stored).status).toBeUndefined();
  });

  it('writes nothing while not the leader, and catches up on resync', async () => {
    let leader = false;
    server.put(GW, gateway('waypoint', 'istio-waypoint'));
    const c = start(() => leader);
    await until(
      'informers listed',
      () =>
        server.count('GET', GW) > 0 && server.count('GET', CLASSES) > 0 && server.count('GET', SERVICES) > 0,
    );
    await c.idle();
    expect(server.get(SERVICES, 'waypoint', 'app')).toBeUndefined();
    expect(server.get(CLASSES, 'istio')).toBeUndefined();
    leader = true;
    c.resync();
    await until('waypoint Service after resync', () => server.get(SERVICES, 'waypoint', 'app'));
    await until('classes after resync', () => server.get(CLASSES, 'istio'));
  });

  it('writes each listener’s status with the routes attached to it, and rewrites it when they change', async () => {
    const attached = new Map<string, number>([['app/waypoint', 2]]);
    server.put(GW, gateway('waypoint', 'istio-waypoint'));
    const c = start(
      () => true,
      (gw, listener) => (listener.name === 'mesh' ? (attached.get(gw) ?? 0) : 0),
    );
    const gw = () => server.get(GW, 'waypoint', 'app') as Stored;
    await until('listener status', () => gw().status?.listeners?.[0]?.attachedRoutes === 2);
    const listener = gw().status!.listeners![0]!;
    expect(listener).toMatchObject({ name: 'mesh', attachedRoutes: 2, supportedKinds: [] });
    expect(listener.conditions.map(x => [x.type, x.status, x.reason, x.message])).toEqual([
      ['Accepted', 'True', 'Accepted', 'No errors found'],
      ['Conflicted', 'False', 'NoConflicts', 'No errors found'],
      ['Programmed', 'True', 'Programmed', 'No errors found'],
      ['ResolvedRefs', 'True', 'ResolvedRefs', 'No errors found'],
    ]);
    attached.set('app/waypoint', 3);
    c.routesChanged(['app/waypoint']);
    await until('attachedRoutes 3', () => gw().status?.listeners?.[0]?.attachedRoutes === 3);
  });

  it('a revisioned istiod deploys only the Gateways selecting its revision or one of its tags, and takes one over when its tag moves', async () => {
    const tag = (revision: string): Stored => ({
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingWebhookConfiguration',
      metadata: {
        name: 'istio-revision-tag-prod',
        labels: { 'istio.io/tag': 'prod', 'istio.io/rev': revision },
      },
    });
    const ns = (name: string, rev: string): Stored => ({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name, labels: { 'istio.io/rev': rev } },
    });
    server.put(TAGS, tag('stable'));
    server.put(NAMESPACES, ns('app', 'prod'));
    server.put(NAMESPACES, ns('own', 'canary'));
    const own = gateway('own-waypoint', 'istio-waypoint');
    server.put(GW, { ...own, metadata: { ...own.metadata, namespace: 'own' } });
    server.put(GW, gateway('waypoint', 'istio-waypoint'));
    const c = start(() => true, undefined, 'canary');
    const DEPLOYMENTS = '/apis/apps/v1/deployments';
    const mine = await until(
      'the Gateway of a namespace labelled with the revision deployed',
      () => server.get(DEPLOYMENTS, 'own-waypoint', 'own') as Stored | undefined,
    );
    const podSpec = (d: Stored) =>
      (
        d as unknown as {
          spec: {
            template: {
              metadata: { annotations: Record<string, string> };
              spec: { containers: { env: { name: string; value?: string }[] }[] };
            };
          };
        }
      ).spec.template;
    expect(podSpec(mine).metadata.annotations['istio.io/rev']).toBe('canary');
    expect(podSpec(mine).spec.containers[0]?.env.find(e => e.name === 'XDS_ADDRESS')?.value).toBe(
      'istiod-canary.istio-system.svc:15012',
    );
    await c.idle();
    // The namespace selects the tag prod, which points at another revision.
    expect(server.get(DEPLOYMENTS, 'waypoint', 'app')).toBeUndefined();

    server.put(TAGS, tag('canary'));
    await until(
      'the Gateway deployed once its tag points at this revision',
      () => server.get(DEPLOYMENTS, 'waypoint', 'app') as Stored | undefined,
    );
  });

  it('applies the class-defaults ConfigMap, then the Gateway parametersRef ConfigMap, to the generated objects', async () => {
    const CONFIGMAPS = '/api/v1/configmaps';
    const DEPLOYMENTS = '/apis/apps/v1/deployments';
    server.put(CONFIGMAPS, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: 'waypoint-defaults',
        namespace: 'istio-system',
        labels: { 'gateway.istio.io/defaults-for-class': 'istio-waypoint' },
      },
      data: {
        deployment: [
          'metadata:',
          '  annotations:',
          '    from: class',
          'spec:',
          '  replicas: 2',
          '  template:',
          '    spec:',
          '      containers:',
          '      - name: istio-proxy',
          '        resources:',
          '          requests: {cpu: 100m}',
        ].join('\n'),
        service: 'metadata:\n  labels:\n    tier: mesh\n',
      },
    });
    server.put(CONFIGMAPS, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'wp-params', namespace: 'app' },
      data: { deployment: 'spec:\n  replicas: 3\n' },
    });
    server.put(
      GW,
      gateway('custom', 'istio-waypoint', {
        spec: {
          gatewayClassName: 'istio-waypoint',
          listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }],
          infrastructure: { parametersRef: { group: '', kind: 'ConfigMap', name: 'wp-params' } },
        },
      }),
    );
    start();
    type Dep = Stored & {
      spec: {
        replicas?: number;
        template: { spec: { containers: { name: string; image: string; resources?: unknown }[] } };
      };
    };
    const deployment = () => server.get(DEPLOYMENTS, 'custom', 'app') as Dep | undefined;
    const d = await until('customised Deployment', () =>
      deployment()?.spec.replicas === 3 ? deployment() : undefined,
    );
    expect(d.metadata?.annotations).toMatchObject({ from: 'class' });
    const proxy = d.spec.template.spec.containers.find(c => c.name === 'istio-proxy');
    expect(proxy?.resources).toEqual({ requests: { cpu: '100m' } });
    expect(proxy?.image).toBe('ambient-mesh/waypoint:0.1.0'); // merged by name, not replaced
    const svc = await until('customised Service', () => {
      const s = server.get(SERVICES, 'custom', 'app') as Stored | undefined;
      return s?.metadata?.labels?.tier === 'mesh' ? s : undefined;
    });
    expect(svc.metadata?.labels).toMatchObject({ 'istio.io/waypoint-for': 'service' });

    // Dropping the Gateway's ConfigMap falls back to the class defaults.
    server.remove(CONFIGMAPS, 'wp-params', 'app');
    await until('class-default replicas', () => deployment()?.spec.replicas === 2);
  });

  it('reports a parametersRef to a missing or invalid ConfigMap as Accepted=False InvalidParameters, and recovers', async () => {
    const CONFIGMAPS = '/api/v1/configmaps';
    server.put(
      GW,
      gateway('params', 'istio-waypoint', {
        spec: {
          gatewayClassName: 'istio-waypoint',
          listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }],
          infrastructure: { parametersRef: { group: '', kind: 'ConfigMap', name: 'params-cm' } },
        },
      }),
    );
    start();
    const gw = () => server.get(GW, 'params', 'app') as Stored | undefined;
    const missing = await until('Accepted=False for the missing ConfigMap', () => {
      const c = condition(gw(), 'Accepted');
      return c?.status === 'False' ? c : undefined;
    });
    expect(missing).toMatchObject({ reason: 'InvalidParameters' });
    expect(missing.message).toContain('ConfigMap app/params-cm');
    expect(missing.message).toContain('not found');

    // Present but not YAML: still InvalidParameters, now saying why.
    server.put(CONFIGMAPS, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'params-cm', namespace: 'app' },
      data: { deployment: 'spec: [unclosed' },
    });
    const invalid = await until('Accepted=False for the invalid ConfigMap', () => {
      const c = condition(gw(), 'Accepted');
      return c?.status === 'False' && c.message?.includes('invalid') === true ? c : undefined;
    });
    expect(invalid).toMatchObject({ reason: 'InvalidParameters' });
    expect(invalid.message).toContain('data.deployment');

    // A valid ConfigMap: accepted again.
    server.put(CONFIGMAPS, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'params-cm', namespace: 'app' },
      data: { deployment: 'spec:\n  replicas: 2\n' },
    });
    await until(
      'Accepted=True once the ConfigMap is valid',
      () => condition(gw(), 'Accepted')?.status === 'True',
    );
    expect(condition(gw(), 'Accepted')).toMatchObject({ reason: 'Accepted' });

    // Gone again, then back without any customisation key (valid: nothing to apply).
    server.remove(CONFIGMAPS, 'params-cm', 'app');
    await until(
      'Accepted=False once the ConfigMap is deleted',
      () => condition(gw(), 'Accepted')?.status === 'False',
    );
    server.put(CONFIGMAPS, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'params-cm', namespace: 'app' },
      data: { unrelated: 'x' },
    });
    await until(
      'Accepted=True for a ConfigMap without customisations',
      () => condition(gw(), 'Accepted')?.status === 'True',
    );
  });
});
