import { describe, expect, it } from 'vitest';
import { convertPeerAddress, createPeerIndex, forwardedForIp, resolveSource } from './peer-index.ts';
import type { workload } from '@ambient-mesh/xds-types';

function wire(uid: string, ip: number[], sa = 'sleep'): workload.Address {
  return {
    workload: {
      uid,
      name: 'sleep-1',
      namespace: 'default',
      addresses: [Uint8Array.from(ip)],
      network: '',
      trustDomain: '',
      serviceAccount: sa,
      canonicalName: 'sleep',
      canonicalRevision: 'v1',
      workloadName: 'sleep',
      clusterId: '',
    },
  } as unknown as workload.Address;
}

describe('peer index (pure)', () => {
  it('reads the for= address of a forwarded element', () => {
    expect(forwardedForIp('10.0.0.1:4000')).toBe('10.0.0.1');
    expect(forwardedForIp('10.0.0.1')).toBe('10.0.0.1');
    expect(forwardedForIp('[fd00::1]:4000')).toBe('fd00::1');
    expect(forwardedForIp('unknown')).toBe(undefined);
    expect(forwardedForIp(undefined)).toBe(undefined);
  });

  it('converts a workload with defaults, and rejects a uid other than the resource name', () => {
    const ok = convertPeerAddress('u1', wire('u1', [10, 0, 0, 1]));
    expect(ok.ok && ok.value.kind === 'workload' ? ok.value.workload.identity : '').toBe(
      'spiffe://cluster.local/ns/default/sa/sleep',
    );
    const bad = convertPeerAddress('u2', wire('u1', [10, 0, 0, 1]));
    expect(bad.ok ? [] : bad.problems).toEqual(['workload.uid: "u1" differs from the resource name']);
  });

  it('indexes by address and uid, moves an address on update, and forgets removed workloads', () => {
    const { index, mutator } = createPeerIndex();
    const a = convertPeerAddress('u1', wire('u1', [10, 0, 0, 1]));
    if (!a.ok) throw new Error('conversion failed');
    mutator.apply([a.value], []);
    expect(index.workloadByAddress('', '::ffff:10.0.0.1')?.uid).toBe('u1');
    const b = convertPeerAddress('u1', wire('u1', [10, 0, 0, 2]));
    if (!b.ok) throw new Error('conversion failed');
    mutator.apply([b.value], []);
    expect(index.workloadByAddress('', '10.0.0.1')).toBe(undefined);
    expect(index.workloadByAddress('', '10.0.0.2')?.uid).toBe('u1');
    mutator.apply([], ['u1']);
    expect(index.size.workloads).toBe(0);
  });

  it('resolves WDS only for the peer identity, then baggage, then the identity namespace', () => {
    const { index, mutator } = createPeerIndex();
    const a = convertPeerAddress('u1', wire('u1', [10, 0, 0, 1]));
    if (!a.ok) throw new Error('conversion failed');
    mutator.apply([a.value], []);
    const input = {
      peerIdentity: 'spiffe://cluster.local/ns/default/sa/sleep',
      forwardedFor: '10.0.0.1:1234',
      remoteAddress: '10.0.0.9',
      baggage: {},
    };
    expect(resolveSource(index, '', input).source.workloadName).toBe('sleep');
    const other = { ...input, peerIdentity: 'spiffe://cluster.local/ns/prod/sa/curl' };
    expect(resolveSource(index, '', other)).toEqual({ origin: 'identity', source: { namespace: 'prod' } });
    expect(resolveSource(index, '', { ...other, baggage: { workloadName: 'x' } }).origin).toBe('baggage');
  });
});
