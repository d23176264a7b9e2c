import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { EnvoyType, decodeEnvoy, encodeEnvoy } from './envoy-protos.ts';
import type { ProtoObject } from './envoy-protos.ts';
import { loadEnvoyRoot } from './envoy-proto-files.ts';

const any = (type: string, value: ProtoObject): ProtoObject => ({
  '@type': `type.googleapis.com/${type}`,
  ...value,
});

/** A listener as istiod writes one: a filter chain, an HCM with RDS, RBAC and the router (`Any`s). */
const LISTENER: ProtoObject = {
  name: 'main_internal',
  filter_chains: [
    {
      name: 'inbound-vip|80|http|echo.bench.svc.cluster.local',
      filter_chain_match: {
        destination_port: { value: 80 },
        prefix_ranges: [{ address_prefix: '10.0.0.1', prefix_len: { value: 32 } }],
      },
      filters: [
        {
          name: 'envoy.filters.network.http_connection_manager',
          typed_config: any(EnvoyType.httpConnectionManager, {
            stat_prefix: 'inbound_0.0.0.0_80',
            rds: { route_config_name: 'http.80', config_source: { ads: {}, resource_api_version: 'V3' } },
            stream_idle_timeout: { seconds: 300 },
            http_filters: [
              {
                name: 'envoy.filters.http.rbac',
                typed_config: any(EnvoyType.httpRbac, {
                  rules: {
                    action: 'DENY',
                    policies: {
                      'ns[bench]-policy[deny]-rule[0]': {
                        permissions: [{ url_path: { path: { prefix: '/admin' } } }],
                        principals: [{ any: true }],
                      },
                    },
                  },
                }),
              },
              { name: 'envoy.filters.http.router', typed_config: any(EnvoyType.router, {}) },
            ],
          }),
        },
      ],
    },
  ],
};

describe('Envoy protos', () => {
  it('decodes a listener with the root serialized for the bundle exactly as with the .proto files', () => {
    // What tools/bundle.mjs embeds: the same root through toJSON/fromJSON.
    const serialized = protobuf.Root.fromJSON(
      JSON.parse(JSON.stringify(loadEnvoyRoot().toJSON())) as protobuf.INamespace,
    );
    serialized.resolveAll();
    const bytes = encodeEnvoy(EnvoyType.listener, LISTENER);
    const type = serialized.lookupType(EnvoyType.listener);
    const viaSerialized = type.toObject(type.decode(bytes), {
      enums: String,
      longs: Number,
      bytes: String,
      defaults: false,
      json: true,
    });
    const viaFiles = decodeEnvoy(EnvoyType.listener, bytes);
    expect(viaSerialized).toEqual(viaFiles);
    expect(JSON.stringify(viaFiles)).toContain('"action":"DENY"');
    expect(Buffer.from(type.encode(type.fromObject(viaFiles)).finish())).toEqual(Buffer.from(bytes));
  });
});
