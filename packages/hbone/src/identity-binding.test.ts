import { connect as netConnect } from 'node:net';
import { SpiffeId } from '@ambient-mesh/spiffe-certs';
import { afterEach, describe, expect, it } from 'vitest';
import { HboneClient } from './connect-client.ts';
import { HboneServer } from './connect-server.ts';
import {
  HboneConnectHookError,
  HboneHandshakeError,
  HboneIdentityMismatchError,
  HboneUpstreamConnectError,
} from './errors.ts';
import { checkIdentity } from './identity.ts';
import { dialAuthority, startTestServer } from './testing/harness.ts';
import type { TestServer } from './testing/harness.ts';
import { readAll, startEchoServer, waitFor } from './testing/tcp.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(options: Parameters<typeof startTestServer>[0] = {}): Promise<{
  hbone: TestServer;
  client: HboneClient;
}> {
  const hbone = await startTestServer(options);
  cleanups.push(() => hbone.close());
  const client = new HboneClient();
  cleanups.push(() => {
    client.destroy();
  });
  return { hbone, client };
}

describe('identity binding', () => {
  it('derives a fingerprint from the leaf and refuses an id the certificate does not name', async () => {
    const { hbone } = await setup();
    const checked = checkIdentity(hbone.clientIdentity);
    expect(checked.id.uri).toBe(hbone.clientIdentity.id);
    expect(checked.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    const lying = { ...hbone.clientIdentity, id: 'spiffe://cluster.local/ns/frontend/sa/admin' };
    expect(() => checkIdentity(lying)).toThrow(HboneIdentityMismatchError);
    try {
      checkIdentity(lying);
    } catch (err) {
      expect(err).toMatchObject({
        code: 'HBONE_IDENTITY_MISMATCH',
        certificateIds: [hbone.clientIdentity.id],
      });
    }
  });

  it('rejects connect() with HBONE_IDENTITY_MISMATCH before any byte is sent', async () => {
    const { hbone, client } = await setup();
    await expect(
      client.connect({
        target: '127.0.0.1:1',
        nextHop: hbone.nextHop,
        identity: { ...hbone.clientIdentity, id: 'spiffe://cluster.local/ns/backend/sa/server' },
        expectedIdentities: [hbone.serverIdentity.id],
      }),
    ).rejects.toBeInstanceOf(HboneIdentityMismatchError);
    expect(client.counters.connectionsOpened).toBe(0);
    expect(hbone.server.counters.connectionsOpened).toBe(0);
  });

  it('refuses a server identity whose id its certificate does not name', async () => {
    const { hbone } = await setup();
    expect(
      () =>
        new HboneServer({
          identity: { ...hbone.serverIdentity, id: hbone.clientIdentity.id },
          listener: hbone.listener,
          onConnect: dialAuthority,
        }),
    ).toThrow(HboneIdentityMismatchError);
    expect(() => {
      hbone.server.updateIdentity({ ...hbone.serverIdentity, id: hbone.clientIdentity.id });
    }).toThrow(HboneIdentityMismatchError);
  });

  it('never shares a pooled connection between two certificates of the same id', async () => {
    const { hbone, client } = await setup();
    const echo = await startEchoServer();
    cleanups.push(() => echo.close());
    const second = await hbone.pki.identity('client', { namespace: 'frontend' });
    expect(second.id).toBe(hbone.clientIdentity.id);
    const open = async (identity: typeof second): Promise<void> => {
      const tunnel = await client.connect({
        target: `127.0.0.1:${echo.port}`,
        nextHop: hbone.nextHop,
        identity,
        expectedIdentities: [SpiffeId.parse(hbone.serverIdentity.id)],
      });
      tunnel.end('x');
      expect((await readAll(tunnel)).toString()).toBe('x');
    };
    await open(hbone.clientIdentity);
    await open({ ...hbone.clientIdentity }); // same certificate, another object: same connection
    expect(client.stats().connections).toBe(1);
    await open(second);
    expect(client.stats().connections).toBe(2);
    expect(client.stats().keys).toBe(2);
  });
});

describe('typed server errors', () => {
  it('reports a client that hangs up during the handshake as HBONE_HANDSHAKE_FAILED with the cause', async () => {
    const { hbone } = await setup();
    const socket = netConnect({ host: '127.0.0.1', port: hbone.port });
    await new Promise<void>(resolve => socket.once('connect', resolve));
    socket.end('not a TLS ClientHello, just bytes\r\n\r\n');
    await waitFor(() => hbone.errors.length > 0, 5000, 'handshake error report');
    socket.destroy();
    const error = hbone.errors[0]!;
    expect(error).toBeInstanceOf(HboneHandshakeError);
    expect(error).toMatchObject({ code: 'HBONE_HANDSHAKE_FAILED' });
    expect(error.cause).toBeInstanceOf(Error);
  });

  it('wraps a throwing hook and a failed upstream dial, keeping the original as cause', async () => {
    const failure = new Error('policy store unavailable');
    let calls = 0;
    const { hbone, client } = await setup({
      hook: request => {
        calls++;
        if (calls === 1) throw failure;
        return {
          status: 200,
          connect: () => Promise.reject(new Error(`no route to ${request.rawAuthority}`)),
        };
      },
    });
    for (let i = 0; i < 2; i++) {
      await expect(
        client.connect({
          target: '127.0.0.1:9',
          nextHop: hbone.nextHop,
          identity: hbone.clientIdentity,
          expectedIdentities: [hbone.serverIdentity.id],
        }),
      ).rejects.toMatchObject({ code: 'HBONE_CONNECT_REJECTED', status: 503 });
    }
    await waitFor(() => hbone.errors.length >= 2, 5000, 'two reports');
    const [hookError, dialError] = hbone.errors;
    expect(hookError).toBeInstanceOf(HboneConnectHookError);
    expect(hookError!.cause).toBe(failure);
    expect(dialError).toBeInstanceOf(HboneUpstreamConnectError);
    expect(dialError).toMatchObject({ code: 'HBONE_UPSTREAM_CONNECT_FAILED', authority: '127.0.0.1:9' });
  });
});
