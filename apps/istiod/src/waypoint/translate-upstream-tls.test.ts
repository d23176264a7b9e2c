import { createTestCa } from '@ambient-mesh/spiffe-certs/testing';
import { describe, expect, it } from 'vitest';
import { makeNamespace } from '../testing/fixtures.ts';
import { makeWaypointGateway } from '../testing/waypoint-fixtures.ts';
import { waypointIndexes } from '../testing/waypoint-indexes.ts';
import { EnvoyType, EnvoyTypeUrls, decodeEnvoy } from './envoy-protos.ts';
import { SYSTEM_CA_BUNDLE, buildUpstreamTls, sanMatcher } from './translate-upstream-tls.ts';
import { validateDestinationRule } from './validate-istio.ts';
import { WaypointKinds as K } from './waypoint-index.ts';

const CLUSTER = 'inbound-vip|80|http|api.example.com';
const b64 = (text: string): string => Buffer.from(text).toString('base64');

describe('DestinationRule tls for a ServiceEntry host (pure)', () => {
  const ca = new Uint8Array(Buffer.from('CA'));
  const credential = () => ({ ok: true as const, value: { caCertificate: ca } });

  it('DISABLE is plaintext; SIMPLE inlines the CA, SNI defaults to the host, SANs become typed matchers', () => {
    expect(
      buildUpstreamTls({
        tls: { mode: 'DISABLE', subjectAltNames: [] },
        host: 'h',
        port: 80,
        http2: false,
        credential,
      }),
    ).toEqual({ kind: 'plaintext' });
    const r = buildUpstreamTls({
      tls: { mode: 'SIMPLE', credentialName: 'ca', subjectAltNames: ['api.example.com', 'spiffe://td/x'] },
      host: 'api.example.com',
      port: 80,
      http2: true,
      credential,
    });
    expect(r.kind).toBe('tls');
    const socket = (r as { transportSocket: { name: string; typedConfig: { value: Uint8Array } } })
      .transportSocket;
    expect(socket.name).toBe('envoy.transport_sockets.tls');
    const ctx = decodeEnvoy(EnvoyType.upstreamTlsContext, socket.typedConfig.value);
    expect(ctx).toMatchObject({
      sni: 'api.example.com',
      commonTlsContext: {
        alpnProtocols: ['h2'],
        validationContext: {
          matchTypedSubjectAltNames: [
            { sanType: 'DNS', matcher: { exact: 'api.example.com' } },
            { sanType: 'URI', matcher: { exact: 'spiffe://td/x' } },
          ],
        },
      },
    });
    expect(sanMatcher('10.0.0.1')).toEqual({ sanType: 'IP_ADDRESS', matcher: { exact: '10.0.0.1' } });
  });

  it('uses tls.sni; without a CA the system bundle; insecureSkipVerify drops validation', () => {
    const simple = buildUpstreamTls({
      tls: { mode: 'SIMPLE', sni: 'other.example', subjectAltNames: [] },
      host: 'h',
      port: 80,
      http2: false,
      credential,
    }) as { kind: 'tls'; transportSocket: { typedConfig: { value: Uint8Array } } };
    const ctx = decodeEnvoy(EnvoyType.upstreamTlsContext, simple.transportSocket.typedConfig.value) as {
      sni: string;
      commonTlsContext: { validationContext?: { trustedCa: { filename: string } }; alpnProtocols?: string[] };
    };
    expect(ctx.sni).toBe('other.example');
    expect(ctx.commonTlsContext.validationContext?.trustedCa.filename).toBe(SYSTEM_CA_BUNDLE);
    expect(ctx.commonTlsContext.alpnProtocols ?? []).toEqual([]);
    const skip = buildUpstreamTls({
      tls: { mode: 'SIMPLE', insecureSkipVerify: true, subjectAltNames: ['x'] },
      host: 'h',
      port: 80,
      http2: false,
      credential,
    }) as { kind: 'tls'; transportSocket: { typedConfig: { value: Uint8Array } } };
    const skipCtx = decodeEnvoy(EnvoyType.upstreamTlsContext, skip.transportSocket.typedConfig.value) as {
      commonTlsContext: { validationContext?: unknown };
    };
    expect(skipCtx.commonTlsContext.validationContext).toBeUndefined();
  });

  it('ISTIO_MUTUAL is upstream SDS shape: workload certificate default, ROOTCA, outbound_ SNI, istio ALPN', () => {
    const r = buildUpstreamTls({
      tls: { mode: 'ISTIO_MUTUAL', subjectAltNames: ['spiffe://cluster.local/ns/ext/sa/api'] },
      host: 'api.example.com',
      port: 8443,
      http2: false,
      credential,
    }) as { kind: 'tls'; transportSocket: { typedConfig: { value: Uint8Array } } };
    expect(r.kind).toBe('tls');
    const fromEntry = buildUpstreamTls({
      tls: { mode: 'ISTIO_MUTUAL', subjectAltNames: [] },
      host: 'api.example.com',
      port: 8443,
      entrySubjectAltNames: ['spiffe://cluster.local/ns/ext/sa/entry'],
      http2: true,
      credential,
    }) as { kind: 'tls'; transportSocket: { typedConfig: { value: Uint8Array } } };
    expect(
      decodeEnvoy(EnvoyType.upstreamTlsContext, fromEntry.transportSocket.typedConfig.value),
    ).toMatchObject({
      commonTlsContext: {
        combinedValidationContext: {
          defaultValidationContext: {
            matchTypedSubjectAltNames: [{ matcher: { exact: 'spiffe://cluster.local/ns/ext/sa/entry' } }],
          },
        },
        alpnProtocols: ['istio-peer-exchange', 'istio', 'h2'],
      },
    });
    const ctx = decodeEnvoy(EnvoyType.upstreamTlsContext, r.transportSocket.typedConfig.value);
    expect(ctx).toMatchObject({
      sni: 'outbound_.8443_._.api.example.com',
      commonTlsContext: {
        tlsCertificateSdsSecretConfigs: [{ name: 'default' }],
        combinedValidationContext: {
          defaultValidationContext: {
            matchTypedSubjectAltNames: [
              { sanType: 'URI', matcher: { exact: 'spiffe://cluster.local/ns/ext/sa/api' } },
            ],
          },
          validationContextSdsSecretConfig: { name: 'ROOTCA' },
        },
        alpnProtocols: ['istio-peer-exchange', 'istio'],
      },
    });
  });

  it('reports what it cannot honour: file paths, MUTUAL without a client certificate, a missing Secret', () => {
    const problem = (tls: Parameters<typeof buildUpstreamTls>[0]['tls'], found = true) =>
      buildUpstreamTls({
        tls,
        host: 'h',
        port: 80,
        http2: false,
        credential: found ? credential : () => ({ ok: false, message: 'Secret egress/x not found' }),
      });
    expect(
      problem({ mode: 'SIMPLE', caCertificates: '/etc/certs/ca.pem', subjectAltNames: [] }),
    ).toMatchObject({
      kind: 'problem',
      message: expect.stringContaining('file paths are not supported'),
    });
    expect(problem({ mode: 'MUTUAL', credentialName: 'ca', subjectAltNames: [] })).toMatchObject({
      kind: 'problem',
      message: expect.stringContaining('MUTUAL needs a client certificate'),
    });
    expect(problem({ mode: 'SIMPLE', credentialName: 'x', subjectAltNames: [] }, false)).toEqual({
      kind: 'problem',
      message: 'credentialName x: Secret egress/x not found',
    });
  });

  it('validates tls and portLevelSettings', () => {
    const dr = (spec: object) =>
      validateDestinationRule({ metadata: { namespace: 'ns', name: 'dr' }, spec: { host: 'h', ...spec } });
    expect(dr({ trafficPolicy: { tls: { mode: 'BOGUS' } } }).ok).toBe(false);
    const ok = dr({
      trafficPolicy: {
        tls: { mode: 'SIMPLE', credentialName: 'c', subjectAltNames: ['a'] },
        portLevelSettings: [{ port: { number: 443 }, tls: { mode: 'MUTUAL', credentialName: 'm' } }],
      },
    });
    expect(ok).toMatchObject({
      ok: true,
      value: {
        trafficPolicy: {
          tls: { mode: 'SIMPLE', credentialName: 'c', subjectAltNames: ['a'] },
          portLevelSettings: [{ port: 443, tls: { mode: 'MUTUAL', credentialName: 'm' } }],
        },
      },
    });
  });
});

describe('DestinationRule TLS origination in a waypoint (index)', () => {
  const WP = 'egress/egress';
  function setup(issues: [string, readonly string[]][]) {
    const h = waypointIndexes({ onTlsIssues: (wp, list) => issues.push([wp, list]) });
    h.upsert(K.GATEWAY, makeWaypointGateway('egress', 'egress'));
    h.upsert('Namespace', makeNamespace('egress', { 'istio.io/use-waypoint': 'egress' }));
    h.upsert(K.SERVICE_ENTRY, {
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { namespace: 'egress', name: 'api' },
      spec: {
        hosts: ['api.example.com'],
        addresses: ['240.240.0.2'],
        ports: [{ number: 80, name: 'http', protocol: 'HTTP', targetPort: 443 }],
        resolution: 'DNS',
      },
    } as never);
    return h;
  }
  const rule = (tls: object, portLevel?: object) => ({
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { namespace: 'egress', name: 'api-tls', creationTimestamp: '2026-01-01T00:00:00Z' },
    spec: {
      host: 'api.example.com',
      trafficPolicy: { tls, ...(portLevel === undefined ? {} : { portLevelSettings: [portLevel] }) },
    },
  });

  it('programs the transport socket from the Secret; a missing Secret leaves the cluster out with an issue, until it exists', async () => {
    const ca = await createTestCa();
    const issues: [string, readonly string[]][] = [];
    const h = setup(issues);
    expect(h.waypoints.resourcesFor(WP, EnvoyTypeUrls.cluster).has(CLUSTER)).toBe(true);
    h.upsert(K.DESTINATION_RULE, rule({ mode: 'SIMPLE', credentialName: 'api-ca' }));
    expect(h.waypoints.resourcesFor(WP, EnvoyTypeUrls.cluster).has(CLUSTER)).toBe(false);
    expect(issues.at(-1)?.[1][0]).toContain('credentialName api-ca: Secret egress/api-ca not found');

    // An Opaque Secret without certificate keys is not kept (istiod sees every Opaque Secret).
    h.upsert(K.CREDENTIAL_SECRET, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { namespace: 'egress', name: 'api-ca' },
      type: 'Opaque',
      data: { password: b64('hunter2') },
    } as never);
    expect(h.waypoints.resourcesFor(WP, EnvoyTypeUrls.cluster).has(CLUSTER)).toBe(false);
    expect(issues.at(-1)?.[1][0]).toContain('Secret egress/api-ca not found');

    h.upsert(K.CREDENTIAL_SECRET, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { namespace: 'egress', name: 'api-ca' },
      type: 'Opaque',
      data: { 'ca.crt': b64(ca.trustBundle.pem) },
    } as never);
    const cluster = decodeEnvoy(
      EnvoyType.cluster,
      h.waypoints.resourcesFor(WP, EnvoyTypeUrls.cluster).get(CLUSTER)!.value,
    ) as { type: string; transportSocket: { name: string; typedConfig: { value: Uint8Array } } };
    expect(cluster.type).toBe('STRICT_DNS');
    expect(cluster.transportSocket.name).toBe('envoy.transport_sockets.tls');
    const ctx = decodeEnvoy(EnvoyType.upstreamTlsContext, cluster.transportSocket.typedConfig.value) as {
      sni: string;
      commonTlsContext: { validationContext: { trustedCa: { inlineBytes: Uint8Array } } };
    };
    expect(ctx.sni).toBe('api.example.com');
    expect(Buffer.from(ctx.commonTlsContext.validationContext.trustedCa.inlineBytes).toString()).toBe(
      ca.trustBundle.pem,
    );
    expect(issues.at(-1)).toEqual([WP, []]);

    // A Secret that holds no certificate: left out again.
    h.upsert(K.CREDENTIAL_SECRET, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { namespace: 'egress', name: 'api-ca' },
      type: 'Opaque',
      data: { 'ca.crt': b64('not a certificate') },
    } as never);
    expect(h.waypoints.resourcesFor(WP, EnvoyTypeUrls.cluster).has(CLUSTER)).toBe(false);
    expect(issues.at(-1)?.[1][0]).toContain('ca.crt is not a PEM certificate');
  });

  it('portLevelSettings override the rule for their port; DISABLE there is plaintext', () => {
    const h = setup([]);
    h.upsert(
      K.DESTINATION_RULE,
      rule({ mode: 'SIMPLE', credentialName: 'missing' }, { port: { number: 80 }, tls: { mode: 'DISABLE' } }),
    );
    const cluster = decodeEnvoy(
      EnvoyType.cluster,
      h.waypoints.resourcesFor(WP, EnvoyTypeUrls.cluster).get(CLUSTER)!.value,
    ) as { transportSocket?: unknown };
    expect(cluster.transportSocket).toBeUndefined();
  });
});
