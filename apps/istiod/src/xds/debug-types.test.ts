import { describe, expect, it } from 'vitest';
import { DebugType } from '@ambient-mesh/mesh-api';
import type { TypeSyncStatus } from '@ambient-mesh/xds';
import { ClientConfigCodec, fromStruct, status } from '@ambient-mesh/xds-types';
import { buildInfo } from '../build-info.ts';
import {
  answerDebugRequest,
  controlPlaneIdentifier,
  syncClientConfig,
  type DebugConnection,
} from './debug-types.ts';
import type { ProxyInfo } from './node-info.ts';

function proxy(type: ProxyInfo['type'], pod: string, namespace: string, metadata = {}): ProxyInfo {
  return {
    id: `${type}~10.0.0.1~${pod}.${namespace}~${namespace}.svc.cluster.local`,
    type,
    ips: ['10.0.0.1'],
    podId: `${pod}.${namespace}`,
    namespace,
    podName: pod,
    nodeName: 'node-0',
    clusterId: 'Kubernetes',
    serviceAccount: '',
    metadata,
  };
}

function typeStatus(typeUrl: string, o: Partial<TypeSyncStatus> = {}): TypeSyncStatus {
  return {
    typeUrl,
    wildcard: true,
    subscribedNames: 0,
    resourcesKnown: 0,
    lastNonceSent: '1',
    lastVersionSent: '1',
    lastNonceAcked: '1',
    lastVersionAcked: '1',
    lastSentAtMs: 1_700_000_000_500,
    lastNack: undefined,
    lastNackNonce: '',
    nacks: 0,
    state: 'synced',
    ...o,
  };
}

const ztunnel: DebugConnection = {
  proxy: proxy('ztunnel', 'ztunnel-a', 'istio-system', { ISTIO_VERSION: '0.1.0' }),
  types: [
    typeStatus('type.googleapis.com/istio.workload.Address', {
      lastNonceSent: '2',
      lastNack: 'bad address',
      lastNackNonce: '2',
    }),
    typeStatus('type.googleapis.com/istio.security.Authorization', { lastNonceAcked: '' }),
  ],
};
const istioctl: DebugConnection = { proxy: proxy('sidecar', 'test-1', 'default'), types: [] };
const sidecar: DebugConnection = {
  proxy: proxy('sidecar', 'app-1', 'demo', { PROXY_CONFIG: {} }),
  types: [typeStatus('type.googleapis.com/envoy.config.cluster.v3.Cluster', { lastNonceSent: '' })],
};

describe('istioctl debug types', () => {
  it('a ClientConfig per proxy: <pod>.<namespace>, metadata, per-type status sorted by type URL', () => {
    const cc = syncClientConfig(ztunnel);
    expect(cc.node?.id).toBe('ztunnel-a.istio-system');
    expect(fromStruct(cc.node?.metadata ?? undefined)).toEqual({
      CLUSTER_ID: 'Kubernetes',
      NAMESPACE: 'istio-system',
      ISTIO_VERSION: '0.1.0',
    });
    expect(cc.genericXdsConfigs).toEqual([
      {
        typeUrl: 'type.googleapis.com/istio.security.Authorization',
        configStatus: status.ConfigStatus.STALE,
        lastUpdated: { seconds: 1_700_000_000, nanos: 500_000_000 },
        errorState: null,
      },
      {
        typeUrl: 'type.googleapis.com/istio.workload.Address',
        configStatus: status.ConfigStatus.ERROR,
        lastUpdated: { seconds: 1_700_000_000, nanos: 500_000_000 },
        errorState: {
          lastUpdateAttempt: { seconds: 1_700_000_000, nanos: 500_000_000 },
          details: 'bad address',
        },
      },
    ]);
    expect(syncClientConfig(sidecar).genericXdsConfigs?.[0]?.configStatus).toBe(status.ConfigStatus.NOT_SENT);
  });

  it('syncz lists ztunnels and PROXY_CONFIG proxies, not debug clients; other callers see their namespace', () => {
    const ask = (namespace: string | undefined) =>
      answerDebugRequest({
        typeUrl: DebugType.syncz,
        resourceNames: [],
        caller: namespace === undefined ? undefined : { namespace, serviceAccount: 'default' },
        systemNamespace: 'istio-system',
        connections: [sidecar, istioctl, ztunnel],
        controlPlane: controlPlaneIdentifier('istiod-0', buildInfo),
      });
    const names = (ns: string | undefined) => ask(ns)?.resources.map(r => r.name);
    expect(names('istio-system')).toEqual(['app-1.demo', 'ztunnel-a.istio-system']);
    expect(names(undefined)).toEqual(['app-1.demo', 'ztunnel-a.istio-system']);
    expect(names('demo')).toEqual(['app-1.demo']);
    const any = ask('istio-system')?.resources[1]?.resource;
    expect(ClientConfigCodec.decode(any?.value as Uint8Array).node?.id).toBe('ztunnel-a.istio-system');
    expect(JSON.parse(ask('demo')?.controlPlane?.identifier ?? '')).toEqual({
      Component: 'istiod',
      ID: 'istiod-0',
      Info: {
        version: buildInfo.version,
        revision: buildInfo.gitRevision,
        golang_version: `node-${process.versions.node}`,
        status: buildInfo.buildStatus,
        tag: buildInfo.gitTag,
      },
    });
  });

  it('answers other istio.io/debug/ types empty and leaves every other type URL alone', () => {
    const base = {
      resourceNames: ['ztunnel-a.istio-system'],
      caller: undefined,
      systemNamespace: 'istio-system',
      connections: [ztunnel],
      controlPlane: '{}',
    };
    expect(answerDebugRequest({ ...base, typeUrl: DebugType.configDump })).toEqual({
      resources: [],
      controlPlane: { identifier: '{}' },
    });
    expect(
      answerDebugRequest({ ...base, typeUrl: 'type.googleapis.com/envoy.config.cluster.v3.Cluster' }),
    ).toBe(undefined);
  });
});
