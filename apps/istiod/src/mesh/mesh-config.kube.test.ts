/**
 * The mesh ConfigMap through the real wiring: istiod built on an in-memory apiserver, its
 * informers following the `istio` ConfigMap; a discoverySelectors change moves namespaces in and
 * out of WDS.
 */
import { X509Certificate } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeApiServer, until } from '@ambient-mesh/kube/testing';
import { silentLogger } from '@ambient-mesh/runtime';
import { build, type Bound } from '../app.ts';
import { loadConfig } from '../config.ts';
import { kubeDependencies } from '../kube/kube-dependencies.ts';
import { makeNamespace, makePod } from '../testing/fixtures.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function meshConfigMap(mesh: string): { apiVersion: string; kind: string; metadata: object; data: object } {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'istio', namespace: 'istio-system' },
    data: { mesh },
  };
}

/** Stores an object in the fake apiserver (which takes any JSON object). */
function put(server: FakeApiServer, collection: string, obj: object): void {
  server.put(collection, obj as Parameters<FakeApiServer['put']>[1]);
}

async function start(server: FakeApiServer): Promise<Bound> {
  const config = loadConfig({
    env: { POD_NAMESPACE: 'istio-system' },
    argv: [
      '--secureGRPCAddr=127.0.0.1:0',
      '--httpAddr=127.0.0.1:0',
      '--monitoringAddr=127.0.0.1:0',
      '--debugAddr=127.0.0.1:0',
    ],
  });
  const istiod = await build(config, {
    ...kubeDependencies(server.kubeConfig(), 'istio-system'),
    logger: silentLogger(),
    rootKeyAlgorithm: 'ecdsa-p256',
  });
  cleanups.push(() => istiod.stop());
  return istiod;
}

const podIn = (ns: string): ReturnType<typeof makePod> =>
  makePod({
    name: `app-${ns}`,
    namespace: ns,
    node: 'node-a',
    ip: ns === 'team-a' ? '10.1.0.1' : '10.1.0.2',
  });

function podsInWds(istiod: Bound): string[] {
  return [...istiod.index.addresses.keys()].filter(k => k.includes('/Pod/')).sort();
}

describe('mesh config from the istio ConfigMap', () => {
  it('follows discoverySelectors changes: namespaces enter and leave WDS', async () => {
    const server = await FakeApiServer.start();
    cleanups.push(() => server.close());
    put(server, '/api/v1/namespaces', makeNamespace('istio-system'));
    put(server, '/api/v1/namespaces', makeNamespace('team-a', { team: 'a' }));
    put(server, '/api/v1/namespaces', makeNamespace('team-b', { team: 'b' }));
    put(server, '/api/v1/pods', podIn('team-a'));
    put(server, '/api/v1/pods', podIn('team-b'));
    put(
      server,
      '/api/v1/configmaps',
      meshConfigMap('trustDomain: cluster.local\ndiscoverySelectors:\n  - matchLabels: { team: a }\n'),
    );

    const istiod = await start(server);
    await until('ready', () => istiod.ready());
    await until('team-a only', () => podsInWds(istiod).join() === 'Kubernetes//Pod/team-a/app-team-a');

    put(server, '/api/v1/configmaps', meshConfigMap('discoverySelectors:\n  - matchLabels: { team: b }\n'));
    await until('team-b only', () => podsInWds(istiod).join() === 'Kubernetes//Pod/team-b/app-team-b');

    // An invalid change is refused and the last valid config stays.
    put(server, '/api/v1/configmaps', meshConfigMap('discoverySelectors: 7\n'));
    put(server, '/api/v1/namespaces', makeNamespace('team-c', { team: 'b' }));
    put(server, '/api/v1/pods', podIn('team-c'));
    await until('team-c selected by the kept selectors', () => podsInWds(istiod).length === 2);

    // Without selectors every namespace is discovered.
    put(server, '/api/v1/configmaps', meshConfigMap('trustDomain: cluster.local\n'));
    await until('all namespaces', () => podsInWds(istiod).length === 3);
    const mesh = (await (await fetch(`http://127.0.0.1:${istiod.ports.debug}/debug/mesh`)).json()) as {
      trustDomain: string;
    };
    expect(mesh.trustDomain).toBe('cluster.local');
  });

  it('uses the trust domain of the ConfigMap read at startup', async () => {
    const server = await FakeApiServer.start();
    cleanups.push(() => server.close());
    put(server, '/api/v1/configmaps', meshConfigMap('trustDomain: example.org\n'));
    const istiod = await start(server);
    expect(new X509Certificate(istiod.meshCa.rootCertPem).subject).toBe('O=example.org');
    const mesh = (await (await fetch(`http://127.0.0.1:${istiod.ports.debug}/debug/mesh`)).json()) as {
      trustDomain: string;
    };
    expect(mesh.trustDomain).toBe('example.org');
  });
});
