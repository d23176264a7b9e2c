import { describe, expect, it } from 'vitest';
import { configDump } from './admin-server.ts';
import { decimalSerial, dumpConfig } from './config-dump.ts';
import { loadConfig } from './config.ts';
import { POD_A_UID, POD_C_UID, fixtureSources } from './testing/dump-fixture.ts';

// The field names and shapes istioctl's `configdump.ZtunnelDump` (istio.io/istio
// istioctl/pkg/writer/ztunnel/configdump) and Kiali decode, field by field.
describe("config_dump in upstream ztunnel's shapes", () => {
  const dump = JSON.parse(JSON.stringify(configDump(fixtureSources()))) as Record<string, unknown>;

  it('writes workloads with workloadIps, protocol, waypoint destination string and services', () => {
    const workloads = dump.workloads as Record<string, unknown>[];
    const a = workloads.find(w => w.uid === POD_A_UID);
    expect(a).toMatchObject({
      uid: POD_A_UID,
      workloadIps: ['10.244.0.2'],
      protocol: 'HBONE',
      networkMode: 'Standard',
      name: 'pod-a',
      namespace: 'default',
      serviceAccount: 'sa-a',
      workloadName: 'app-a',
      workloadType: 'pod',
      canonicalName: 'app-a',
      canonicalRevision: 'v1',
      node: 'node-1',
      status: 'Healthy',
      clusterId: 'Kubernetes',
      capacity: 1,
      waypoint: { destination: 'default/waypoint.default.svc.cluster.local', hboneMtlsPort: 15008 },
      services: ['default/svc-b.default.svc.cluster.local'],
      authorizationPolicies: ['default/allow-a'],
    });
    expect(a).not.toHaveProperty('addresses');
    expect(a).not.toHaveProperty('tunnelProtocol');
    const c = workloads.find(w => w.uid === POD_C_UID);
    expect(c).toMatchObject({ protocol: 'TCP', workloadIps: ['10.244.0.3'] });
    expect(c).not.toHaveProperty('waypoint');
  });

  it('writes services with vips, a ports map and endpoints keyed by workload uid', () => {
    const services = dump.services as Record<string, unknown>[];
    expect(services).toHaveLength(2);
    expect(services.find(s => s.name === 'svc-b')).toEqual({
      name: 'svc-b',
      namespace: 'default',
      hostname: 'svc-b.default.svc.cluster.local',
      vips: ['/10.96.0.10'],
      ports: { '80': 8080, '443': 8443 },
      endpoints: {
        [POD_A_UID]: { workloadUid: POD_A_UID, port: { '80': 9090, '443': 8443 }, status: 'Healthy' },
      },
      subjectAltNames: [],
      waypoint: { destination: '/10.96.0.20', hboneMtlsPort: 15008 },
      ipFamilies: 'IPv4',
    });
  });

  it('writes policies with nested rules lists and externally tagged string matches', () => {
    const policies = dump.policies as Record<string, unknown>[];
    expect(policies).toHaveLength(1);
    const p = policies[0] as { rules: Record<string, unknown>[][][] } & Record<string, unknown>;
    expect(p).toMatchObject({
      name: 'allow-a',
      namespace: 'default',
      scope: 'WorkloadSelector',
      action: 'Allow',
      dryRun: false,
    });
    expect(p.rules).toHaveLength(1);
    expect(p.rules[0]).toHaveLength(2);
    expect(p.rules[0]?.[0]?.[0]).toMatchObject({
      namespaces: [{ Exact: 'default' }],
      principals: [{ Prefix: 'spiffe://cluster.local/ns/default/' }, { Presence: [] }],
      sourceIps: ['10.244.0.0/16'],
      destinationPorts: [9090],
    });
    expect(p.rules[0]?.[1]?.[0]).toMatchObject({ notNamespaces: [{ Suffix: '-test' }] });
  });

  it('writes certificate serials in decimal', () => {
    expect(dump.certificates).toEqual([
      {
        identity: 'spiffe://cluster.local/ns/default/sa/sa-a',
        state: 'Available',
        certChain: [
          {
            pem: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
            serialNumber: '2587',
            validFrom: '2026-01-01T00:00:00.000Z',
            expirationTime: '2026-01-02T00:00:00.000Z',
          },
        ],
        rootCerts: [],
      },
    ]);
    expect(decimalSerial('00:FF')).toBe('255');
    expect(decimalSerial('')).toBe('0');
  });

  it('writes workloadState with info, state and live connections', () => {
    expect(dump.workloadState).toEqual({
      [POD_A_UID]: {
        info: { name: 'pod-a', namespace: 'default', serviceAccount: 'sa-a' },
        state: 'Up',
        connections: {
          inbound: [],
          outbound: [
            {
              src: '10.244.0.2:40000',
              originalDst: '10.96.0.10:80',
              actualDst: '10.244.0.5:15008',
              protocol: 'HBONE',
            },
          ],
        },
      },
    });
  });

  it("writes config with upstream's field names and serde shapes, and no headers of our own", () => {
    const config = dump.config as Record<string, unknown>;
    expect(config).toMatchObject({
      proxy: true,
      dnsProxy: true,
      windowSize: 4 * 1024 * 1024,
      frameSize: 1024 * 1024,
      poolMaxStreamsPerConn: 100,
      poolUnusedReleaseTimeout: { secs: 300, nanos: 0 },
      socks5Addr: null,
      adminAddr: { Localhost: [false, 15000] },
      statsAddr: { SocketAddr: '0.0.0.0:15020' },
      readinessAddr: { SocketAddr: '0.0.0.0:15021' },
      inboundAddr: '[::]:15008',
      inboundPlaintextAddr: '[::]:15006',
      outboundAddr: '[::]:15001',
      ipv6Enabled: true,
      dnsProxyAddr: { Localhost: [false, 15053] },
      illegalPorts: [15001, 15006, 15008],
      localNode: 'node-1',
      proxyMode: 'Shared',
      clusterId: 'Kubernetes',
      clusterDomain: 'cluster.local',
      caAddress: 'https://istiod.istio-system.svc:15012',
      xdsAddress: 'https://istiod.istio-system.svc:15012',
      caRootCert: { File: './var/run/secrets/istio/root-cert.pem' },
      xdsRootCert: { File: './var/run/secrets/istio/root-cert.pem' },
      altCaHostname: null,
      altXdsHostname: null,
      secretTtl: { secs: 86400, nanos: 0 },
      selfTerminationDeadline: { secs: 5, nanos: 0 },
      xdsOnDemand: false,
      fakeCa: false,
      requireOriginalSource: null,
      inpodUds: '/var/run/ztunnel/ztunnel.sock',
      inpodPortReuse: true,
      packetMark: 1337,
      xdsHeaders: [],
      caHeaders: [],
    });
    expect(config.proxyMetadata).toMatchObject({ CLUSTER_ID: 'Kubernetes' });
    // Our own Config's names stay out of the dump.
    for (const ours of ['adminAddress', 'xdsRootCaPath', 'tokenPath', 'logFormat', 'secretTtlSeconds'])
      expect(config).not.toHaveProperty(ours);
  });

  it('writes IPv4 wildcards for the in-pod listeners and ipv6Enabled false when IPV6_ENABLED is false', () => {
    const config = dumpConfig(
      loadConfig({ POD_NAME: 'z', POD_NAMESPACE: 'istio-system', NODE_NAME: 'n', IPV6_ENABLED: 'false' }),
    );
    expect(config).toMatchObject({
      inboundAddr: '0.0.0.0:15008',
      inboundPlaintextAddr: '0.0.0.0:15006',
      outboundAddr: '0.0.0.0:15001',
      ipv6Enabled: false,
    });
  });
});
