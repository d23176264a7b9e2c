import { afterEach, describe, expect, it, vi } from 'vitest';
import type { WorkloadCertificate } from '@ambient-mesh/spiffe-certs';
import { ZtunnelErrorCode } from '../errors.ts';
import { createProxyState } from '../state/proxy-state.ts';
import { workloadAddress } from '../testing/wire-fixtures.ts';
import { systemTimers } from '@ambient-mesh/runtime';
import { LocalWorkload } from './local-workload.ts';

afterEach(() => {
  vi.useRealTimers();
});

const INFO = { name: 'pod-a', namespace: 'default', serviceAccount: 'sa-a' };
const CERT = {
  identity: { uri: 'spiffe://cluster.local/ns/default/sa/sa-a' },
} as unknown as WorkloadCertificate;

function setup(get: (identity: string) => Promise<WorkloadCertificate> = () => Promise.resolve(CERT)) {
  vi.useFakeTimers();
  const { state, mutator } = createProxyState();
  const requested: string[] = [];
  const local = new LocalWorkload({
    info: INFO,
    nodeName: 'node-1',
    state,
    certificates: {
      get: identity => {
        requested.push(identity);
        return get(identity);
      },
    },
    timeoutMs: 5_000,
    timers: systemTimers,
  });
  return { state, mutator, local, requested };
}

describe('LocalWorkload', () => {
  it('resolves a wait when the WDS workload arrives, then fetches its certificate', async () => {
    const { mutator, local, requested } = setup();
    expect(local.current()).toBeUndefined();
    const ready = local.ready();
    await vi.advanceTimersByTimeAsync(1_000);
    mutator.applyAddresses([workloadAddress()], []);
    const state = await ready;
    expect(state.workload.name).toBe('pod-a');
    expect(state.certificate).toBe(CERT);
    expect(requested).toEqual(['spiffe://cluster.local/ns/default/sa/sa-a']);
  });

  it('does not match a workload on another node or with another service account', async () => {
    const { mutator, local } = setup();
    mutator.applyAddresses(
      [
        workloadAddress({ uid: 'other-node', node: 'node-2' }),
        workloadAddress({ uid: 'other-sa', serviceAccount: 'sa-x' }),
      ],
      [],
    );
    expect(local.current()).toBeUndefined();
    const wait = local.workload();
    const outcome = expect(wait).rejects.toMatchObject({ code: ZtunnelErrorCode.WorkloadUnavailable });
    await vi.advanceTimersByTimeAsync(5_000);
    await outcome;
  });

  it('fails after the bound with an error naming the pod, the node and what to check', async () => {
    const { local } = setup();
    const wait = local.ready();
    const outcome = expect(wait).rejects.toThrow(
      /no WDS workload for default\/pod-a \(service account sa-a\) on node node-1 after 5000 ms; check that istiod/,
    );
    await vi.advanceTimersByTimeAsync(4_999);
    await vi.advanceTimersByTimeAsync(1);
    await outcome;
  });

  it('bounds the certificate fetch by the same deadline', async () => {
    const { mutator, local } = setup(() => new Promise<WorkloadCertificate>(() => undefined));
    const wait = local.ready();
    const outcome = expect(wait).rejects.toThrow(
      /no certificate for spiffe:\/\/cluster.local\/ns\/default\/sa\/sa-a/,
    );
    await vi.advanceTimersByTimeAsync(3_000);
    mutator.applyAddresses([workloadAddress()], []);
    await vi.advanceTimersByTimeAsync(2_000);
    await outcome;
  });

  it('stops waiting when aborted', async () => {
    const { local } = setup();
    const controller = new AbortController();
    const wait = local.workload(controller.signal);
    controller.abort(new Error('the client left'));
    await expect(wait).rejects.toThrow('the client left');
  });
});
