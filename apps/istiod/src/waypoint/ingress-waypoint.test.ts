import { fromStruct } from '@ambient-mesh/xds-types';
import { describe, expect, it } from 'vitest';
import { makePod, makeService } from '../testing/fixtures.ts';
import { makeBackendPod, makeBoundService, makeWaypointGateway } from '../testing/waypoint-fixtures.ts';
import { waypointIndexes } from '../testing/waypoint-indexes.ts';
import { WaypointKinds as K } from './waypoint-index.ts';

const CLUSTER = 'outbound|80||reviews.ns1.svc.cluster.local';

interface Cla {
  endpoints: {
    lbEndpoints: {
      endpoint: { address: { socketAddress: { address: string; portValue: number } } };
      metadata: { filterMetadata: { tunnel?: unknown } };
    }[];
  }[];
}

function summary(cla: object | undefined): (string | number)[][] {
  return ((cla as Cla | undefined)?.endpoints ?? []).flatMap(l =>
    l.lbEndpoints.map(e => [
      e.endpoint.address.socketAddress.address,
      e.endpoint.address.socketAddress.portValue,
      e.metadata.filterMetadata.tunnel === undefined
        ? 'direct'
        : (fromStruct(e.metadata.filterMetadata.tunnel as never) as { destination: string }).destination,
    ]),
  );
}

function setup(ingressLabel: string | undefined) {
  const h = waypointIndexes();
  h.upsert(K.GATEWAY, makeWaypointGateway('wp1', 'ns1'));
  const svc = makeBoundService('reviews', 'ns1', 'wp1', '10.96.0.10');
  h.upsert(
    K.SERVICE,
    ingressLabel === undefined
      ? svc
      : {
          ...svc,
          metadata: {
            ...svc.metadata,
            labels: { ...svc.metadata?.labels, 'istio.io/ingress-use-waypoint': ingressLabel },
          },
        },
  );
  // A backend in the ambient mesh (the CNI's redirection annotation).
  const backend = makeBackendPod('reviews', 'ns1', '10.244.0.5');
  h.upsert(K.POD, {
    ...backend,
    metadata: { ...backend.metadata, annotations: { 'ambient.istio.io/redirection': 'enabled' } },
  });
  // The waypoint's pod, as the deployment controller labels it.
  h.upsert(
    K.POD,
    makePod({
      name: 'wp1-abc-1',
      namespace: 'ns1',
      node: 'node-1',
      ip: '10.244.0.99',
      labels: { 'gateway.networking.k8s.io/gateway-name': 'wp1' },
    }),
  );
  return h;
}

describe('istio.io/ingress-use-waypoint: the ingress cluster of a Service', () => {
  it('points at the waypoint pods (HBONE port, Service VIP:port as the tunnel destination) when the label is true', () => {
    const h = setup('true');
    expect(h.bindings.waypointOf('service', 'ns1/reviews')).toBe('ns1/wp1');
    expect(
      summary(h.waypoints.ingressLoadAssignment(CLUSTER, { namespace: 'ns1', name: 'reviews' }, 80)),
    ).toEqual([['10.244.0.99', 15008, '10.96.0.10:80']]);
  });

  it('goes to the backends without the label, with another value, or without a waypoint (HBONE only for mesh pods)', () => {
    for (const label of [undefined, 'false']) {
      const h = setup(label);
      expect(
        summary(h.waypoints.ingressLoadAssignment(CLUSTER, { namespace: 'ns1', name: 'reviews' }, 80)),
      ).toEqual([['10.244.0.5', 15008, '10.244.0.5:8080']]);
    }
    const h = waypointIndexes();
    h.upsert(
      K.SERVICE,
      makeService(
        'plain',
        'ns1',
        {
          clusterIP: '10.96.0.11',
          clusterIPs: ['10.96.0.11'],
          selector: { app: 'plain' },
          ports: [{ name: 'http', port: 80, targetPort: 8080 }],
        },
        { 'istio.io/ingress-use-waypoint': 'true' },
      ),
    );
    h.upsert(K.POD, makeBackendPod('plain', 'ns1', '10.244.0.7'));
    // Outside the mesh (no redirection annotation): plainly at the pod's target port, no tunnel.
    expect(summary(h.waypoints.ingressLoadAssignment('c', { namespace: 'ns1', name: 'plain' }, 80))).toEqual([
      ['10.244.0.7', 8080, 'direct'],
    ]);
    expect(h.waypoints.ingressLoadAssignment('c', { namespace: 'ns1', name: 'plain' }, 81)).toBeUndefined();
  });
});
