/**
 * Direct tier: inbound HBONE (15008) of the in-pod proxy, through the loopback mesh: the CONNECT
 * checks (authority, self-call, trust domain), policy on arrival and on change, and the
 * destination service in the labels.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createHboneClient } from '@ambient-mesh/hbone';
import { issueRawCert } from '@ambient-mesh/spiffe-certs/testing';
import { packAny, TypeUrl } from '@ambient-mesh/xds-types';
import {
  exchange,
  ipBytes,
  mesh,
  metricsText,
  podResource,
  policyResource,
} from '../testing/loopback-mesh.ts';
import type { Cleanups } from '../testing/loopback-mesh.ts';
import { waitFor } from '../testing/wait.ts';

const cleanups: Cleanups = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('inbound HBONE (direct tier, loopback pods)', () => {
  it('answers 401 under a DENY policy, counts DENY, and closes a connection open when the policy arrived', async () => {
    const m = await mesh(cleanups);
    const { socket: open } = await exchange(m, 'before');
    // The app's socket allows half-open: ztunnel closing its side shows up as 'end'.
    let closed = false;
    open.once('end', () => (closed = true));
    open.once('close', () => (closed = true));
    m.xds.push({
      typeUrl: TypeUrl.AUTHORIZATION,
      resources: [
        policyResource('deny-8080', {
          scope: 1,
          action: 1,
          rules: [{ clauses: [{ matches: [{ destinationPorts: [8080] }] }] }],
        }),
      ],
    });
    await waitFor(() => closed, 'the open connection to be closed by the policy change');
    await expect(exchange(m, 'after')).rejects.toThrow(/closed after ""/);
    await waitFor(
      () =>
        m.records.some(
          r => r.direction === 'outbound' && typeof r.error === 'string' && r.error.includes('401'),
        ),
      'outbound 401 log',
    );
    expect(
      m.records.some(
        r =>
          r.direction === 'inbound' &&
          r.error === 'connection closed due to policy change (default/deny-8080)',
      ),
    ).toBe(true);
    const text = await metricsText(m.bound);
    expect(text).toMatch(
      /^istio_tcp_connections_opened_total\{reporter="destination".*response_flags="DENY".*\} 1$/m,
    );
  });

  it('rejects a CONNECT whose authority IP differs from the dialled IP with 400, and self-calls with 503', async () => {
    const m = await mesh(cleanups);
    const client = createHboneClient();
    cleanups.push(() => {
      client.destroy();
    });
    const raw = await issueRawCert(m.ca, 'spiffe://cluster.local/ns/default/sa/sa-a');
    const identity = {
      id: 'spiffe://cluster.local/ns/default/sa/sa-a',
      certChain: raw.certChain,
      privateKey: raw.privateKeyPem,
      roots: raw.roots,
    };
    const connect = (target: string) =>
      client.connect({
        target,
        nextHop: `${m.b.ip}:15008`,
        identity,
        expectedIdentities: ['spiffe://cluster.local/ns/default/sa/sa-b'],
      });
    await expect(connect(`${m.a.ip}:8080`)).rejects.toMatchObject({ status: 400 });
    await expect(connect(`${m.b.ip}:15001`)).rejects.toMatchObject({ status: 503 });
    const ok = await connect(`${m.b.ip}:8080`);
    ok.end();
    // Only the valid CONNECT reached the app.
    expect(m.appB.peers).toHaveLength(1);
  });

  it('resets a peer from a foreign trust domain', async () => {
    const m = await mesh(cleanups);
    const client = createHboneClient({ connectTimeoutMs: 3_000 });
    cleanups.push(() => {
      client.destroy();
    });
    const raw = await issueRawCert(m.ca, 'spiffe://evil.local/ns/default/sa/sa-a');
    const identity = {
      id: 'spiffe://evil.local/ns/default/sa/sa-a',
      certChain: raw.certChain,
      privateKey: raw.privateKeyPem,
      roots: raw.roots,
    };
    await expect(
      client.connect({
        target: `${m.b.ip}:8080`,
        nextHop: `${m.b.ip}:15008`,
        identity,
        expectedIdentities: ['spiffe://cluster.local/ns/default/sa/sa-b'],
      }),
    ).rejects.toThrow();
    expect(m.appB.peers).toEqual([]);
  });
});

describe('inbound destination service (direct tier)', () => {
  it('labels destination_service* from the forwarded host, or from the workload services in WDS', async () => {
    const m = await mesh(cleanups);
    const svcKey = 'default/svc-b.default.svc.cluster.local';
    const pushed = m.xds.requestsFor(TypeUrl.ADDRESS).length;
    const withService = podResource(m.b, 'sa-b');
    m.xds.push({
      typeUrl: TypeUrl.ADDRESS,
      resources: [
        {
          ...withService,
          version: '2',
          resource: packAny(TypeUrl.ADDRESS, {
            workload: {
              uid: 'Kubernetes//Pod/default/pod-b',
              name: 'pod-b',
              namespace: 'default',
              serviceAccount: 'sa-b',
              node: 'node-1',
              addresses: [ipBytes(m.b.ip)],
              tunnelProtocol: 1,
              canonicalName: 'pod-b',
              canonicalRevision: 'v1',
              services: { [svcKey]: { ports: [] } },
            },
          }),
        },
        {
          name: svcKey,
          version: '1',
          resource: packAny(TypeUrl.ADDRESS, {
            service: {
              name: 'svc-b',
              namespace: 'default',
              hostname: 'svc-b.default.svc.cluster.local',
              addresses: [{ network: '', address: ipBytes('10.96.0.10') }],
              ports: [{ servicePort: 80, targetPort: 8080 }],
            },
          }),
        },
      ],
    });
    await waitFor(() => m.xds.requestsFor(TypeUrl.ADDRESS).length > pushed, 'WDS ACK');

    // Service-addressed: the client sends `forwarded: ...;host=svc-b...`.
    const viaVip = await exchange(m, 'to the service', { address: '10.96.0.10', port: 80 });
    viaVip.socket.end();
    // Pod-addressed: no host, the service is found from B's WDS services by the target port.
    const viaPod = await exchange(m, 'to the pod');
    viaPod.socket.end();
    expect(m.appB.peers).toEqual([m.a.ip, m.a.ip]);

    await waitFor(
      () => m.records.filter(r => r.msg === 'connection complete' && r.direction === 'inbound').length >= 2,
      'inbound access logs',
    );
    const inbound = m.records.filter(r => r.msg === 'connection complete' && r.direction === 'inbound');
    for (const record of inbound) expect(record['dst.service']).toBe('svc-b.default.svc.cluster.local');

    const text = await metricsText(m.bound);
    const destination = text
      .split('\n')
      .filter(l => l.startsWith('istio_tcp_connections_opened_total{reporter="destination"'));
    expect(destination).toHaveLength(1);
    expect(destination[0]).toContain('destination_service="svc-b.default.svc.cluster.local"');
    expect(destination[0]).toContain('destination_service_namespace="default"');
    expect(destination[0]).toContain('destination_service_name="svc-b"');
    expect(destination[0]).toMatch(/ 2$/);
  });
});
