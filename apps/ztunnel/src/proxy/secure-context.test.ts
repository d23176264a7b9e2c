import { afterEach, describe, expect, it } from 'vitest';
import { X509Certificate } from 'node:crypto';
import type { HboneIdentity } from '@ambient-mesh/hbone';
import { systemTimers } from '@ambient-mesh/runtime';
import { captureLogs } from '@ambient-mesh/runtime/testing';
import type { SpiffeId, WorkloadCertificate } from '@ambient-mesh/spiffe-certs';
import { createTestCa, issueWorkloadCert } from '@ambient-mesh/spiffe-certs/testing';
import { CertManager } from '../identity/cert-manager.ts';
import { createProxyState } from '../state/proxy-state.ts';
import { waitFor } from '../testing/wait.ts';
import { workloadAddress } from '../testing/wire-fixtures.ts';
import { LocalWorkload } from './local-workload.ts';
import { podSecureContext } from './secure-context.ts';

const cleanups: (() => unknown)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

const leaf = (identity: HboneIdentity): string =>
  new X509Certificate(
    typeof identity.certChain === 'string' ? identity.certChain : (identity.certChain[0] ?? ''),
  ).serialNumber;

describe('podSecureContext', () => {
  it("hands the pod's server every new certificate: renewals, and a new one after the previous expired", async () => {
    const ca = await createTestCa();
    const caState = { down: false };
    const { state, mutator } = createProxyState();
    const captured = captureLogs();
    const manager = new CertManager({
      // 2 s certificates: renewed after 1 s, expired after 2 s.
      fetch: async (identity: SpiffeId): Promise<WorkloadCertificate> => {
        if (caState.down) throw new Error('connect ECONNREFUSED external-ca:15012');
        return issueWorkloadCert(ca, identity, { ttlSeconds: 2 });
      },
      state,
      nodeName: 'node-1',
      logger: captured.logs.for('cert'),
    });
    cleanups.push(() => {
      manager.close();
    });
    mutator.applyAddresses([workloadAddress()], []);
    const local = new LocalWorkload({
      info: { name: 'pod-a', namespace: 'default', serviceAccount: 'sa-a' },
      nodeName: 'node-1',
      state,
      certificates: manager,
      timeoutMs: 5_000,
      timers: systemTimers,
    });
    const provider = podSecureContext(local, manager);
    const seen: string[] = [];
    const unsubscribe = provider.onRenewed(identity => seen.push(leaf(identity)));
    cleanups.push(unsubscribe);
    const first = leaf(await provider.identity(new AbortController().signal));

    // A renewal at half-life.
    await waitFor(() => seen.some(s => s !== first), 'a renewal handed over', 10_000);

    // The CA is down past the certificate's end: it expires; the next certificate the cache gets
    // is a first one again (event `issued`), and the server must take it all the same.
    caState.down = true;
    await waitFor(() => manager.dump()[0]?.state === 'Initializing', 'the certificate to expire', 10_000);
    // The certificate the cache gets first after the expiry.
    let reissued: string | undefined;
    manager.cache.once('issued', ({ certificate }) => (reissued = certificate.leaf.serialNumber));
    caState.down = false;
    // Backoff after a few failures: a few seconds.
    await waitFor(
      () => reissued !== undefined && seen.includes(reissued),
      'the certificate issued after the expiry handed over',
      20_000,
    );
    expect(manager.dump()[0]?.state).toBe('Available');
  });
});
