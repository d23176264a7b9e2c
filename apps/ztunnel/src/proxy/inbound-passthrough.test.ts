/**
 * Direct tier: inbound plaintext (15006) of the in-pod proxy, through the loopback mesh.
 */
import { connect as netConnect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { TypeUrl } from '@ambient-mesh/xds-types';
import { exchange, mesh, policyResource } from '../testing/loopback-mesh.ts';
import type { Cleanups } from '../testing/loopback-mesh.ts';
import { waitFor } from '../testing/wait.ts';

const cleanups: Cleanups = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('inbound passthrough (direct tier, loopback pods)', () => {
  it('accepts plaintext on 15006 unless a STRICT policy denies connections without identity', async () => {
    const m = await mesh(cleanups);
    m.b.plaintext = { address: m.b.ip, port: 8080 };
    const plaintext = (): Promise<string> =>
      new Promise((resolve, reject) => {
        const socket = netConnect({ host: m.b.ip, port: 15006, localAddress: m.a.ip });
        let data = '';
        socket.on('data', chunk => {
          data += String(chunk);
          socket.end();
        });
        socket.on('error', reject);
        socket.on('close', () => {
          resolve(data);
        });
        socket.write('plain');
      });
    expect(await plaintext()).toBe('plain');
    expect(m.appB.peers).toEqual([m.a.ip]);
    m.xds.push({
      typeUrl: TypeUrl.AUTHORIZATION,
      resources: [
        policyResource('strict', {
          scope: 1,
          action: 1,
          rules: [{ clauses: [{ matches: [{ notPrincipals: [{ presence: {} }] }] }] }],
        }),
      ],
    });
    await waitFor(() => m.xds.requestsFor(TypeUrl.AUTHORIZATION).length >= 3, 'policy ACK');
    expect(await plaintext()).toBe('');
    const { echoed, socket } = await exchange(m, 'mtls still works');
    socket.end();
    expect(echoed).toBe('mtls still works');
  });
});
