import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { SpiffeId } from '@ambient-mesh/spiffe-certs';
import { createTestCa } from '@ambient-mesh/spiffe-certs/testing';
import { TestCaServer } from '../testing/test-ca-server.ts';
import { createGrpcClient } from '@ambient-mesh/xds';
import { CaClient } from './ca-client.ts';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(): Promise<{ server: TestCaServer; client: CaClient; tokenPath: string }> {
  const server = new TestCaServer(await createTestCa());
  const address = await server.start();
  cleanups.push(() => {
    server.stop();
  });
  const dir = mkdtempSync(join(tmpdir(), 'ztunnel-ca-'));
  cleanups.push(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const tokenPath = join(dir, 'istio-token');
  writeFileSync(tokenPath, 'token-1\n');
  const grpcClient = createGrpcClient({ address });
  cleanups.push(() => {
    grpcClient.close();
  });
  const client = new CaClient({
    client: grpcClient,
    identity: { tokenPath, clusterId: 'c1', headers: {} },
    ttlSeconds: 3600,
    impersonate: true,
  });
  return { server, client, tokenPath };
}

const ID = SpiffeId.parse('spiffe://cluster.local/ns/default/sa/sa-a');

describe('CaClient', () => {
  it('impersonates the workload identity and returns its certificate with the roots', async () => {
    const { server, client } = await setup();
    const cert = await client.fetch(ID);
    expect(cert.identity.uri).toBe(ID.uri);
    expect(cert.roots.size).toBe(1);
    expect(server.calls).toEqual([
      { authorization: 'Bearer token-1', clusterId: 'c1', impersonated: ID.uri, ttlSeconds: 3600 },
    ]);
  });

  it('re-reads the token on every call', async () => {
    const { server, client, tokenPath } = await setup();
    await client.fetch(ID);
    writeFileSync(tokenPath, 'token-2');
    await client.fetch(ID);
    expect(server.calls.map(c => c.authorization)).toEqual(['Bearer token-1', 'Bearer token-2']);
  });

  it('rejects with a typed error when istiod refuses', async () => {
    const { server, client } = await setup();
    server.failWith = grpc.status.UNAUTHENTICATED;
    await expect(client.fetch(ID)).rejects.toMatchObject({
      code: 'ZTUNNEL_CA_REQUEST_FAILED',
      message: expect.stringMatching(/request impersonation authentication failure/) as unknown,
    });
  });

  it('rejects with ZTUNNEL_TOKEN_UNREADABLE when the token file is missing', async () => {
    const { client, tokenPath } = await setup();
    rmSync(tokenPath);
    await expect(client.fetch(ID)).rejects.toMatchObject({ code: 'ZTUNNEL_TOKEN_UNREADABLE' });
  });
});
