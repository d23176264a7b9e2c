// ztunnel's WDS handlers behind the package's XdsClient, against the scripted ADS server.
import { afterEach, describe, expect, it } from 'vitest';
import type * as grpc from '@grpc/grpc-js';
import { packAny, TypeUrl } from '@ambient-mesh/xds-types';
import type { workload } from '@ambient-mesh/xds-types';
import { createProxyState } from '../state/proxy-state.ts';
import { TestDeltaXdsServer } from '../testing/delta-xds-server.ts';
import { captureLogs } from '@ambient-mesh/runtime/testing';
import { waitFor } from '../testing/wait.ts';
import {
  XdsClient as DeltaXdsClient,
  controlPlaneDeltaStreams as deltaStreamFactory,
  createGrpcClient,
} from '@ambient-mesh/xds';
import { addressHandler, authorizationHandler } from './handlers.ts';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function podAddress(name: string, ip: number[]): workload.AddressInit {
  return {
    workload: {
      uid: `Kubernetes//Pod/default/${name}`,
      name,
      namespace: 'default',
      addresses: [Uint8Array.from(ip)],
      serviceAccount: 'sa',
      node: 'node-1',
      tunnelProtocol: 1,
    },
  };
}

async function setup(): Promise<{
  server: TestDeltaXdsServer;
  client: DeltaXdsClient;
  state: ReturnType<typeof createProxyState>['state'];
  synced: { count: number };
}> {
  const server = new TestDeltaXdsServer();
  const address = await server.start();
  cleanups.push(() => server.stop());
  const grpcClient: grpc.Client = createGrpcClient({ address });
  cleanups.push(() => {
    grpcClient.close();
  });
  const { state, mutator } = createProxyState();
  const synced = { count: 0 };
  const client = new DeltaXdsClient({
    connect: deltaStreamFactory(grpcClient, {
      tokenPath: undefined,
      clusterId: 'c1',
      headers: { 'x-test': 'yes' },
    }),
    node: { id: 'ztunnel~10.0.0.5~z.istio-system~istio-system.svc.cluster.local', metadata: { fields: {} } },
    handlers: [addressHandler(mutator), authorizationHandler(mutator)],
    logger: captureLogs().logs.for('xds'),
    observer: { synced: () => (synced.count += 1) },
  });
  cleanups.push(() => {
    client.stop();
  });
  client.start();
  await waitFor(() => server.requests.length >= 2, 'initial requests');
  return { server, client, state, synced };
}

describe('DeltaXdsClient', () => {
  it('opens with wildcard requests for Address and Authorization carrying the node and metadata', async () => {
    const { server } = await setup();
    const [first, second] = server.requests;
    expect(first?.typeUrl).toBe(TypeUrl.ADDRESS);
    expect(second?.typeUrl).toBe(TypeUrl.AUTHORIZATION);
    for (const request of [first, second]) {
      expect(request?.node?.id).toBe('ztunnel~10.0.0.5~z.istio-system~istio-system.svc.cluster.local');
      expect(request?.resourceNamesSubscribe).toEqual([]);
      expect(request?.initialResourceVersions).toEqual({});
    }
    expect(server.metadata[0]?.get('clusterid')).toEqual(['c1']);
    expect(server.metadata[0]?.get('x-test')).toEqual(['yes']);
  });

  it('NACKs a malformed resource by name while applying the others, and syncs after both types', async () => {
    const { server, state, client, synced } = await setup();
    const bad = packAny(TypeUrl.ADDRESS, {
      workload: {
        uid: 'Kubernetes//Pod/default/bad',
        name: 'bad',
        namespace: 'default',
        addresses: [Uint8Array.of(1, 2, 3)],
      },
    });
    const addressNonce = server.push({
      typeUrl: TypeUrl.ADDRESS,
      resources: [
        {
          name: 'Kubernetes//Pod/default/a',
          version: '1',
          resource: packAny(TypeUrl.ADDRESS, podAddress('a', [10, 0, 0, 1])),
        },
        { name: 'Kubernetes//Pod/default/bad', version: '1', resource: bad },
        {
          name: 'garbage',
          version: '1',
          resource: { type_url: TypeUrl.ADDRESS, value: Uint8Array.of(0xff, 0xff, 0xff) },
        },
      ],
    });
    await waitFor(() => server.requestsFor(TypeUrl.ADDRESS).length >= 2, 'address reply');
    const nack = server.requestsFor(TypeUrl.ADDRESS)[1];
    expect(nack?.responseNonce).toBe(addressNonce);
    expect(nack?.node).toBeNull();
    expect(nack?.errorDetail?.message).toMatch(
      /^Kubernetes\/\/Pod\/default\/bad: workload\.addresses\[0\]: an IP must be 4 or 16 bytes, got 3; garbage: /,
    );
    expect(state.workloadByAddress('', '10.0.0.1')?.name).toBe('a');
    expect(state.workloadByUid('Kubernetes//Pod/default/bad')).toBeUndefined();
    expect(client.synced).toBe(false);

    const policyNonce = server.push({
      typeUrl: TypeUrl.AUTHORIZATION,
      resources: [
        {
          name: 'default/deny',
          version: '1',
          resource: packAny(TypeUrl.AUTHORIZATION, {
            name: 'deny',
            namespace: 'default',
            scope: 1,
            action: 1,
          }),
        },
      ],
    });
    await waitFor(() => server.requestsFor(TypeUrl.AUTHORIZATION).length >= 2, 'authorization ACK');
    const ack = server.requestsFor(TypeUrl.AUTHORIZATION)[1];
    expect(ack?.responseNonce).toBe(policyNonce);
    expect(ack?.errorDetail).toBeNull();
    expect(state.policyByKey('default/deny')?.action).toBe('DENY');
    expect(client.synced).toBe(true);
    expect(synced.count).toBe(1);
  });

  it('keeps the last good version of a resource whose update is rejected', async () => {
    const { server, state } = await setup();
    server.push({
      typeUrl: TypeUrl.ADDRESS,
      resources: [
        {
          name: 'Kubernetes//Pod/default/a',
          version: '1',
          resource: packAny(TypeUrl.ADDRESS, podAddress('a', [10, 0, 0, 1])),
        },
      ],
    });
    await waitFor(() => state.workloadByUid('Kubernetes//Pod/default/a') !== undefined, 'first version');
    const broken = podAddress('a', [10, 0, 0, 1]);
    server.push({
      typeUrl: TypeUrl.ADDRESS,
      resources: [
        {
          name: 'Kubernetes//Pod/default/a',
          version: '2',
          resource: packAny(TypeUrl.ADDRESS, {
            workload: { ...broken.workload, tunnelProtocol: 9 as workload.TunnelProtocol },
          }),
        },
      ],
    });
    await waitFor(() => server.requestsFor(TypeUrl.ADDRESS).length >= 3, 'NACK of the update');
    expect(server.requestsFor(TypeUrl.ADDRESS)[2]?.errorDetail?.message).toMatch(
      /tunnelProtocol: unknown enum value 9/,
    );
    expect(state.workloadByUid('Kubernetes//Pod/default/a')?.tunnelProtocol).toBe('HBONE');
  });

  it('reconnects after the stream drops and sends initial_resource_versions for accepted names', async () => {
    const { server } = await setup();
    server.push({
      typeUrl: TypeUrl.ADDRESS,
      resources: [
        {
          name: 'Kubernetes//Pod/default/a',
          version: '1',
          resource: packAny(TypeUrl.ADDRESS, podAddress('a', [10, 0, 0, 1])),
        },
        {
          name: 'Kubernetes//Pod/default/b',
          version: '1',
          resource: packAny(TypeUrl.ADDRESS, podAddress('b', [10, 0, 0, 2])),
        },
      ],
      removedResources: [],
    });
    await waitFor(() => server.requestsFor(TypeUrl.ADDRESS).length >= 2, 'ACK');
    server.push({ typeUrl: TypeUrl.ADDRESS, resources: [], removedResources: ['Kubernetes//Pod/default/b'] });
    await waitFor(() => server.requestsFor(TypeUrl.ADDRESS).length >= 3, 'ACK of removal');
    server.dropStream();
    await waitFor(() => server.streams >= 2 && server.requestsFor(TypeUrl.ADDRESS).length >= 4, 'reconnect');
    const initial = server.requestsFor(TypeUrl.ADDRESS)[3];
    expect(initial?.node?.id).toMatch(/^ztunnel~/);
    expect(initial?.initialResourceVersions).toEqual({ 'Kubernetes//Pod/default/a': '' });
  });
});
