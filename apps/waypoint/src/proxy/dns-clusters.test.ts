import { describe, expect, it } from 'vitest';
import { captureLogs } from '@ambient-mesh/runtime/testing';
import { DEFAULT_CIRCUIT_BREAKERS } from '../config/types.ts';
import type { ClusterConfig, DnsHost } from '../config/types.ts';
import { waitFor } from '../testing/loopback.ts';
import { DnsClusters, addressesFor, dnsEndpoints } from './dns-clusters.ts';
import type { ResolvedAddress } from './dns-clusters.ts';

const both: ResolvedAddress[] = [
  { address: '192.0.2.1', family: 4 },
  { address: '2001:db8::1', family: 6 },
  { address: '192.0.2.2', family: 4 },
];

function dnsCluster(
  name: string,
  mode: 'strict' | 'logical',
  hosts: DnsHost[],
  refreshMs = 60_000,
): ClusterConfig {
  return {
    name,
    version: '1',
    edsName: name,
    lbPolicy: 'round-robin',
    connectTimeoutMs: 1000,
    circuitBreakers: DEFAULT_CIRCUIT_BREAKERS,
    outlierDetection: undefined,
    serviceHost: undefined,
    staticEndpoints: undefined,
    discovery: { kind: 'dns', mode, hosts, family: 'v4-only', refreshMs },
    upstreamProtocol: 'http1',
  };
}

describe('DNS cluster endpoints', () => {
  it('takes the addresses dns_lookup_family asks for', () => {
    expect(addressesFor(both, 'v4-only')).toEqual(['192.0.2.1', '192.0.2.2']);
    expect(addressesFor(both, 'v6-only')).toEqual(['2001:db8::1']);
    expect(addressesFor(both, 'auto')).toEqual(['2001:db8::1']);
    expect(
      addressesFor(
        both.filter(a => a.family === 4),
        'auto',
      ),
    ).toEqual(['192.0.2.1', '192.0.2.2']);
    expect(addressesFor(both, 'v4-preferred')).toEqual(['192.0.2.1', '192.0.2.2']);
    expect(
      addressesFor(
        both.filter(a => a.family === 6),
        'v4-preferred',
      ),
    ).toEqual(['2001:db8::1']);
    expect(addressesFor(both, 'all')).toEqual(['192.0.2.1', '192.0.2.2', '2001:db8::1']);
  });

  it('makes every address of every host an endpoint (STRICT_DNS) or only the first (LOGICAL_DNS), outside the mesh', () => {
    const hosts = [
      { host: 'a.example', port: 80, weight: 1 },
      { host: 'b.example', port: 8080, weight: 2 },
    ];
    const addresses = [['192.0.2.1', '192.0.2.2'], ['192.0.2.3']];
    const strict = dnsEndpoints('strict', hosts, addresses);
    expect(strict.map(e => `${e.address}:${e.port}/${e.weight}`)).toEqual([
      '192.0.2.1:80/1',
      '192.0.2.2:80/1',
      '192.0.2.3:8080/2',
    ]);
    expect(strict.every(e => e.plaintext === true && e.healthy && e.identity === undefined)).toBe(true);
    expect(dnsEndpoints('logical', hosts, addresses).map(e => e.address)).toEqual(['192.0.2.1']);
  });

  it('resolves, re-resolves at the refresh rate, keeps the last answer on failure, and stops for removed clusters', async () => {
    let answer: ResolvedAddress[] | Error = [{ address: '192.0.2.1', family: 4 }];
    let lookups = 0;
    let changes = 0;
    const dns = new DnsClusters({
      logger: captureLogs().logs.for('dns'),
      lookup: host => {
        lookups++;
        expect(host).toBe('ext.example');
        return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer);
      },
      onChange: () => {
        changes++;
      },
    });
    try {
      const c = dnsCluster(
        'c',
        'strict',
        [
          { host: 'ext.example', port: 443, weight: 1 },
          // An IP literal is taken as it is, without a lookup.
          { host: '198.51.100.9', port: 443, weight: 1 },
        ],
        50,
      );
      dns.sync(new Map([['c', c]]));
      expect((await dns.ready('c')).map(e => e.address)).toEqual(['192.0.2.1', '198.51.100.9']);
      answer = [{ address: '192.0.2.7', family: 4 }];
      await waitFor('the refreshed answer', () => dns.endpoints('c')?.[0]?.address === '192.0.2.7');
      answer = new Error('SERVFAIL');
      const seen = lookups;
      await waitFor('a failed refresh', () => lookups > seen + 1);
      expect(dns.endpoints('c')?.map(e => e.address)).toEqual(['192.0.2.7', '198.51.100.9']);
      expect(changes).toBe(2);
      dns.sync(new Map());
      expect(dns.endpoints('c')).toBeUndefined();
      expect(await dns.ready('c')).toEqual([]);
    } finally {
      dns.close();
    }
  });
});
