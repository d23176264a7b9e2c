import { describe, expect, it } from 'vitest';
import { toStruct } from '@ambient-mesh/xds-types';
import { parseNode } from './node-info.ts';

const on = { enableAmbient: true };

describe('parseNode', () => {
  it('parses a ztunnel node id and metadata', () => {
    const res = parseNode(
      {
        id: 'ztunnel~10.0.0.2~ztunnel-x.istio-system~istio-system.svc.cluster.local',
        cluster: '',
        metadata: toStruct({
          NAME: 'ztunnel-x',
          NAMESPACE: 'istio-system',
          INSTANCE_IPS: '10.0.0.2,fd00::2',
          NODE_NAME: 'n1',
          CLUSTER_ID: 'c1',
        }),
        locality: null,
        userAgentName: '',
        clientFeatures: [],
      },
      on,
    );
    expect(res.ok && res.value).toMatchObject({
      type: 'ztunnel',
      ips: ['10.0.0.2', 'fd00::2'],
      namespace: 'istio-system',
      podName: 'ztunnel-x',
      nodeName: 'n1',
      clusterId: 'c1',
    });
  });

  it('falls back to the id for IP and namespace', () => {
    const res = parseNode(
      {
        id: 'ztunnel~1.1.1.1~zt.ns1~ns1.svc.cluster.local',
        cluster: '',
        metadata: null,
        locality: null,
        userAgentName: '',
        clientFeatures: [],
      },
      on,
    );
    expect(res.ok && [res.value.ips, res.value.namespace, res.value.podName]).toEqual([
      ['1.1.1.1'],
      'ns1',
      'zt',
    ]);
  });

  it.each([
    ['no node', undefined, on, 'must carry a node'],
    ['three parts', { id: 'ztunnel~1.1.1.1~zt.ns' }, on, '3 "~"-separated parts'],
    ['an unknown type', { id: 'robot~1.1.1.1~zt.ns~ns.svc.cluster.local' }, on, 'unknown proxy type'],
    ['no IP', { id: 'ztunnel~nope~zt.ns~ns.svc.cluster.local' }, on, 'no valid IP'],
    [
      'ambient off',
      { id: 'ztunnel~1.1.1.1~zt.ns~ns.svc.cluster.local' },
      { enableAmbient: false },
      'PILOT_ENABLE_AMBIENT',
    ],
  ])('rejects %s', (_n, partial, opts, message) => {
    const node =
      partial === undefined
        ? undefined
        : { cluster: '', metadata: null, locality: null, userAgentName: '', clientFeatures: [], ...partial };
    const res = parseNode(node, opts);
    expect(res.ok).toBe(false);
    if (!res.ok) {
      expect(res.error.code).toBe('ISTIOD_NODE_INVALID');
      expect(res.error.message).toContain(message);
    }
  });
});
