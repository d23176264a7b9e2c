import { describe, expect, it } from 'vitest';
import { makeNode, makePod, makeService } from '../testing/fixtures.ts';
import type { Pod } from '../kube/objects.ts';
import { buildPodWorkload, canonicalService, podWorkloadName, type WorkloadInputs } from './workload.ts';
import { workload as wire } from '@ambient-mesh/xds-types';

const { NetworkMode, TunnelProtocol, WorkloadStatus, WorkloadType } = wire;

const base: WorkloadInputs = {
  clusterId: 'Kubernetes',
  trustDomain: 'cluster.local',
  domain: 'cluster.local',
  node: undefined,
  services: [],
  authorizationPolicies: [],
  waypoint: undefined,
};

describe('buildPodWorkload', () => {
  it('builds every field of a captured pod', () => {
    const pod = makePod({
      name: 'web-abc-12345',
      namespace: 'ns1',
      node: 'node-a',
      ip: '10.0.0.5',
      labels: { app: 'web', version: 'v2', 'pod-template-hash': 'abc' },
      annotations: { 'ambient.istio.io/redirection': 'enabled' },
      serviceAccount: 'web-sa',
      ports: [{ name: 'http', containerPort: 8080 }],
      owner: { kind: 'ReplicaSet', name: 'web-abc' },
    });
    const svc = makeService('web', 'ns1', {
      clusterIP: '10.96.0.1',
      selector: { app: 'web' },
      ports: [
        { port: 80, targetPort: 'http' },
        { port: 81, targetPort: 'missing' },
        { port: 82, targetPort: 9000 },
        { port: 83 },
      ],
    });
    const node = makeNode('node-a', {
      'topology.kubernetes.io/region': 'eu',
      'topology.kubernetes.io/zone': 'eu-1',
      'topology.istio.io/subzone': 'rack1',
    });
    const w = buildPodWorkload(pod, { ...base, node, services: [svc], authorizationPolicies: ['ns1/p'] });
    expect(w).toEqual({
      uid: 'Kubernetes//Pod/ns1/web-abc-12345',
      name: 'web-abc-12345',
      namespace: 'ns1',
      addresses: [Uint8Array.from([10, 0, 0, 5])],
      hostname: '',
      network: '',
      tunnelProtocol: TunnelProtocol.HBONE,
      trustDomain: '',
      serviceAccount: 'web-sa',
      node: 'node-a',
      canonicalName: 'web',
      canonicalRevision: 'v2',
      workloadType: WorkloadType.POD,
      workloadName: 'web',
      nativeTunnel: false,
      services: {
        'ns1/web.ns1.svc.cluster.local': {
          ports: [
            { servicePort: 80, targetPort: 8080 },
            { servicePort: 82, targetPort: 9000 },
            { servicePort: 83, targetPort: 83 },
          ],
        },
      },
      authorizationPolicies: ['ns1/p'],
      status: WorkloadStatus.HEALTHY,
      clusterId: 'Kubernetes',
      locality: { region: 'eu', zone: 'eu-1', subzone: 'rack1' },
      networkMode: NetworkMode.STANDARD,
    });
  });

  it.each<
    [
      string,
      Partial<Parameters<typeof makePod>[0]>,
      (w: NonNullable<ReturnType<typeof buildPodWorkload>>) => void,
    ]
  >([
    [
      'no redirection annotation gives NONE',
      {},
      w => {
        expect(w.tunnelProtocol).toBe(TunnelProtocol.NONE);
      },
    ],
    [
      'pending redirection stays NONE',
      { annotations: { 'ambient.istio.io/redirection': 'pending' } },
      w => {
        expect(w.tunnelProtocol).toBe(TunnelProtocol.NONE);
      },
    ],
    [
      'the tunnel label http gives HBONE and native_tunnel',
      { labels: { 'networking.istio.io/tunnel': 'http' } },
      w => {
        expect(w.tunnelProtocol).toBe(TunnelProtocol.HBONE);
        expect(w.nativeTunnel).toBe(true);
      },
    ],
    [
      'a not-ready pod is UNHEALTHY',
      { ready: false },
      w => {
        expect(w.status).toBe(WorkloadStatus.UNHEALTHY);
      },
    ],
    [
      'a pod without owner is named after itself with canonical revision latest',
      {},
      w => {
        expect(w.workloadName).toBe('p1');
        expect(w.canonicalName).toBe('p1');
        expect(w.canonicalRevision).toBe('latest');
      },
    ],
  ])('%s', (_name, input, check) => {
    const w = buildPodWorkload(makePod({ name: 'p1', node: 'n', ip: '10.1.1.1', ...input }), base);
    expect(w).toBeDefined();
    check(w!);
  });

  it('elides only the default trust domain', () => {
    const pod = makePod({ name: 'p', node: 'n', ip: '10.1.1.1' });
    expect(buildPodWorkload(pod, base)!.trustDomain).toBe('');
    expect(buildPodWorkload(pod, { ...base, trustDomain: 'corp.example' })!.trustDomain).toBe('corp.example');
  });

  it('skips terminal pods and pods without an IP', () => {
    expect(
      buildPodWorkload(makePod({ name: 'p', node: 'n', ip: '10.1.1.1', phase: 'Succeeded' }), base),
    ).toBeUndefined();
    expect(buildPodWorkload(makePod({ name: 'p', node: 'n', ip: '' }), base)).toBeUndefined();
  });

  it('marks deleting and hostNetwork pods', () => {
    const pod = makePod({ name: 'p', node: 'n', ip: '10.1.1.1' });
    const deleting: Pod = {
      ...pod,
      metadata: { ...pod.metadata, deletionTimestamp: '2026-01-01T00:00:00Z' },
    };
    expect(buildPodWorkload(deleting, base)!.status).toBe(WorkloadStatus.UNHEALTHY);
    const host: Pod = { ...pod, spec: { ...pod.spec, hostNetwork: true } };
    expect(buildPodWorkload(host, base)!.networkMode).toBe(NetworkMode.HOST_NETWORK);
  });

  it('carries dual-stack addresses in status order', () => {
    const pod = makePod({ name: 'p', node: 'n', ip: '10.1.1.1' });
    const dual: Pod = { ...pod, status: { ...pod.status, podIPs: [{ ip: '10.1.1.1' }, { ip: 'fd00::1' }] } };
    const w = buildPodWorkload(dual, base)!;
    expect((w.addresses ?? []).map(a => a.length)).toEqual([4, 16]);
    expect(Array.from(w.addresses?.[1] ?? [])).toEqual([0xfd, 0, ...Array<number>(13).fill(0), 1]);
  });
});

describe('podWorkloadName', () => {
  it.each([
    [
      'ReplicaSet with hash → Deployment',
      { kind: 'ReplicaSet', name: 'web-5f6d7' },
      { 'pod-template-hash': '5f6d7' },
      'web',
    ],
    ['ReplicaSet without hash label', { kind: 'ReplicaSet', name: 'web-5f6d7' }, {}, 'web-5f6d7'],
    ['Job created by a CronJob', { kind: 'Job', name: 'nightly-28912345' }, {}, 'nightly'],
    ['plain Job', { kind: 'Job', name: 'migrate' }, {}, 'migrate'],
    ['StatefulSet', { kind: 'StatefulSet', name: 'db' }, {}, 'db'],
    [
      'Argo Rollout ReplicaSet',
      { kind: 'ReplicaSet', name: 'shop-6c8f' },
      { 'rollouts-pod-template-hash': '6c8f' },
      'shop',
    ],
    [
      'OpenShift DeploymentConfig',
      { kind: 'ReplicationController', name: 'legacy-3' },
      { deploymentconfig: 'legacy' },
      'legacy',
    ],
  ])('%s', (_n, owner, labels, expected) => {
    expect(podWorkloadName(makePod({ name: 'x', node: 'n', ip: '10.0.0.1', owner, labels }))).toBe(expected);
  });

  it('names a pod without generateName after itself even when a controller owns it, as upstream', () => {
    const pod = makePod({
      name: 'api-0',
      node: 'n',
      ip: '10.0.0.1',
      owner: { kind: 'StatefulSet', name: 'api' },
    });
    expect(podWorkloadName(pod)).toBe('api');
    expect(podWorkloadName({ ...pod, metadata: { ...pod.metadata, generateName: '' } })).toBe('api-0');
  });

  it('ignores owners that are not the controller, as upstream does (the pod is named after itself)', () => {
    const pod = makePod({ name: 'web-5f6d7-abcde', node: 'n', ip: '10.0.0.1' });
    const owned = {
      ...pod,
      metadata: {
        ...pod.metadata,
        generateName: 'web-5f6d7-',
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-5f6d7', uid: 'u' }],
      },
    };
    expect(podWorkloadName(owned)).toBe('web-5f6d7-abcde');
  });
});

describe('canonicalService', () => {
  it('prefers the istio labels, then app.kubernetes.io, then app/version', () => {
    expect(
      canonicalService(
        { 'service.istio.io/canonical-name': 'a', 'app.kubernetes.io/name': 'b', app: 'c', version: 'v' },
        'w',
      ),
    ).toEqual(['a', 'v']);
    expect(
      canonicalService({ 'app.kubernetes.io/name': 'b', 'app.kubernetes.io/version': '1.0' }, 'w'),
    ).toEqual(['b', '1.0']);
    expect(canonicalService({}, 'w')).toEqual(['w', 'latest']);
  });
});
