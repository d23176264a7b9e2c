import { ResponseFlag } from '@ambient-mesh/proxy-core';
import { describe, expect, it } from 'vitest';
import { convertWorkload } from '../state/convert-address.ts';
import type { Workload } from '../state/types.ts';
import { wireWorkload } from '../testing/wire-fixtures.ts';
import { connectionLabels } from './traffic-labels.ts';
import type { ConnectionParties } from './traffic-labels.ts';

function workload(name: string, version: string): Workload {
  const converted = convertWorkload(
    wireWorkload({
      uid: `Kubernetes//Pod/default/${name}`,
      name,
      workloadName: name,
      canonicalName: name,
      canonicalRevision: version,
    }),
  );
  if (!converted.ok) throw new Error(`fixture workload ${name} does not convert`);
  return converted.value;
}

function parties(source: Workload, destination: Workload): ConnectionParties {
  return {
    reporter: 'source',
    source,
    sourcePrincipal: source.identity,
    destination,
    destinationPrincipal: destination.identity,
    service: undefined,
    mtls: true,
  };
}

describe('connectionLabels', () => {
  it('gives connections between the same parties one shared, frozen label set', () => {
    const client = workload('client', 'v1');
    const server = workload('server', 'v1');
    const first = connectionLabels(parties(client, server));
    expect(connectionLabels(parties(client, server))).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    expect(first).toMatchObject({
      source_workload: 'client',
      destination_workload: 'server',
      response_flags: '-',
      connection_security_policy: 'mutual_tls',
    });
  });

  it('keeps the response flags, reporter and security apart', () => {
    const client = workload('client', 'v1');
    const server = workload('server', 'v1');
    const plain = connectionLabels(parties(client, server));
    const refused = connectionLabels(parties(client, server), ResponseFlag.denied);
    const inbound = connectionLabels({ ...parties(client, server), reporter: 'destination' });
    const tcp = connectionLabels({ ...parties(client, server), mtls: false });
    expect(refused.response_flags).toBe('DENY');
    expect(inbound.reporter).toBe('destination');
    expect(tcp.connection_security_policy).toBe('unknown');
    expect(new Set([plain, refused, inbound, tcp]).size).toBe(4);
  });

  it('follows a workload that WDS replaced: new object, new labels', () => {
    const client = workload('client', 'v1');
    const server = workload('server', 'v1');
    const before = connectionLabels(parties(client, server));
    const after = connectionLabels(parties(client, workload('server', 'v2')));
    expect(before.destination_canonical_revision).toBe('v1');
    expect(after.destination_canonical_revision).toBe('v2');
  });
});
