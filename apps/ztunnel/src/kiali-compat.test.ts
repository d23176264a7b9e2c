// Kiali 2.x's ztunnel tab decodes ztunnel's /config_dump with Go's encoding/json into typed
// structs (its `ZtunnelConfigDump`: certificates, config, services, workloads; policies untyped).
// Go refuses a JSON value whose type does not fit its field (an array for a map, a string for an
// object, a fraction for an int), and then Kiali shows nothing. The Kiali the Go module proxy serves
// (1.82) has no ztunnel tab (docs/compatibility.md), so this checks our whole dump against the
// field types Kiali 2.x declares, with Go's decoding rules: unknown fields ignored, keys matched
// case-insensitively, `null` accepted for every type.
import { describe, expect, it } from 'vitest';
import { configDump } from './admin-server.ts';
import { loadConfig } from './config.ts';
import { dumpConfig } from './config-dump.ts';
import { fixtureSources } from './testing/dump-fixture.ts';

type GoType =
  | 'string'
  | 'int'
  | 'bool'
  | 'any'
  | { readonly slice: GoType }
  | { readonly map: GoType }
  | { readonly struct: Readonly<Record<string, GoType>> };

const duration: GoType = { struct: { nanos: 'int', secs: 'int' } };
const localhostAddress: GoType = { struct: { Localhost: { slice: 'any' } } };
const socketAddress: GoType = { struct: { SocketAddr: 'string' } };
const filePath: GoType = { struct: { File: 'string' } };
const waypoint: GoType = { struct: { destination: 'string', hboneMtlsPort: 'int' } };

/** The field types of Kiali 2.x's `ZtunnelConfigDump` (package kubernetes), as facts. */
const KIALI_ZTUNNEL_DUMP: GoType = {
  struct: {
    certificates: {
      slice: {
        struct: {
          certChain: {
            slice: {
              struct: {
                expirationTime: 'string',
                pem: 'string',
                serialNumber: 'string',
                validFrom: 'string',
              },
            },
          },
          identity: 'string',
          state: 'string',
        },
      },
    },
    config: {
      struct: {
        adminAddr: localhostAddress,
        altCaHostname: 'string',
        altXdsHostname: 'string',
        caAddress: 'string',
        caRootCert: filePath,
        clusterDomain: 'string',
        clusterId: 'string',
        connectionWindowSize: 'int',
        dnsProxy: 'bool',
        dnsProxyAddr: localhostAddress,
        dnsResolverCfg: {
          struct: {
            domain: 'string',
            name_servers: {
              slice: {
                struct: {
                  bind_addr: 'string',
                  protocol: 'string',
                  socket_addr: 'string',
                  tls_dns_name: 'string',
                  trust_negative_responses: 'bool',
                },
              },
            },
            search: { slice: 'string' },
          },
        },
        dnsResolverOpts: { struct: { attempts: 'int', cache_size: 'int', ndots: 'int', timeout: duration } },
        fakeCa: 'bool',
        fakeSelfInbound: 'bool',
        frameSize: 'int',
        illegalPorts: { slice: 'int' },
        inboundAddr: 'string',
        inboundPlaintextAddr: 'string',
        inpodPortReuse: 'bool',
        inpodUds: 'string',
        localNode: 'string',
        network: 'string',
        numWorkerThreads: 'int',
        outboundAddr: 'string',
        packetMark: 'int',
        poolMaxStreamsPerConn: 'int',
        poolUnusedReleaseTimeout: duration,
        proxy: 'bool',
        proxyArgs: 'string',
        proxyMetadata: { map: 'string' },
        proxyMode: 'string',
        proxyWorkloadInformation: 'string',
        readinessAddr: socketAddress,
        requireOriginalSource: 'string',
        secretTtl: duration,
        selfTerminationDeadline: duration,
        socks5Addr: 'string',
        statsAddr: socketAddress,
        windowSize: 'int',
        xdsAddress: 'string',
        xdsOnDemand: 'bool',
        xdsRootCert: filePath,
      },
    },
    policies: { slice: 'any' },
    services: {
      slice: {
        struct: {
          endpoints: { map: { struct: { port: { map: 'int' }, status: 'string', workloadUid: 'string' } } },
          hostname: 'string',
          ipFamilies: 'string',
          name: 'string',
          namespace: 'string',
          ports: { map: 'int' },
          subjectAltNames: { slice: 'string' },
          vips: { slice: 'string' },
          waypoint,
        },
      },
    },
    workloads: {
      slice: {
        struct: {
          canonicalName: 'string',
          canonicalRevision: 'string',
          clusterId: 'string',
          name: 'string',
          namespace: 'string',
          networkMode: 'string',
          node: 'string',
          protocol: 'string',
          serviceAccount: 'string',
          services: { slice: 'string' },
          status: 'string',
          trustDomain: 'string',
          uid: 'string',
          workloadIps: { slice: 'string' },
          workloadName: 'string',
          workloadType: 'string',
        },
      },
    },
  },
};

function describeType(t: GoType): string {
  if (typeof t === 'string') return t === 'any' ? 'interface {}' : t;
  if ('slice' in t) return `[]${describeType(t.slice)}`;
  if ('map' in t) return `map[string]${describeType(t.map)}`;
  return 'struct';
}

function jsonKind(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  return typeof v === 'object' ? 'object' : typeof v;
}

/** Go's json.Unmarshal type errors for `value` decoded into `type`, as `path: message` lines. */
function goDecodeErrors(value: unknown, type: GoType, path = ''): string[] {
  if (value === null || type === 'any') return [];
  const mismatch = [`${path}: cannot unmarshal ${jsonKind(value)} into ${describeType(type)}`];
  if (type === 'string') return typeof value === 'string' ? [] : mismatch;
  if (type === 'bool') return typeof value === 'boolean' ? [] : mismatch;
  if (type === 'int') return Number.isInteger(value) ? [] : mismatch;
  if ('slice' in type) {
    if (!Array.isArray(value)) return mismatch;
    return value.flatMap((v, i) => goDecodeErrors(v, type.slice, `${path}[${i}]`));
  }
  if (typeof value !== 'object' || Array.isArray(value)) return mismatch;
  const entries = Object.entries(value as Record<string, unknown>);
  if ('map' in type) return entries.flatMap(([k, v]) => goDecodeErrors(v, type.map, `${path}.${k}`));
  const fields = new Map(Object.entries(type.struct).map(([k, t]) => [k.toLowerCase(), t]));
  return entries.flatMap(([k, v]) => {
    const field = fields.get(k.toLowerCase());
    return field === undefined ? [] : goDecodeErrors(v, field, `${path}.${k}`);
  });
}

describe("our /config_dump decodes into Kiali 2.x's ztunnel dump types", () => {
  it('the whole dump decodes: workloads, services, certificates and config', () => {
    const dump: unknown = JSON.parse(JSON.stringify(configDump(fixtureSources())));
    expect(goDecodeErrors(dump, KIALI_ZTUNNEL_DUMP)).toEqual([]);
  });

  it('the config section decodes with every optional setting filled', () => {
    const config = loadConfig({
      POD_NAME: 'ztunnel-x',
      POD_NAMESPACE: 'istio-system',
      NODE_NAME: 'node-1',
      ALT_XDS_HOSTNAME: 'istiod.example',
      ALT_CA_HOSTNAME: 'ca.example',
      ISTIO_META_DNS_CAPTURE: 'true',
      ISTIO_METAJSON_LABELS: '{"app":"ztunnel"}',
      XDS_HEADER_X_TENANT: 'a',
    });
    const dump = JSON.parse(JSON.stringify({ config: dumpConfig(config) })) as unknown;
    expect(goDecodeErrors(dump, KIALI_ZTUNNEL_DUMP)).toEqual([]);
  });

  it("the check catches the shapes Kiali's decoder refuses", () => {
    const bad = {
      services: [{ ports: [{ servicePort: 80, targetPort: 8080 }], vips: [{ address: '10.0.0.1' }] }],
      config: { adminAddr: '127.0.0.1:15000', secretTtl: 86400, windowSize: 1.5 },
    };
    expect(goDecodeErrors(bad, KIALI_ZTUNNEL_DUMP)).toEqual([
      '.services[0].ports: cannot unmarshal array into map[string]int',
      '.services[0].vips[0]: cannot unmarshal object into string',
      '.config.adminAddr: cannot unmarshal string into struct',
      '.config.secretTtl: cannot unmarshal number into struct',
      '.config.windowSize: cannot unmarshal number into int',
    ]);
  });
});
