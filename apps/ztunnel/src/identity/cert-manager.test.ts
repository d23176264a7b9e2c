import { afterEach, describe, expect, it, vi } from 'vitest';
import type { SpiffeId } from '@ambient-mesh/spiffe-certs';
import { type WorkloadCertificate } from '@ambient-mesh/spiffe-certs';
import { createLocalFetcher, createTestCa, issueWorkloadCert } from '@ambient-mesh/spiffe-certs/testing';
import { createProxyState } from '../state/proxy-state.ts';
import { captureLogs } from '@ambient-mesh/runtime/testing';
import { waitFor } from '../testing/wait.ts';
import { workloadAddress as workload } from '../testing/wire-fixtures.ts';
import { CertManager, type CertificateHealth } from './cert-manager.ts';

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

  it('keeps its certificates while the CA is unreachable, retries, and reports it', async () => {
    const ca = await createTestCa();
    vi.useFakeTimers({ now: Date.UTC(2030, 0, 1) });
    cleanups.push(() => vi.useRealTimers());
    const caState = { down: false, calls: 0 };
    const fetched: string[] = [];
    const healths: CertificateHealth[] = [];
    const { state } = createProxyState();
    const manager = new CertManager({
      fetch: async (identity: SpiffeId): Promise<WorkloadCertificate> => {
        caState.calls++;
        if (caState.down) throw new Error('connect ECONNREFUSED external-ca:15012');
        return issueWorkloadCert(ca, identity, { ttlSeconds: 3600 });
      },
      state,
      nodeName: 'node-1',
      logger: captureLogs().logs.for('cert'),
      observer: {
        fetched: result => fetched.push(result),
        health: h => healths.push(h),
      },
    });
    cleanups.push(() => {
      manager.close();
    });
    const first = await manager.get('spiffe://cluster.local/ns/x/sa/y');
    caState.down = true;
    // Past half-life the renewal fails; the certificate in use stays and is retried with backoff.
    await vi.advanceTimersByTimeAsync(31 * 60 * 1000);
    await vi.waitFor(() => {
      expect(manager.health).toMatchObject({ failingWithCertificate: 1, failingWithoutCertificate: 0 });
    });
    expect(manager.health.lastError).toMatch(/ECONNREFUSED/);
    expect(await manager.get('spiffe://cluster.local/ns/x/sa/y')).toBe(first);
    const callsAfterFirstFailure = caState.calls;
    // Longer than the largest backoff (150 s + 20 % jitter): at least one more attempt.
    await vi.advanceTimersByTimeAsync(200 * 1000);
    expect(caState.calls).toBeGreaterThan(callsAfterFirstFailure);
    // A new identity cannot get a first certificate: that is the state that makes ztunnel unready.
    const pending = manager.get('spiffe://cluster.local/ns/x/sa/new').catch((err: unknown) => err);
    await vi.waitFor(() => {
      expect(manager.health.failingWithoutCertificate).toBe(1);
    });
    caState.down = false;
    await vi.advanceTimersByTimeAsync(5 * 60 * 1000);
    await pending;
    await vi.waitFor(() => {
      expect(manager.health).toMatchObject({ failingWithCertificate: 0, failingWithoutCertificate: 0 });
    });
    expect(healths.at(-1)).toMatchObject({ failingWithCertificate: 0, failingWithoutCertificate: 0 });
    expect(fetched).toContain('failure');
    expect(fetched.at(-1)).toBe('success');
  });
});
