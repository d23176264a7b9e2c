// The WDS index with non-pod sources: EndpointSlices, ServiceEntries (status reports and VIP
// allocation), WorkloadEntries, and how they join pods and Services.
import { describe, expect, it } from 'vitest';
import type { EndpointSlice, ServiceEntry, WorkloadEntry } from '../kube/objects.ts';
import { makeAuthorizationPolicy, makePod, makeService } from '../testing/fixtures.ts';
import { bytesToIp } from './ip.ts';
import { compileAuthorizationPolicyObject } from './policies.ts';
import { SourceIssueCode } from './source-issues.ts';
import { ObjectKinds, WdsIndex, type SourceStatusReport } from './wds-index.ts';

function newIndex(reports: SourceStatusReport[] = []): WdsIndex {
  return new WdsIndex({
    clusterId: 'Kubernetes',
    trustDomain: 'cluster.local',
    domain: 'cluster.local',
    rootNamespace: 'istio-system',
    compilePolicy: compileAuthorizationPolicyObject,
    onSourceStatus: r => reports.push(r),
  });
}

const POD_UID = 'Kubernetes//Pod/demo/backend';
const SLICE_UID = 'Kubernetes/discovery.k8s.io/EndpointSlice/demo/manual-1/10.9.9.9';

function manualSlice(endpoints: NonNullable<EndpointSlice['endpoints']>): EndpointSlice {
  return {
    metadata: { name: 'manual-1', namespace: 'demo', labels: { 'kubernetes.io/service-name': 'manual' } },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints,
  };
}

function serviceEntry(
  name: string,
  spec: NonNullable<ServiceEntry['spec']>,
  created = '2026-01-01T00:00:00Z',
  status?: unknown,
): ServiceEntry {
  return {
    metadata: { name, namespace: 'demo', creationTimestamp: new Date(created), generation: 1 },
    spec,
    ...(status === undefined ? {} : { status: status as Record<string, unknown> }),
  };
}

describe('WdsIndex with EndpointSlices', () => {
  const manual = makeService('manual', 'demo', {
    clusterIP: '10.96.1.1',
    ports: [{ name: 'http', port: 80, targetPort: 8080 }],
  });
  const backend = makePod({
    name: 'backend',
    namespace: 'demo',
    ip: '10.244.1.5',
    node: 'n1',
    labels: { app: 'backend' },
  });

  it('gives a pod listed by targetRef the selector-less Service, and withdraws it with the slice', () => {
    const index = newIndex();
    index.upsert(ObjectKinds.SERVICE, manual);
    index.upsert(ObjectKinds.POD, backend);
    expect(index.addresses.get(POD_UID)?.value.workload?.services).toEqual({});
    const slice = manualSlice([
      {
        addresses: ['10.244.1.5'],
        targetRef: { kind: 'Pod', namespace: 'demo', name: 'backend', uid: 'uid-backend' },
      },
    ]);
    const changes = index.upsert(ObjectKinds.ENDPOINT_SLICE, slice);
    expect([...changes.addresses]).toEqual([POD_UID]);
    expect(index.addresses.get(POD_UID)?.value.workload?.services).toEqual({
      'demo/manual.demo.svc.cluster.local': { ports: [{ servicePort: 80, targetPort: 8080 }] },
    });
    index.delete(ObjectKinds.ENDPOINT_SLICE, slice);
    expect(index.addresses.get(POD_UID)?.value.workload?.services).toEqual({});
  });

  it("ignores a targetRef whose uid is not the pod's, as upstream does", () => {
    const index = newIndex();
    index.upsert(ObjectKinds.SERVICE, manual);
    index.upsert(ObjectKinds.POD, backend);
    index.upsert(
      ObjectKinds.ENDPOINT_SLICE,
      manualSlice([
        { addresses: ['10.244.1.5'], targetRef: { kind: 'Pod', namespace: 'demo', name: 'backend' } },
      ]),
    );
    expect(index.addresses.get(POD_UID)?.value.workload?.services).toEqual({});
    expect(index.addresses.size).toBe(2);
  });

  it('publishes non-pod endpoints once the Service exists, and removes them with it', () => {
    const index = newIndex();
    index.upsert(ObjectKinds.ENDPOINT_SLICE, manualSlice([{ addresses: ['10.9.9.9'] }]));
    expect(index.addresses.has(SLICE_UID)).toBe(false);
    index.upsert(ObjectKinds.SERVICE, manual);
    const w = index.addresses.get(SLICE_UID)?.value.workload;
    expect(w?.services).toEqual({
      'demo/manual.demo.svc.cluster.local': { ports: [{ servicePort: 80, targetPort: 8080 }] },
    });
    const changes = index.delete(ObjectKinds.SERVICE, manual);
    expect(changes.addresses.has(SLICE_UID)).toBe(true);
    expect(index.addresses.has(SLICE_UID)).toBe(false);
  });

  it('publishes a headless Service without addresses, its selected pods listing it', () => {
    const index = newIndex();
    index.upsert(ObjectKinds.POD, backend);
    index.upsert(
      ObjectKinds.SERVICE,
      makeService('hl', 'demo', { clusterIP: 'None', selector: { app: 'backend' }, ports: [{ port: 9000 }] }),
    );
    expect(index.addresses.get('demo/hl.demo.svc.cluster.local')?.value.service?.addresses).toEqual([]);
    expect(Object.keys(index.addresses.get(POD_UID)?.value.workload?.services ?? {})).toEqual([
      'demo/hl.demo.svc.cluster.local',
    ]);
  });
});

describe('WdsIndex with ServiceEntries', () => {
  it('allocates VIPs for a DNS entry, reports them for the status, and serves them once written', () => {
    const reports: SourceStatusReport[] = [];
    const index = newIndex(reports);
    const spec = {
      hosts: ['api.example.com'],
      ports: [{ name: 'http', number: 80 }],
      resolution: 'DNS' as const,
    };
    index.upsert(ObjectKinds.SERVICE_ENTRY, serviceEntry('api', spec));
    const report = reports.at(-1)!;
    expect(report.issues).toEqual([]);
    expect(report.addresses).toEqual([
      { host: 'api.example.com', value: '240.240.0.1' },
      { host: 'api.example.com', value: '2001:2::1' },
    ]);
    expect(index.addresses.get('demo/api.example.com')?.value.service?.addresses).toEqual([]);
    expect(index.addresses.has('Kubernetes/networking.istio.io/ServiceEntry/demo/api/api.example.com')).toBe(
      true,
    );
    // The status write comes back through the informer.
    index.upsert(
      ObjectKinds.SERVICE_ENTRY,
      serviceEntry('api', spec, undefined, { addresses: report.addresses }),
    );
    expect(reports.at(-1)?.addresses).toBeUndefined();
    const vips = index.addresses
      .get('demo/api.example.com')
      ?.value.service?.addresses?.map(a => bytesToIp(a.address!));
    expect(vips).toEqual(['240.240.0.1', '2001:2:0:0:0:0:0:1']);
  });

  it('reports an invalid entry with typed issues, keeps it out of WDS, and leaves others alone', () => {
    const reports: SourceStatusReport[] = [];
    const index = newIndex(reports);
    index.upsert(
      ObjectKinds.SERVICE_ENTRY,
      serviceEntry('good', { hosts: ['good.example.com'], addresses: ['240.0.0.1'], resolution: 'STATIC' }),
    );
    const before = [...index.addresses.keys()];
    const changes = index.upsert(
      ObjectKinds.SERVICE_ENTRY,
      serviceEntry('bad', { hosts: ['bad host'], resolution: 'STATIC' }),
    );
    expect(changes.addresses.size).toBe(0);
    expect([...index.addresses.keys()]).toEqual(before);
    expect(reports.at(-1)?.issues).toEqual([
      expect.objectContaining({ code: SourceIssueCode.INVALID_HOST, path: 'spec.hosts[0]' }),
    ]);
  });

  it('rejects the newer of two entries claiming one address, and applies it once the older goes', () => {
    const reports: SourceStatusReport[] = [];
    const index = newIndex(reports);
    const older = serviceEntry('older', {
      hosts: ['a.example.com'],
      addresses: ['240.0.0.5'],
      resolution: 'STATIC',
    });
    index.upsert(ObjectKinds.SERVICE_ENTRY, older);
    index.upsert(
      ObjectKinds.SERVICE_ENTRY,
      serviceEntry(
        'newer',
        { hosts: ['b.example.com'], addresses: ['240.0.0.5'], resolution: 'STATIC' },
        '2026-02-01T00:00:00Z',
      ),
    );
    const newer = (): SourceStatusReport | undefined =>
      reports.findLast(r => r.object.metadata?.name === 'newer');
    expect(newer()?.issues[0]?.code).toBe(SourceIssueCode.ADDRESS_CONFLICT);
    expect(index.addresses.has('demo/b.example.com')).toBe(false);
    expect(index.addresses.has('demo/a.example.com')).toBe(true);
    index.delete(ObjectKinds.SERVICE_ENTRY, older);
    expect(index.addresses.has('demo/a.example.com')).toBe(false);
    expect(index.addresses.has('demo/b.example.com')).toBe(true);
    expect(newer()?.issues).toEqual([]);
  });

  it('adds its Services to the pods its workloadSelector picks, and lets a Service win its hostname', () => {
    const index = newIndex();
    index.upsert(
      ObjectKinds.POD,
      makePod({
        name: 'backend',
        namespace: 'demo',
        ip: '10.244.1.5',
        node: 'n1',
        labels: { app: 'backend' },
      }),
    );
    index.upsert(
      ObjectKinds.SERVICE_ENTRY,
      serviceEntry('sel', {
        hosts: ['sel.example.com', 'svc.demo.svc.cluster.local'],
        addresses: ['240.0.0.9'],
        ports: [{ name: 'http', number: 80, targetPort: 8080 }],
        resolution: 'STATIC',
        workloadSelector: { labels: { app: 'backend' } },
      }),
    );
    expect(index.addresses.get(POD_UID)?.value.workload?.services).toEqual({
      'demo/sel.example.com': { ports: [{ servicePort: 80, targetPort: 8080 }] },
      'demo/svc.demo.svc.cluster.local': { ports: [{ servicePort: 80, targetPort: 8080 }] },
    });
    index.upsert(
      ObjectKinds.SERVICE,
      makeService('svc', 'demo', { clusterIP: '10.96.0.3', ports: [{ port: 80 }] }),
    );
    expect(index.addresses.get('demo/svc.demo.svc.cluster.local')?.value.service?.name).toBe('svc');
    expect(Object.keys(index.addresses.get(POD_UID)?.value.workload?.services ?? {})).toEqual([
      'demo/sel.example.com',
    ]);
  });
});

describe('WdsIndex with WorkloadEntries', () => {
  const vm: WorkloadEntry = {
    metadata: { name: 'vm-1', namespace: 'demo', labels: { app: 'vm' } },
    spec: { address: '10.9.0.5', serviceAccount: 'vm-sa', ports: { http: 8080 } },
  };
  const UID = 'Kubernetes/networking.istio.io/WorkloadEntry/demo/vm-1';

  it('publishes the VM with its identity, selected by Services, ServiceEntries and policies', () => {
    const index = newIndex();
    index.upsert(ObjectKinds.WORKLOAD_ENTRY, vm);
    expect(index.addresses.get(UID)?.value.workload).toMatchObject({
      serviceAccount: 'vm-sa',
      namespace: 'demo',
      services: {},
    });
    index.upsert(
      ObjectKinds.SERVICE,
      makeService('vms', 'demo', {
        clusterIP: '10.96.0.4',
        selector: { app: 'vm' },
        ports: [{ name: 'http', port: 80, targetPort: 'http' }],
      }),
    );
    index.upsert(
      ObjectKinds.SERVICE_ENTRY,
      serviceEntry('vm-se', {
        hosts: ['vm.example.com'],
        addresses: ['240.0.0.7'],
        ports: [{ name: 'http', number: 80 }],
        resolution: 'STATIC',
        workloadSelector: { labels: { app: 'vm' } },
      }),
    );
    index.upsert(
      ObjectKinds.AUTHORIZATION_POLICY,
      makeAuthorizationPolicy('vm-allow', 'demo', {
        selector: { matchLabels: { app: 'vm' } },
        action: 'ALLOW',
        rules: [{}],
      }),
    );
    expect(index.addresses.get(UID)?.value.workload).toMatchObject({
      services: {
        'demo/vm.example.com': { ports: [{ servicePort: 80, targetPort: 8080 }] },
        'demo/vms.demo.svc.cluster.local': { ports: [{ servicePort: 80, targetPort: 8080 }] },
      },
      authorizationPolicies: ['demo/vm-allow'],
    });
    index.delete(ObjectKinds.WORKLOAD_ENTRY, vm);
    expect(index.addresses.has(UID)).toBe(false);
  });

  it('reports each deleted ServiceEntry and WorkloadEntry, so their status is forgotten', () => {
    const deleted: string[] = [];
    const index = new WdsIndex({
      clusterId: 'Kubernetes',
      trustDomain: 'cluster.local',
      domain: 'cluster.local',
      rootNamespace: 'istio-system',
      compilePolicy: compileAuthorizationPolicyObject,
      onSourceDeleted: (kind, namespace, name) => deleted.push(`${kind} ${namespace}/${name}`),
    });
    const bad = serviceEntry('bad', { hosts: ['bad host'], resolution: 'STATIC' });
    index.upsert(ObjectKinds.SERVICE_ENTRY, bad);
    index.upsert(ObjectKinds.WORKLOAD_ENTRY, vm);
    expect(deleted).toEqual([]);
    index.delete(ObjectKinds.SERVICE_ENTRY, bad);
    index.delete(ObjectKinds.WORKLOAD_ENTRY, vm);
    expect(deleted).toEqual([
      `ServiceEntry ${bad.metadata?.namespace ?? ''}/bad`,
      `WorkloadEntry ${vm.metadata?.namespace ?? ''}/${vm.metadata?.name ?? ''}`,
    ]);
  });

  it('reports an invalid WorkloadEntry and publishes nothing for it', () => {
    const reports: SourceStatusReport[] = [];
    const index = newIndex(reports);
    const broken: WorkloadEntry = { ...vm, spec: { address: 'not an address!' } };
    index.upsert(ObjectKinds.WORKLOAD_ENTRY, broken);
    expect(index.addresses.has(UID)).toBe(false);
    expect(reports.at(-1)).toMatchObject({
      kind: 'WorkloadEntry',
      issues: [expect.objectContaining({ code: SourceIssueCode.INVALID_ADDRESS })],
    });
  });
});
