import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestCa } from '@ambient-mesh/spiffe-certs/testing';
import { WaypointErrorCode } from '../errors.ts';
import { createGrpcClient } from '@ambient-mesh/xds';
import { startTestCaServer } from '../testing/loopback.ts';
import { fetchCaCertificate, waypointSpiffeId } from './ca-identity.ts';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A CreateCertificate server signing for `issueAs`, recording each call's bearer token. */
async function caServer(issueAs: string): Promise<{ address: string; tokens: readonly string[] }> {
  const server = await startTestCaServer(await createTestCa(), issueAs);
  cleanups.push(() => {
    server.close();
  });
  return server;
}

function tokenFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'waypoint-ca-'));
  cleanups.push(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const path = join(dir, 'istio-token');
  writeFileSync(path, 'token-1\n');
  return path;
}

describe('the waypoint certificate from istiod', () => {
  const id = waypointSpiffeId('cluster.local', 'sample', 'waypoint');

  it('asks for its service account identity with the pod token and returns HBONE credentials', async () => {
    const { address, tokens } = await caServer(id.uri);
    const client = createGrpcClient({ address });
    cleanups.push(() => {
      client.close();
    });
    const identity = await fetchCaCertificate({
      client,
      call: { tokenPath: tokenFile(), clusterId: 'Kubernetes', headers: {} },
      identity: id,
    });
    expect(identity.identity.uri).toBe('spiffe://cluster.local/ns/sample/sa/waypoint');
    expect(identity.certChain.length).toBeGreaterThan(0);
    expect(identity.tlsCredentials.privateKey).toContain('PRIVATE KEY');
    expect(tokens).toEqual(['Bearer token-1']);
  });

  it('refuses a certificate issued for another identity', async () => {
    const { address } = await caServer('spiffe://cluster.local/ns/sample/sa/other');
    const client = createGrpcClient({ address });
    cleanups.push(() => {
      client.close();
    });
    await expect(
      fetchCaCertificate({
        client,
        call: { tokenPath: tokenFile(), clusterId: 'Kubernetes', headers: {} },
        identity: id,
      }),
    ).rejects.toMatchObject({ code: WaypointErrorCode.CertificateRequestFailed });
  });
});
