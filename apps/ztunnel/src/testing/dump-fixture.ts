/**
 * A small mesh state for config-dump tests: an HBONE workload behind a waypoint and in a service,
 * a plain TCP workload, the service, an ALLOW policy with every match kind, one certificate and
 * one in-pod workload with a live connection. Shared by the shape test and the istioctl test.
 */
import { loadConfig } from '../config.ts';
import type { AdminSources } from '../admin-server.ts';
import { createProxyState } from '../state/proxy-state.ts';
import { captureLogs } from '@ambient-mesh/runtime/testing';
import { authorization, ip4, serviceAddress, wireMatch, workloadAddress } from './wire-fixtures.ts';

export const SVC_KEY = 'default/svc-b.default.svc.cluster.local';
export const POD_A_UID = 'Kubernetes//Pod/default/pod-a';
export const POD_C_UID = 'Kubernetes//Pod/default/pod-c';

export function fixtureSources(): AdminSources {
  const { state, mutator } = createProxyState();
  mutator.applyAddresses(
    [
      workloadAddress({
        services: { [SVC_KEY]: { ports: [{ servicePort: 80, targetPort: 9090 }] } },
        waypoint: {
          hostname: { namespace: 'default', hostname: 'waypoint.default.svc.cluster.local' },
          hboneMtlsPort: 15008,
        },
        authorizationPolicies: ['default/allow-a'],
      }),
      workloadAddress({
        uid: POD_C_UID,
        name: 'pod-c',
        addresses: [ip4('10.244.0.3')],
        tunnelProtocol: 0,
        serviceAccount: 'sa-c',
        canonicalName: 'app-c',
        workloadName: 'app-c',
      }),
      serviceAddress({
        name: 'waypoint',
        hostname: 'waypoint.default.svc.cluster.local',
        addresses: [{ network: '', address: ip4('10.96.0.20') }],
        ports: [{ servicePort: 15008, targetPort: 15008 }],
      }),
      serviceAddress({
        waypoint: { address: { network: '', address: ip4('10.96.0.20') }, hboneMtlsPort: 15008 },
        ports: [
          { servicePort: 80, targetPort: 8080 },
          { servicePort: 443, targetPort: 8443 },
        ],
      }),
    ],
    [],
  );
  mutator.applyAuthorizations(
    [
      authorization({
        name: 'allow-a',
        scope: 2,
        action: 0,
        rules: [
          {
            clauses: [
              {
                matches: [
                  wireMatch({
                    namespaces: [{ exact: 'default' }],
                    principals: [{ prefix: 'spiffe://cluster.local/ns/default/' }, { presence: {} }],
                    sourceIps: [{ address: ip4('10.244.0.0'), length: 16 }],
                    destinationPorts: [9090],
                  }),
                ],
              },
              { matches: [wireMatch({ notNamespaces: [{ suffix: '-test' }] })] },
            ],
          },
        ],
      }),
    ],
    [],
  );
  const { logs } = captureLogs('info');
  return {
    config: loadConfig({ POD_NAME: 'ztunnel-x', POD_NAMESPACE: 'istio-system', NODE_NAME: 'node-1' }),
    state,
    logs,
    certificates: () => [
      {
        identity: 'spiffe://cluster.local/ns/default/sa/sa-a',
        state: 'Available',
        certChain: [
          {
            pem: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
            serialNumber: '0A1B',
            validFrom: '2026-01-01T00:00:00.000Z',
            expirationTime: '2026-01-02T00:00:00.000Z',
          },
        ],
        rootCerts: [],
      },
    ],
    workloadState: () => ({
      [POD_A_UID]: {
        info: { name: 'pod-a', namespace: 'default', serviceAccount: 'sa-a' },
        state: 'Up',
      },
    }),
    connections: uid =>
      uid === POD_A_UID
        ? {
            inbound: [],
            outbound: [
              {
                src: '10.244.0.2:40000',
                originalDst: '10.96.0.10:80',
                actualDst: '10.244.0.5:15008',
                protocol: 'HBONE',
              },
            ],
          }
        : undefined,
    quit: () => undefined,
  };
}
