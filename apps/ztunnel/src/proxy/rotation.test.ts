/**
 * Direct tier: certificate rotation under steady traffic, through the loopback mesh. The test CA
 * issues 3 s certificates (NotBefore backdated 120 s), so ztunnel renews each identity about every
 * second while pod A opens a new connection to B after another and keeps one connection open. No
 * connection may fail, and B's inbound HBONE server must present B's current certificate.
 */
import type { Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { SpiffeId } from '@ambient-mesh/spiffe-certs';
import { createLocalFetcher } from '@ambient-mesh/spiffe-certs/testing';
import { exchange, mesh } from '../testing/loopback-mesh.ts';
import type { Cleanups, Mesh } from '../testing/loopback-mesh.ts';

const cleanups: Cleanups = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const SA_A = 'spiffe://cluster.local/ns/default/sa/sa-a';
const SA_B = 'spiffe://cluster.local/ns/default/sa/sa-b';

/** Renewals logged so far for `identity`. */
function renewals(m: Mesh, identity: string): number {
  return m.records.filter(r => r.msg === 'certificate renewed' && r.identity === identity).length;
}

/** The serial number of the leaf ztunnel holds for `identity` (its `/config_dump`). */
async function heldSerial(m: Mesh, identity: string): Promise<string | undefined> {
  const res = await fetch(`http://127.0.0.1:${m.bound.adminAddress.port}/config_dump`);
  const dump = (await res.json()) as {
    certificates?: { identity: string; certChain: { serialNumber: string }[] }[];
  };
  return dump.certificates?.find(c => c.identity === identity)?.certChain[0]?.serialNumber;
}

/** The serial number of the leaf B's inbound HBONE server presents to a client of A's identity. */
async function presentedSerial(m: Mesh): Promise<string> {
  const client = await createLocalFetcher(m.ca)(SpiffeId.parse(SA_A), new AbortController().signal);
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host: m.b.ip,
      port: 15008,
      cert: client.certChain.join(''),
      key: client.privateKeyPem,
      ca: client.roots.roots.map(r => r.toString()),
      ALPNProtocols: ['h2'],
      minVersion: 'TLSv1.3',
      checkServerIdentity: () => undefined,
    });
    socket.once('secureConnect', () => {
      // Hex here, decimal in the config dump.
      const hex = socket.getPeerX509Certificate()?.serialNumber;
      const serial = hex === undefined ? undefined : BigInt(`0x${hex}`).toString();
      socket.destroy();
      if (serial === undefined) reject(new Error('no peer certificate'));
      else resolve(serial);
    });
    socket.once('error', reject);
  });
}

/** One round trip on an open connection to B's echo app. */
function roundTrip(socket: Socket, payload: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let got = '';
    const onData = (chunk: Buffer): void => {
      got += String(chunk);
      if (got.length < payload.length) return;
      done();
      if (got === payload) resolve();
      else reject(new Error(`echoed ${JSON.stringify(got)}, sent ${JSON.stringify(payload)}`));
    };
    const onClose = (): void => {
      done();
      reject(new Error(`closed after ${JSON.stringify(got)}`));
    };
    const done = (): void => {
      socket.off('data', onData);
      socket.off('close', onClose);
    };
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.write(payload);
  });
}

describe('certificate rotation under steady traffic (direct tier, loopback pods)', () => {
  it('renews both identities many times with no failed connection, and B serves its current certificate', async () => {
    const m = await mesh(cleanups, { certTtlSeconds: 3 });
    const { socket: long } = await exchange(m, 'long-0');
    cleanups.push(() => long.destroy());
    const failures: string[] = [];
    let ok = 0;
    const startA = renewals(m, SA_A);
    const startB = renewals(m, SA_B);
    // Bounded: 5 renewals of each identity take about 5 s; at most 30 s of connections.
    const until = Date.now() + 30_000;
    for (let i = 1; Date.now() < until; i++) {
      try {
        const { echoed, socket } = await exchange(m, `request ${String(i)}`);
        socket.destroy();
        if (echoed === `request ${String(i)}`) ok++;
        else failures.push(`request ${String(i)}: echoed ${JSON.stringify(echoed)}`);
      } catch (err) {
        failures.push(`request ${String(i)}: ${String(err)}`);
      }
      try {
        await roundTrip(long, `long ${String(i)}\n`);
      } catch (err) {
        failures.push(`long ${String(i)}: ${String(err)}`);
        break;
      }
      if (renewals(m, SA_A) - startA >= 5 && renewals(m, SA_B) - startB >= 5) break;
    }
    expect(failures).toEqual([]);
    expect(renewals(m, SA_A) - startA).toBeGreaterThanOrEqual(5);
    expect(renewals(m, SA_B) - startB).toBeGreaterThanOrEqual(5);
    expect(ok).toBeGreaterThan(5);
    // A new connection to B sees the certificate ztunnel holds for B now (or the one it renewed
    // to while the probe ran).
    let matched = false;
    for (let attempt = 0; attempt < 20 && !matched; attempt++) {
      matched = (await presentedSerial(m)) === (await heldSerial(m, SA_B));
    }
    expect(matched).toBe(true);
  }, 60_000);
});
