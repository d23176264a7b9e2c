import { describe, expect, it } from 'vitest';
import { nodeId, parseNodeId, ProxyType } from './node-id.ts';

describe('node id', () => {
  it('builds the id istiod parses and parses it back', () => {
    const id = nodeId({
      type: ProxyType.ztunnel,
      ip: '10.244.0.5',
      podName: 'ztunnel-abc',
      namespace: 'istio-system',
    });
    expect(id).toBe('ztunnel~10.244.0.5~ztunnel-abc.istio-system~istio-system.svc.cluster.local');
    expect(parseNodeId(id)).toEqual({
      ok: true,
      value: {
        type: 'ztunnel',
        ip: '10.244.0.5',
        podName: 'ztunnel-abc',
        namespace: 'istio-system',
        domain: 'cluster.local',
      },
    });
  });

  it('keeps dots in pod names and takes the namespace after the last dot', () => {
    const parsed = parseNodeId('waypoint~10.0.0.1~my.pod.sample~sample.svc.example.org');
    expect(parsed).toMatchObject({
      ok: true,
      value: { podName: 'my.pod', namespace: 'sample', domain: 'example.org' },
    });
  });

  it('refuses ids with the wrong shape or an unknown type, saying why', () => {
    expect(parseNodeId('ztunnel~1.2.3.4~pod')).toEqual({
      ok: false,
      reason: expect.stringContaining('not 4'),
    });
    expect(parseNodeId('proxy~1.2.3.4~p.ns~ns.svc.cluster.local')).toEqual({
      ok: false,
      reason: 'unknown proxy type "proxy"',
    });
    expect(parseNodeId('ztunnel~1.2.3.4~pod~ns.svc.cluster.local')).toEqual({
      ok: false,
      reason: expect.stringContaining('not <pod>.<namespace>'),
    });
  });
});
