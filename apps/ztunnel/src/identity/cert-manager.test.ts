import { afterEach, describe, expect, it } from 'vitest';
import type { SpiffeId } from '@ambient-mesh/spiffe-certs';
import { createLocalFetcher, createTestCa } from '@ambient-mesh/spiffe-certs/testing';
import { createProxyState } from '../state/proxy-state.ts';
import { captureLogs } from '@ambient-mesh/runtime/testing';
import { waitFor } from '../testing/wait.ts';
import { workloadAddress as workload } from '../testing/wire-fixtures.ts';
import { CertManager } from './cert-manager.ts';

const cleanups: (() => unknown)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

describe('CertManager', () => {
  it('prefetches identities of node-local in-mesh workloads only, and forgets them when they leave', async () => {
    const ca = await createTestCa();
    const fetched: string[] = [];
    const localFetch = createLocalFetcher(ca);
    const { state, mutator } = createProxyState();
    const manager = new CertManager({
      fetch: async (identity: SpiffeId, signal: AbortSignal) => {
        fetched.push(identity.uri);
        return localFetch(identity, signal);
      },
      state,
      nodeName: 'node-1',
      logger: captureLogs().logs.for('cert'),
    });
    cleanups.push(() => {
      manager.close();
    });
    mutator.applyAddresses(
      [
        workload({ uid: 'a', serviceAccount: 'sa-a' }),
        workload({ uid: 'a2', name: 'pod-a2', serviceAccount: 'sa-a' }),
        workload({ uid: 'remote', serviceAccount: 'sa-r', node: 'node-2' }),
        // Not in the mesh (protocol NONE: istiod, the CNI agent, plain pods): no certificate.
        workload({ uid: 'plain', name: 'istiod', serviceAccount: 'istiod', tunnelProtocol: 0 }),
      ],
      [],
    );
    await waitFor(() => manager.dump().some(d => d.state === 'Available'), 'prefetched certificate');
    expect(fetched).toEqual(['spiffe://cluster.local/ns/default/sa/sa-a']);
    const [dump] = manager.dump();
    expect(dump?.identity).toBe('spiffe://cluster.local/ns/default/sa/sa-a');
    expect(dump?.certChain[0]?.pem).toMatch(/BEGIN CERTIFICATE/);
    expect(dump?.rootCerts).toHaveLength(1);
    expect(Date.parse(dump?.certChain[0]?.expirationTime ?? '')).toBeGreaterThan(Date.now());

    mutator.applyAddresses([], ['a']);
    expect(manager.dump()).toHaveLength(1);
    mutator.applyAddresses([], ['a2']);
    expect(manager.dump()).toEqual([]);
  });

  it('serves a certificate on demand for any identity', async () => {
    const ca = await createTestCa();
    const { state } = createProxyState();
    const manager = new CertManager({
      fetch: createLocalFetcher(ca),
      state,
      nodeName: 'node-1',
      logger: captureLogs().logs.for('cert'),
    });
    cleanups.push(() => {
      manager.close();
    });
    const cert = await manager.get('spiffe://cluster.local/ns/x/sa/y');
    expect(cert.identity.uri).toBe('spiffe://cluster.local/ns/x/sa/y');
  });
});
