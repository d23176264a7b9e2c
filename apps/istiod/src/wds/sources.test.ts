// Direct tests of the non-pod sources: validation into domain types (with typed issues) and the
// WDS each kind produces.
import { describe, expect, it } from 'vitest';
import type { EndpointSlice, ServiceEntry, WorkloadEntry } from '../kube/objects.ts';
import { makeService } from '../testing/fixtures.ts';
import { buildEndpointSliceWorkloads, validateEndpointSlice } from './endpoint-slice.ts';
import { bytesToIp, formatIp, ipToBytes } from './ip.ts';
import {
  buildServiceEntryService,
  buildServiceEntryWorkloads,
  hostAddresses,
  validateServiceEntry,
  wantsAutoAllocation,
  type ValidServiceEntry,
} from './service-entry.ts';
import { hostProblem, SourceIssueCode, SourceValidationError } from './source-issues.ts';
import { VipAllocator } from './vip-allocator.ts';
import { buildWorkloadEntryWorkload, validateWorkloadEntry } from './workload-entry.ts';
import { workload as wire } from '@ambient-mesh/xds-types';

const INPUTS = { clusterId: 'Kubernetes', trustDomain: 'cluster.local', domain: 'cluster.local' };

function slice(
  endpoints: NonNullable<EndpointSlice['endpoints']>,
  labels?: Record<string, string>,
): EndpointSlice {
  return {
    metadata: {
      name: 'ext-abc',
      namespace: 'demo',
      labels: labels ?? { 'kubernetes.io/service-name': 'ext' },
    },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints,
  };
}

function entry(
  spec: Partial<NonNullable<ServiceEntry['spec']>>,
  meta: Partial<NonNullable<ServiceEntry['metadata']>> = {},
  status?: unknown,
): ServiceEntry {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name: 'se', namespace: 'demo', creationTimestamp: new Date('2026-01-01T00:00:00Z'), ...meta },
    spec: { hosts: ['api.example.com'], ...spec },
    ...(status === undefined ? {} : { status: status as Record<string, unknown> }),
  };
}

function valid(se: ServiceEntry): ValidServiceEntry {
  const v = validateServiceEntry(se);
  if (!v.ok) throw new SourceValidationError('ServiceEntry', 'test', v.errors);
  return v.value;
}

describe('EndpointSlice', () => {
  const svc = makeService('ext', 'demo', { clusterIP: '10.96.0.9', ports: [{ name: 'http', port: 80 }] });

  it('turns a non-pod endpoint into a host-network Workload of the Service, ports joined by name', () => {
    const v = validateEndpointSlice(
      slice([{ addresses: ['10.1.2.3'] }, { addresses: ['10.1.2.4'], conditions: { ready: false } }]),
    );
    expect(v.ok).toBe(true);
    if (!v.ok) return;
    const workloads = buildEndpointSliceWorkloads(v.value, svc, INPUTS);
    const uid = 'Kubernetes/discovery.k8s.io/EndpointSlice/demo/ext-abc/10.1.2.3';
    expect([...workloads.keys()]).toEqual([
      uid,
      'Kubernetes/discovery.k8s.io/EndpointSlice/demo/ext-abc/10.1.2.4',
    ]);
    const w = workloads.get(uid)!;
    expect(w).toMatchObject({
      name: 'ext-abc',
      namespace: 'demo',
      networkMode: wire.NetworkMode.HOST_NETWORK,
      status: wire.WorkloadStatus.HEALTHY,
      tunnelProtocol: wire.TunnelProtocol.NONE,
      services: { 'demo/ext.demo.svc.cluster.local': { ports: [{ servicePort: 80, targetPort: 8080 }] } },
    });
    expect(w.serviceAccount).toBeUndefined();
    expect(bytesToIp(w.addresses![0]!)).toBe('10.1.2.3');
    expect(workloads.get('Kubernetes/discovery.k8s.io/EndpointSlice/demo/ext-abc/10.1.2.4')?.status).toBe(
      wire.WorkloadStatus.UNHEALTHY,
    );
  });

  it('leaves pod endpoints to the pod, and records them for the pod', () => {
    const v = validateEndpointSlice(
      slice([{ addresses: ['10.1.2.3'], targetRef: { kind: 'Pod', name: 'p', namespace: 'demo' } }]),
    );
    expect(v.ok && v.value.endpoints[0]?.pod).toBe('demo/p');
    if (v.ok) expect(buildEndpointSliceWorkloads(v.value, svc, INPUTS).size).toBe(0);
  });

  it('produces nothing without its Service, and ignores slices of no Service or of FQDNs', () => {
    const v = validateEndpointSlice(slice([{ addresses: ['10.1.2.3'] }]));
    if (v.ok) expect(buildEndpointSliceWorkloads(v.value, undefined, INPUTS).size).toBe(0);
    const orphan = validateEndpointSlice(slice([{ addresses: ['10.1.2.3'] }], {}));
    expect(orphan.ok).toBe(false);
    const fqdn = validateEndpointSlice({ ...slice([{ addresses: ['a.example.com'] }]), addressType: 'FQDN' });
    expect(fqdn.ok).toBe(false);
  });

  it('skips an unparsable or duplicate address with an issue, keeping the rest', () => {
    const v = validateEndpointSlice(
      slice([{ addresses: ['nope'] }, { addresses: ['10.0.0.1'] }, { addresses: ['10.0.0.1'] }]),
    );
    expect(v.ok).toBe(true);
    if (!v.ok) return;
    expect(v.value.endpoints.map(e => e.address)).toEqual(['10.0.0.1']);
    expect(v.value.skipped.map(i => i.path)).toEqual([
      'endpoints[0].addresses[0]',
      'endpoints[2].addresses[0]',
    ]);
  });
});

describe('ServiceEntry validation', () => {
  it('accepts STATIC with addresses and endpoints, and converts to the domain type', () => {
    const se = valid(
      entry({
        addresses: ['240.0.0.10', '10.10.0.0/16'],
        ports: [{ name: 'http', number: 80, protocol: 'HTTP', targetPort: 8080 }],
        resolution: 'STATIC',
        endpoints: [{ address: '10.0.0.7', ports: { http: 9090 }, serviceAccount: 'vm' }],
      }),
    );
    expect(se.addresses).toEqual(['240.0.0.10', '10.10.0.0']);
    expect(se.ports).toEqual([{ name: 'http', number: 80, protocol: 'HTTP', targetPort: 8080 }]);
    expect(se.endpoints?.[0]).toMatchObject({ address: '10.0.0.7', serviceAccount: 'vm' });
  });

  it.each([
    ['an invalid host', { hosts: ['bad_host!'] }, SourceIssueCode.INVALID_HOST, 'spec.hosts[0]'],
    ['a bare *', { hosts: ['*'] }, SourceIssueCode.INVALID_HOST, 'spec.hosts[0]'],
    ['an IP as host', { hosts: ['10.0.0.1'] }, SourceIssueCode.INVALID_HOST, 'spec.hosts[0]'],
    ['no hosts', { hosts: [] }, SourceIssueCode.MISSING_FIELD, 'spec.hosts'],
    ['a bad address', { addresses: ['10.0.0.300'] }, SourceIssueCode.INVALID_ADDRESS, 'spec.addresses[0]'],
    ['a bad CIDR', { addresses: ['10.0.0.0/40'] }, SourceIssueCode.INVALID_ADDRESS, 'spec.addresses[0]'],
    [
      'a duplicate port',
      {
        ports: [
          { name: 'a', number: 80 },
          { name: 'b', number: 80 },
        ],
      },
      SourceIssueCode.INVALID_PORT,
      'spec.ports[1].number',
    ],
    [
      'a port out of range',
      { ports: [{ name: 'a', number: 70000 }] },
      SourceIssueCode.INVALID_PORT,
      'spec.ports[0].number',
    ],
    [
      'a wildcard DNS entry without endpoints',
      { hosts: ['*.example.com'], resolution: 'DNS' as const },
      SourceIssueCode.INVALID_HOST,
      'spec.hosts[0]',
    ],
    [
      'a hostname endpoint with STATIC',
      { resolution: 'STATIC' as const, endpoints: [{ address: 'vm.example.com' }] },
      SourceIssueCode.INVALID_ADDRESS,
      'spec.endpoints[0].address',
    ],
    [
      'an endpoint port the entry does not name',
      {
        resolution: 'STATIC' as const,
        ports: [{ name: 'http', number: 80 }],
        endpoints: [{ address: '10.0.0.1', ports: { grpc: 9 } }],
      },
      SourceIssueCode.INVALID_PORT,
      'spec.endpoints[0].ports.grpc',
    ],
    [
      'selector and endpoints',
      {
        resolution: 'STATIC' as const,
        workloadSelector: { labels: { a: 'b' } },
        endpoints: [{ address: '10.0.0.1' }],
      },
      SourceIssueCode.INVALID_COMBINATION,
      'spec.workloadSelector',
    ],
    [
      'endpoints with NONE',
      { endpoints: [{ address: '10.0.0.1' }] },
      SourceIssueCode.INVALID_COMBINATION,
      'spec.endpoints',
    ],
  ])('rejects %s with a typed issue and its path', (_name, spec, code, path) => {
    const v = validateServiceEntry(entry(spec));
    expect(v.ok).toBe(false);
    if (v.ok) return;
    expect(v.errors).toContainEqual(expect.objectContaining({ code, path }));
    const err = new SourceValidationError('ServiceEntry', 'demo/se', v.errors);
    expect(err.code).toBe(v.errors[0]!.code);
    expect(err.message).toContain(path);
  });

  it('checks host names label by label', () => {
    expect(hostProblem('api.example.com', false)).toBeUndefined();
    expect(hostProblem('*.example.com', true)).toBeUndefined();
    expect(hostProblem('*.example.com', false)).toMatch(/wildcard/);
    expect(hostProblem('a.*.com', true)).toMatch(/first label/);
    expect(hostProblem(`${'a'.repeat(64)}.com`, false)).toMatch(/DNS label/);
  });
});

describe('ServiceEntry WDS', () => {
  it('builds one Service per host with spec addresses and target ports defaulting to the number', () => {
    const se = valid(
      entry({
        hosts: ['a.example.com', 'b.example.com'],
        addresses: ['240.0.0.10'],
        ports: [
          { name: 'http', number: 80 },
          { name: 'tcp', number: 9000, targetPort: 9001 },
        ],
        resolution: 'STATIC',
      }),
    );
    const svc = buildServiceEntryService(se, 'b.example.com', { waypoint: undefined });
    expect(svc).toMatchObject({ name: 'se', namespace: 'demo', hostname: 'b.example.com' });
    expect(svc.addresses?.map(a => bytesToIp(a.address!))).toEqual(['240.0.0.10']);
    expect(svc.ports).toEqual([
      { servicePort: 80, targetPort: 80 },
      { servicePort: 9000, targetPort: 9001 },
    ]);
  });

  it('uses the allocated status addresses of a host, unless resolution is NONE or the host a wildcard', () => {
    const status = {
      addresses: [
        { host: 'api.example.com', value: '240.240.0.1' },
        { host: 'api.example.com', value: '2001:2::1' },
      ],
    };
    const dns = valid(entry({ resolution: 'DNS', ports: [{ name: 'http', number: 80 }] }, {}, status));
    expect(wantsAutoAllocation(dns)).toBe(true);
    expect(hostAddresses(dns, 'api.example.com')).toEqual(['240.240.0.1', '2001:2::1']);
    const none = valid(entry({ resolution: 'NONE' }, {}, status));
    expect(wantsAutoAllocation(none)).toBe(false);
    expect(hostAddresses(none, 'api.example.com')).toEqual([]);
    const optedOut = valid(
      entry(
        { resolution: 'DNS' },
        { labels: { 'networking.istio.io/enable-autoallocate-ip': 'False' } },
        status,
      ),
    );
    expect(wantsAutoAllocation(optedOut)).toBe(false);
  });

  it('gives a DNS entry without endpoints one implicit workload per host, serving only that host', () => {
    const se = valid(
      entry({
        hosts: ['a.example.com', 'b.example.com'],
        resolution: 'DNS',
        ports: [{ name: 'http', number: 80 }],
      }),
    );
    const workloads = buildServiceEntryWorkloads(se, {
      ...INPUTS,
      authorizationPolicies: [],
      waypointFor: () => undefined,
    });
    const uid = 'Kubernetes/networking.istio.io/ServiceEntry/demo/se/a.example.com';
    expect([...workloads.keys()]).toEqual([
      uid,
      'Kubernetes/networking.istio.io/ServiceEntry/demo/se/b.example.com',
    ]);
    expect(workloads.get(uid)).toMatchObject({
      hostname: 'a.example.com',
      workloadName: 'se',
      workloadType: wire.WorkloadType.POD,
      canonicalName: 'se',
      canonicalRevision: 'latest',
      status: wire.WorkloadStatus.HEALTHY,
      services: { 'demo/a.example.com': { ports: [{ servicePort: 80, targetPort: 80 }] } },
    });
  });

  it('maps inline endpoint ports by port name, with identity, locality and weight', () => {
    const se = valid(
      entry({
        resolution: 'STATIC',
        ports: [{ name: 'http', number: 80 }],
        endpoints: [
          { address: '10.0.0.7', ports: { http: 8080 }, serviceAccount: 'vm', locality: 'r1/z1', weight: 3 },
        ],
      }),
    );
    const w = buildServiceEntryWorkloads(se, {
      ...INPUTS,
      authorizationPolicies: ['demo/p'],
      waypointFor: () => undefined,
    }).get('Kubernetes/networking.istio.io/ServiceEntry/demo/se/10.0.0.7')!;
    expect(w).toMatchObject({
      serviceAccount: 'vm',
      locality: { region: 'r1', zone: 'z1', subzone: '' },
      capacity: { value: 3 },
      authorizationPolicies: ['demo/p'],
      services: { 'demo/api.example.com': { ports: [{ servicePort: 80, targetPort: 8080 }] } },
    });
  });
});

describe('WorkloadEntry', () => {
  const we = (spec: WorkloadEntry['spec'], labels: Record<string, string> = {}): WorkloadEntry => ({
    metadata: { name: 'vm-1', namespace: 'demo', labels },
    spec,
  });

  it('is a Workload with the pod identity model (serviceAccount in its namespace)', () => {
    const v = validateWorkloadEntry(
      we({ address: '10.9.0.5', serviceAccount: 'vm-sa', labels: { app: 'vm' }, ports: { http: 8080 } }),
    );
    expect(v.ok).toBe(true);
    if (!v.ok) return;
    const svc = makeService('web', 'demo', {
      clusterIP: '10.96.0.1',
      selector: { app: 'vm' },
      ports: [{ name: 'http', port: 80, targetPort: 'http' }],
    });
    const w = buildWorkloadEntryWorkload(v.value, {
      ...INPUTS,
      services: [svc],
      serviceEntries: [],
      authorizationPolicies: [],
      waypoint: undefined,
    });
    expect(w).toMatchObject({
      uid: 'Kubernetes/networking.istio.io/WorkloadEntry/demo/vm-1',
      name: 'vm-1',
      namespace: 'demo',
      serviceAccount: 'vm-sa',
      workloadName: 'vm-1',
      canonicalName: 'vm',
      workloadType: wire.WorkloadType.POD,
      status: wire.WorkloadStatus.HEALTHY,
      services: { 'demo/web.demo.svc.cluster.local': { ports: [{ servicePort: 80, targetPort: 8080 }] } },
    });
    expect(bytesToIp(w.addresses![0]!)).toBe('10.9.0.5');
  });

  it('rejects an entry without address or network, and a port out of range', () => {
    const none = validateWorkloadEntry(we({}));
    expect(!none.ok && none.errors[0]?.code).toBe(SourceIssueCode.MISSING_FIELD);
    const port = validateWorkloadEntry(we({ address: '10.0.0.1', ports: { http: 0 } }));
    expect(!port.ok && port.errors[0]).toMatchObject({
      code: SourceIssueCode.INVALID_PORT,
      path: 'spec.ports.http',
    });
  });
});

describe('VipAllocator', () => {
  it('allocates the next IPv4 and IPv6 per host and keeps them while pending', () => {
    const alloc = new VipAllocator();
    const se = valid(entry({ hosts: ['a.example.com', 'b.example.com'], resolution: 'DNS' }));
    const plan = alloc.plan(se);
    expect(plan.changed).toBe(true);
    expect(plan.addresses).toEqual([
      { host: 'a.example.com', value: '240.240.0.1' },
      { host: 'a.example.com', value: '2001:2::1' },
      { host: 'b.example.com', value: '240.240.0.2' },
      { host: 'b.example.com', value: '2001:2::2' },
    ]);
    // Re-planned before the status lands: the same addresses.
    expect(alloc.plan(se).addresses).toEqual(plan.addresses);
    // Once in the status: nothing to write.
    const echoed = valid(
      entry(
        { hosts: ['a.example.com', 'b.example.com'], resolution: 'DNS' },
        {},
        { addresses: plan.addresses },
      ),
    );
    expect(alloc.plan(echoed).changed).toBe(false);
  });

  it('does not allocate for NONE, wildcard hosts, opt-out or spec addresses', () => {
    const alloc = new VipAllocator();
    expect(alloc.plan(valid(entry({ resolution: 'NONE' }))).changed).toBe(false);
    expect(alloc.plan(valid(entry({ resolution: 'STATIC', addresses: ['10.0.0.1'] }))).changed).toBe(false);
    const wild = alloc.plan(valid(entry({ hosts: ['*.example.com'], resolution: 'STATIC' })));
    expect(wild.addresses).toEqual([]);
  });

  it('moves the newer of two entries holding the same VIP, never the older', () => {
    const alloc = new VipAllocator();
    const taken = { addresses: [{ host: 'a.example.com', value: '240.240.0.1' }] };
    const old = valid(
      entry(
        { hosts: ['a.example.com'], resolution: 'DNS' },
        { name: 'old', creationTimestamp: new Date('2026-01-01T00:00:00Z') },
        taken,
      ),
    );
    const young = valid(
      entry(
        { hosts: ['a.example.com'], resolution: 'DNS' },
        { name: 'young', creationTimestamp: new Date('2026-02-01T00:00:00Z') },
        taken,
      ),
    );
    alloc.plan(young);
    const oldPlan = alloc.plan(old);
    expect(oldPlan.displaced).toEqual(['demo/young']);
    expect(oldPlan.addresses.map(a => a.value)).toContain('240.240.0.1');
    const moved = alloc.plan(young);
    expect(moved.changed).toBe(true);
    expect(moved.addresses.map(a => a.value)).not.toContain('240.240.0.1');
  });

  it('formats IPv6 addresses canonically', () => {
    expect(formatIp(ipToBytes('2001:2:0:0:0:0:1:0')!)).toBe('2001:2::1:0');
    expect(formatIp(ipToBytes('2001:db8:0:1:0:0:0:1')!)).toBe('2001:db8:0:1::1');
  });
});
