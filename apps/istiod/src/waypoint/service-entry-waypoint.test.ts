import type { Condition } from '@ambient-mesh/kube';
import { silentLogger, systemTimers } from '@ambient-mesh/runtime';
import { describe, expect, it } from 'vitest';
import { WaypointStatusWriter } from '../gateway/waypoint-status.ts';
import type { ServiceEntry } from '../kube/objects.ts';
import { makeNamespace } from '../testing/fixtures.ts';
import { makeWaypointGateway } from '../testing/waypoint-fixtures.ts';
import { waypointIndexes } from '../testing/waypoint-indexes.ts';
import { compileAuthorizationPolicyObject } from '../wds/policies.ts';
import { validateServiceEntry } from '../wds/service-entry.ts';
import { WdsIndex } from '../wds/wds-index.ts';
import { EnvoyType, EnvoyTypeUrls, decodeEnvoy } from './envoy-protos.ts';
import {
  buildServiceEntryCluster,
  entryClusterType,
  entryPortProtocol,
  serviceEntryTargets,
} from './translate-service-entry.ts';
import { WaypointKinds as K } from './waypoint-index.ts';

const HTTPBIN = 'inbound-vip|80|http|httpbin.org';
const HTTPBIN_TLS = 'inbound-vip|443|tcp|httpbin.org';

function entry(
  spec: Partial<ServiceEntry['spec']> = {},
  labels: Record<string, string> = { 'istio.io/use-waypoint': 'egress' },
  name = 'httpbin',
): ServiceEntry {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { namespace: 'egress', name, labels, generation: 3 },
    spec: {
      hosts: ['httpbin.org'],
      addresses: ['240.240.0.1'],
      ports: [
        { number: 80, name: 'http', protocol: 'HTTP' },
        { number: 443, name: 'tls', protocol: 'TLS' },
      ],
      resolution: 'DNS',
      ...spec,
    },
  };
}

function valid(se: ServiceEntry) {
  const v = validateServiceEntry(se);
  if (!v.ok) throw new Error(JSON.stringify(v.errors));
  return v.value;
}

describe('ServiceEntry translation for a waypoint (pure)', () => {
  it('maps the port protocol to the chain kind, as upstream: HTTP ones L7, gRPC/HTTP2 over HTTP/2, the rest TCP', () => {
    expect(entryPortProtocol('HTTP')).toBe('http');
    expect(entryPortProtocol('http2')).toBe('grpc');
    expect(entryPortProtocol('GRPC')).toBe('grpc');
    expect(entryPortProtocol('TLS')).toBe('tcp');
    expect(entryPortProtocol('')).toBe('tcp');
  });

  it('names one target per host and port with its VIPs, and leaves out wildcard hosts and hosts without a VIP', () => {
    const targets = serviceEntryTargets(
      valid(entry({ hosts: ['httpbin.org', '*.example.com'], resolution: 'NONE' })),
    );
    expect(targets.map(t => [t.name, t.vips])).toEqual([
      [HTTPBIN, ['240.240.0.1']],
      [HTTPBIN_TLS, ['240.240.0.1']],
    ]);
    expect(serviceEntryTargets(valid(entry({ addresses: [] })))).toEqual([]);
  });

  it('follows the resolution: DNS → STRICT_DNS with the host inline, DNS_ROUND_ROBIN → LOGICAL_DNS, STATIC → EDS, NONE → ORIGINAL_DST', () => {
    const dns = valid(entry());
    expect(entryClusterType(dns)).toBe('STRICT_DNS');
    const [http] = serviceEntryTargets(dns);
    const built = buildServiceEntryCluster(dns, http!);
    expect(built.loadAssignment).toBeUndefined();
    expect(built.cluster).toMatchObject({
      name: HTTPBIN,
      type: 'STRICT_DNS',
      respectDnsTtl: true,
      dnsLookupFamily: 'V4_ONLY',
      loadAssignment: {
        clusterName: HTTPBIN,
        endpoints: [
          {
            lbEndpoints: [
              { endpoint: { address: { socketAddress: { address: 'httpbin.org', portValue: 80 } } } },
            ],
          },
        ],
      },
    });
    expect(built.cluster).not.toHaveProperty('edsClusterConfig');
    expect(entryClusterType(valid(entry({ resolution: 'DNS_ROUND_ROBIN' })))).toBe('LOGICAL_DNS');

    const none = valid(entry({ resolution: 'NONE' }));
    const passthrough = buildServiceEntryCluster(none, serviceEntryTargets(none)[0]!);
    expect(passthrough.cluster).toMatchObject({ type: 'ORIGINAL_DST', lbPolicy: 'CLUSTER_PROVIDED' });
    expect(passthrough.loadAssignment).toBeUndefined();

    const statik = valid(
      entry({
        resolution: 'STATIC',
        endpoints: [{ address: '203.0.113.7', ports: { http: 8080 } }, { address: '203.0.113.6' }],
      }),
    );
    const eds = buildServiceEntryCluster(statik, serviceEntryTargets(statik)[0]!);
    expect(eds.cluster).toMatchObject({ type: 'EDS', edsClusterConfig: { serviceName: HTTPBIN } });
    expect(eds.loadAssignment).toEqual({
      clusterName: HTTPBIN,
      endpoints: [
        {
          lbEndpoints: [
            { endpoint: { address: { socketAddress: { address: '203.0.113.6', portValue: 80 } } } },
            { endpoint: { address: { socketAddress: { address: '203.0.113.7', portValue: 8080 } } } },
          ],
        },
      ],
    });
  });
});

describe('ServiceEntry bound to a waypoint (WDS index + waypoint index)', () => {
  function setup() {
    const h = waypointIndexes();
    h.upsert(K.GATEWAY, makeWaypointGateway('egress', 'egress'));
    h.upsert('Namespace', makeNamespace('egress'));
    return h;
  }

  it('puts the waypoint on the WDS Service of each host and records the binding', () => {
    const h = setup();
    h.upsert(K.SERVICE_ENTRY, entry());
    const svc = h.wds.addresses.get('egress/httpbin.org')?.value as {
      service?: { waypoint?: { hostname?: { hostname: string }; hboneMtlsPort: number } };
    };
    expect(svc.service?.waypoint).toMatchObject({
      hostname: { hostname: 'egress.egress.svc.cluster.local' },
      hboneMtlsPort: 15008,
    });
    expect(h.bindings.waypointOf('serviceentry', 'egress/httpbin')).toBe('egress/egress');
    expect([...h.bindings.serviceEntries('egress/egress')]).toEqual(['egress/httpbin']);
  });

  it("programs the waypoint with the entry's chains, route configuration and clusters, and withdraws them when the label goes", () => {
    const h = setup();
    const change = h.upsert(K.SERVICE_ENTRY, entry());
    expect([...change.waypoints]).toEqual(['egress/egress']);
    const wp = 'egress/egress';
    const main = decodeEnvoy(
      EnvoyType.listener,
      h.waypoints.resourcesFor(wp, EnvoyTypeUrls.listener).get('main_internal')!.value,
    ) as { filterChains: { name: string; filterChainMatch: { destinationPort: number } }[] };
    expect(main.filterChains.map(c => [c.name, c.filterChainMatch.destinationPort])).toEqual([
      [HTTPBIN_TLS, 443],
      [HTTPBIN, 80],
    ]);
    const rc = decodeEnvoy(
      EnvoyType.routeConfiguration,
      h.waypoints.resourcesFor(wp, EnvoyTypeUrls.routeConfiguration).get(HTTPBIN)!.value,
    ) as { virtualHosts: { name: string; routes: { route: { cluster: string } }[] }[] };
    expect(rc.virtualHosts[0]!.name).toBe('httpbin.org:80');
    expect(rc.virtualHosts[0]!.routes[0]!.route.cluster).toBe(HTTPBIN);
    const clusters = h.waypoints.resourcesFor(wp, EnvoyTypeUrls.cluster);
    const http = decodeEnvoy(EnvoyType.cluster, clusters.get(HTTPBIN)!.value);
    expect(http).toMatchObject({ type: 'STRICT_DNS' });
    expect(clusters.has(HTTPBIN_TLS)).toBe(true);
    // DNS clusters carry their endpoints inline: no ClusterLoadAssignment.
    expect(h.waypoints.resourcesFor(wp, EnvoyTypeUrls.clusterLoadAssignment).has(HTTPBIN)).toBe(false);

    h.upsert(K.SERVICE_ENTRY, entry({}, {}));
    expect(h.bindings.waypointOf('serviceentry', 'egress/httpbin')).toBeUndefined();
    expect(h.waypoints.resourcesFor(wp, EnvoyTypeUrls.cluster).has(HTTPBIN)).toBe(false);
  });

  it("binds through the namespace's label, and a ServiceEntry's `none` opts out", () => {
    const h = waypointIndexes();
    h.upsert(K.GATEWAY, makeWaypointGateway('egress', 'egress'));
    h.upsert('Namespace', makeNamespace('egress', { 'istio.io/use-waypoint': 'egress' }));
    h.upsert(K.SERVICE_ENTRY, entry({}, {}));
    expect(h.bindings.waypointOf('serviceentry', 'egress/httpbin')).toBe('egress/egress');
    h.upsert(K.SERVICE_ENTRY, entry({}, { 'istio.io/use-waypoint': 'none' }));
    expect(h.bindings.waypointOf('serviceentry', 'egress/httpbin')).toBeUndefined();
  });

  it('reports WaypointBound on the ServiceEntry as upstream does for Services: False with the reason, then True; leader-gated', async () => {
    const writes: [string, readonly Condition[]][] = [];
    let leader = false;
    const status = new WaypointStatusWriter({
      patch: (ns, name, conditions) => {
        writes.push([`${ns}/${name}`, conditions]);
        return Promise.resolve();
      },
      logger: silentLogger(),
      timers: systemTimers,
      isLeader: () => leader,
    });
    // The WDS index's binding hook as the Gateway side wires it: ServiceEntries to their writer.
    const wds = new WdsIndex({
      clusterId: 'Kubernetes',
      trustDomain: 'cluster.local',
      domain: 'cluster.local',
      rootNamespace: 'istio-system',
      compilePolicy: compileAuthorizationPolicyObject,
      onWaypointBinding: (target, binding) => {
        if (target.kind === 'serviceentry') status.update(target.obj, binding, target.key);
      },
    });
    wds.upsert('Namespace', makeNamespace('egress'));
    wds.upsert('ServiceEntry', entry());
    await status.idle();
    expect(writes).toEqual([]); // not the leader
    leader = true;
    status.resync();
    await status.idle();
    expect(writes.pop()).toEqual([
      'egress/httpbin',
      [
        {
          type: 'istio.io/WaypointBound',
          status: 'False',
          reason: 'WaypointIsNotReady',
          message: 'waypoint "egress/egress" is not ready',
          observedGeneration: 3,
        },
      ],
    ]);
    wds.upsert('Gateway', makeWaypointGateway('egress', 'egress'));
    await status.idle();
    expect(writes.pop()).toEqual([
      'egress/httpbin',
      [
        {
          type: 'istio.io/WaypointBound',
          status: 'True',
          reason: 'WaypointAccepted',
          message: 'Successfully attached to waypoint egress/egress',
          observedGeneration: 3,
        },
      ],
    ]);
    wds.upsert(
      'ServiceEntry',
      entry({}, { 'istio.io/use-waypoint': 'egress', 'istio.io/ingress-use-waypoint': 'true' }),
    );
    await status.idle();
    expect(writes.pop()?.[1][0]?.message).toBe(
      'Successfully attached to waypoint egress/egress. Ingress traffic will traverse the waypoint',
    );
    // The label is gone while the entry's status still shows the condition: it is removed.
    wds.upsert('ServiceEntry', {
      ...entry({}, {}),
      status: {
        conditions: [{ type: 'istio.io/WaypointBound', status: 'True', reason: 'WaypointAccepted' }],
      },
    } as ServiceEntry);
    await status.idle();
    expect(writes.pop()).toEqual(['egress/httpbin', []]);
  });
});
