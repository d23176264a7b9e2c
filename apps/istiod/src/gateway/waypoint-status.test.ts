import type { Condition } from '@ambient-mesh/kube';
import { silentLogger, systemTimers } from '@ambient-mesh/runtime';
import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../kube/objects.ts';
import { WdsIndex } from '../wds/wds-index.ts';
import { compileAuthorizationPolicyObject } from '../wds/policies.ts';
import type { WaypointBinding } from './binding.ts';
import { WaypointStatusWriter } from './waypoint-status.ts';

function writer(): { w: WaypointStatusWriter; writes: [string, readonly Condition[]][] } {
  const writes: [string, readonly Condition[]][] = [];
  const w = new WaypointStatusWriter({
    patch: (ns, name, conditions) => {
      writes.push([`${ns}/${name}`, conditions]);
      return Promise.resolve();
    },
    logger: silentLogger(),
    timers: systemTimers,
  });
  return { w, writes };
}

const bound: WaypointBinding = {
  kind: 'bound',
  waypoint: { namespace: 'app', name: 'wp' },
  address: { hboneMtlsPort: 15008 },
};

function svc(conditions?: Condition[]): KubeObject {
  return {
    metadata: { namespace: 'app', name: 'reviews', generation: 2 },
    ...(conditions === undefined ? {} : { status: { conditions } }),
  };
}

describe('WaypointStatusWriter', () => {
  it('writes WaypointBound=True for a bound Service, with its generation', async () => {
    const { w, writes } = writer();
    w.update(svc(), bound);
    await w.idle();
    expect(writes).toEqual([
      [
        'app/reviews',
        [
          {
            type: 'istio.io/WaypointBound',
            status: 'True',
            reason: 'WaypointAccepted',
            message: 'Successfully attached to waypoint app/wp',
            observedGeneration: 2,
          },
        ],
      ],
    ]);
  });

  it('skips a Service that already shows the condition, and writes nothing for one that never asked', async () => {
    const { w, writes } = writer();
    w.update(
      svc([
        {
          type: 'istio.io/WaypointBound',
          status: 'True',
          reason: 'WaypointAccepted',
          message: 'Successfully attached to waypoint app/wp',
          observedGeneration: 2,
          lastTransitionTime: '2026-01-01T00:00:00Z',
        },
      ]),
      bound,
    );
    w.update(svc(), { kind: 'none' });
    await w.idle();
    expect(writes).toEqual([]);
  });

  it('removes the condition when the Service no longer asks for a waypoint', async () => {
    const { w, writes } = writer();
    w.update(svc([{ type: 'istio.io/WaypointBound', status: 'False', reason: 'WaypointIsNotReady' }]), {
      kind: 'none',
    });
    await w.idle();
    expect(writes).toEqual([['app/reviews', []]]);
  });

  it('writes nothing while not the leader', async () => {
    const writes: string[] = [];
    const w = new WaypointStatusWriter({
      patch: ns => {
        writes.push(ns);
        return Promise.resolve();
      },
      logger: silentLogger(),
      timers: systemTimers,
      isLeader: () => false,
    });
    w.update(svc(), bound);
    await w.idle();
    expect(writes).toEqual([]);
  });
});

describe('WdsIndex waypoint binding hook', () => {
  it('reports each Service binding, and rebinds when the namespace label or the waypoint changes', () => {
    const seen: string[] = [];
    const index = new WdsIndex({
      clusterId: 'Kubernetes',
      trustDomain: 'cluster.local',
      domain: 'cluster.local',
      rootNamespace: 'istio-system',
      compilePolicy: compileAuthorizationPolicyObject,
      onWaypointBinding: (t, b) => {
        seen.push(`${t.kind} ${t.key} ${b.kind === 'error' ? b.reason : b.kind}`);
      },
    });
    index.upsert('Namespace', { metadata: { name: 'app' } });
    index.upsert('Service', {
      metadata: { namespace: 'app', name: 'reviews' },
      spec: { clusterIP: '10.96.0.5', ports: [{ port: 80 }] },
    } as KubeObject);
    index.upsert('Namespace', { metadata: { name: 'app', labels: { 'istio.io/use-waypoint': 'wp' } } });
    index.upsert('Gateway', {
      metadata: { namespace: 'app', name: 'wp' },
      spec: {
        gatewayClassName: 'istio-waypoint',
        listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }],
      },
      status: { addresses: [{ type: 'Hostname', value: 'wp.app.svc.cluster.local' }] },
    } as KubeObject);
    const wds = index.addresses.get('app/reviews.app.svc.cluster.local')?.value;
    expect(wds && 'service' in wds ? wds.service?.waypoint : undefined).toEqual({
      hostname: { namespace: 'app', hostname: 'wp.app.svc.cluster.local' },
      hboneMtlsPort: 15008,
    });
    expect(seen).toEqual([
      'service app/reviews none',
      'service app/reviews WaypointIsNotReady',
      'service app/reviews bound',
    ]);
  });
});
