import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CertificateExpiredError,
  IdentityMismatchError,
  InvalidSanError,
  NoPeerCertificateError,
  SpiffeId,
  TrustDomainMismatchError,
  UntrustedChainError,
  buildSecureContextOptions,
  clientTlsOptions,
  serverTlsOptions,
  withPeerVerification,
  type SpiffeCertsError,
  type TlsCredentials,
  type TrustBundle,
} from './index.ts';
import { createTestCa, issueRawCert, issueWorkloadCert } from './testing/index.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const serverId = SpiffeId.parse('spiffe://cluster.local/ns/default/sa/server');
const clientId = SpiffeId.parse('spiffe://cluster.local/ns/default/sa/client');

interface Outcome {
  readonly accepted?: SpiffeId;
  readonly rejected?: SpiffeCertsError;
}

/** A mesh server on loopback that reports how it judged its first client. */
async function startServer(
  credentials: TlsCredentials,
  bundle: TrustBundle,
): Promise<{ port: number; outcome: Promise<Outcome> }> {
  let report!: (outcome: Outcome) => void;
  const outcome = new Promise<Outcome>(resolve => (report = resolve));
  const server = tls.createServer(
    serverTlsOptions(credentials),
    withPeerVerification(
      { bundle, trustDomain: 'cluster.local' },
      (socket, peer) => {
        report({ accepted: peer });
        socket.end(`hello ${peer.uri}`);
      },
      (_socket, error) => {
        report({ rejected: error });
      },
    ),
  );
  server.on('tlsClientError', () => undefined);
  await new Promise<void>(resolve => {
    server.listen(0, '127.0.0.1', resolve);
  });
  cleanups.push(
    () =>
      new Promise<void>(resolve => {
        server.close(() => {
          resolve();
        });
      }),
  );
  return { port: (server.address() as AddressInfo).port, outcome };
}

/** Connects and resolves with what the client saw: data received, or the error. */
function connect(
  options: tls.ConnectionOptions,
): Promise<{ data: string; error?: Error; protocol?: string | null }> {
  return new Promise(resolve => {
    const socket = tls.connect(options);
    cleanups.push(() => {
      socket.destroy();
    });
    let data = '';
    let error: Error | undefined;
    let protocol: string | null | undefined;
    socket.on('secureConnect', () => (protocol = socket.getProtocol()));
    socket.on('data', (chunk: Buffer) => (data += chunk.toString()));
    socket.on('error', (err: Error) => {
      error = err;
    });
    socket.on('close', () => {
      resolve(error === undefined ? { data, protocol } : { data, error, protocol });
    });
  });
}

describe('node:tls mTLS between workload identities', () => {
  it('succeeds over TLS 1.3 and each side learns the other identity', async () => {
    const ca = await createTestCa();
    const server = await issueWorkloadCert(ca, serverId);
    const client = await issueWorkloadCert(ca, clientId);
    const { port, outcome } = await startServer(server.tlsCredentials, server.roots);
    const seen = await connect({
      host: '127.0.0.1',
      port,
      ...clientTlsOptions(client.tlsCredentials, { expectedIdentities: [serverId] }),
    });
    expect(seen.error).toBeUndefined();
    expect(seen.protocol).toBe('TLSv1.3');
    expect(seen.data).toBe(`hello ${clientId.uri}`);
    expect((await outcome).accepted?.uri).toBe(clientId.uri);
  });

  it('works through an intermediate CA (the chain is sent, the root is not)', async () => {
    const ca = await createTestCa({ intermediate: true });
    const server = await issueWorkloadCert(ca, serverId);
    const client = await issueWorkloadCert(ca, clientId);
    expect(server.certChain).toHaveLength(2);
    const { port, outcome } = await startServer(server.tlsCredentials, server.roots);
    const seen = await connect({
      host: '127.0.0.1',
      port,
      ...clientTlsOptions(client.tlsCredentials, { expectedIdentities: [serverId] }),
    });
    expect(seen.data).toBe(`hello ${clientId.uri}`);
    expect((await outcome).accepted?.uri).toBe(clientId.uri);
  });

  it('refuses a client certificate from another trust domain with SPIFFE_TRUST_DOMAIN_MISMATCH', async () => {
    const ca = await createTestCa();
    const server = await issueWorkloadCert(ca, serverId);
    const foreign = await issueWorkloadCert(ca, 'spiffe://other.domain/ns/default/sa/client');
    const { port, outcome } = await startServer(server.tlsCredentials, server.roots);
    const seen = await connect({
      host: '127.0.0.1',
      port,
      ...clientTlsOptions(foreign.tlsCredentials, { expectedIdentities: [serverId] }),
    });
    const { rejected } = await outcome;
    expect(rejected).toBeInstanceOf(TrustDomainMismatchError);
    expect(rejected).toMatchObject({ code: 'SPIFFE_TRUST_DOMAIN_MISMATCH', actual: 'other.domain' });
    expect(seen.data).toBe('');
  });

  it('refuses an expired client certificate with SPIFFE_CERT_EXPIRED', async () => {
    const ca = await createTestCa();
    const server = await issueWorkloadCert(ca, serverId);
    const expired = await issueWorkloadCert(ca, clientId, {
      notBefore: new Date(Date.now() - 3 * 3600_000),
      ttlSeconds: 3600,
    });
    const { port, outcome } = await startServer(server.tlsCredentials, server.roots);
    const seen = await connect({
      host: '127.0.0.1',
      port,
      ...clientTlsOptions(expired.tlsCredentials, { expectedIdentities: [serverId] }),
    });
    const { rejected } = await outcome;
    expect(rejected).toBeInstanceOf(CertificateExpiredError);
    expect(rejected?.code).toBe('SPIFFE_CERT_EXPIRED');
    expect(seen.data).toBe('');
  });

  it('refuses a client certificate whose URI SAN carries a NUL byte with SPIFFE_INVALID_SAN', async () => {
    const ca = await createTestCa();
    const server = await issueWorkloadCert(ca, serverId);
    const tricky = await issueRawCert(ca, `${clientId.uri}\u0000.evil`);
    const { port, outcome } = await startServer(server.tlsCredentials, server.roots);
    const seen = await connect({
      host: '127.0.0.1',
      port,
      ...clientTlsOptions(tricky, { expectedIdentities: [serverId] }),
    });
    const { rejected } = await outcome;
    expect(rejected).toBeInstanceOf(InvalidSanError);
    expect(rejected?.message).toContain('NUL');
    expect(seen.data).toBe('');
  });

  it('refuses a client certificate signed by another root with SPIFFE_UNTRUSTED_CHAIN', async () => {
    const ca = await createTestCa();
    const otherCa = await createTestCa();
    const server = await issueWorkloadCert(ca, serverId);
    const stranger = await issueWorkloadCert(otherCa, clientId);
    const { port, outcome } = await startServer(server.tlsCredentials, server.roots);
    // The client trusts the server's root so that the server gets to judge the client.
    const seen = await connect({
      host: '127.0.0.1',
      port,
      ...clientTlsOptions(
        { ...stranger.tlsCredentials, roots: server.roots },
        { expectedIdentities: [serverId] },
      ),
    });
    const { rejected } = await outcome;
    expect(rejected).toBeInstanceOf(UntrustedChainError);
    expect(rejected?.code).toBe('SPIFFE_UNTRUSTED_CHAIN');
    expect(seen.data).toBe('');
  });

  it('refuses a client that presents no certificate with SPIFFE_NO_PEER_CERT', async () => {
    const ca = await createTestCa();
    const server = await issueWorkloadCert(ca, serverId);
    const { port, outcome } = await startServer(server.tlsCredentials, server.roots);
    const {
      cert: _cert,
      key: _key,
      ...noClientCert
    } = buildSecureContextOptions({
      ...server.tlsCredentials,
    });
    const seen = await connect({
      host: '127.0.0.1',
      port,
      ...noClientCert,
      checkServerIdentity: () => undefined,
    });
    expect((await outcome).rejected).toBeInstanceOf(NoPeerCertificateError);
    expect(seen.data).toBe('');
  });

  it('client side: refuses a server whose identity is not expected, with SPIFFE_IDENTITY_MISMATCH', async () => {
    const ca = await createTestCa();
    const impostor = await issueWorkloadCert(ca, 'spiffe://cluster.local/ns/default/sa/impostor');
    const client = await issueWorkloadCert(ca, clientId);
    const { port } = await startServer(impostor.tlsCredentials, impostor.roots);
    const seen = await connect({
      host: '127.0.0.1',
      port,
      ...clientTlsOptions(client.tlsCredentials, { expectedIdentities: [serverId] }),
    });
    expect(seen.error).toBeInstanceOf(IdentityMismatchError);
    expect(seen.error).toMatchObject({ actual: 'spiffe://cluster.local/ns/default/sa/impostor' });
  });

  it('client side: refuses a server with a NUL-byte SAN that would prefix-match an expected identity', async () => {
    const ca = await createTestCa();
    const tricky = await issueRawCert(ca, `${serverId.uri}\u0000`);
    const client = await issueWorkloadCert(ca, clientId);
    const { port } = await startServer(tricky, tricky.roots);
    const seen = await connect({
      host: '127.0.0.1',
      port,
      ...clientTlsOptions(client.tlsCredentials, { expectedIdentities: [serverId] }),
    });
    expect(seen.error).toBeInstanceOf(InvalidSanError);
  });

  it('builds TLS 1.3-only options with every root of the bundle as ca', async () => {
    const ca = await createTestCa();
    const other = await createTestCa();
    const cert = await issueWorkloadCert(ca, serverId);
    const options = buildSecureContextOptions({
      ...cert.tlsCredentials,
      roots: cert.roots.merge(other.trustBundle),
    });
    expect(options).toMatchObject({ minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' });
    expect(options.ca).toHaveLength(2);
    expect(() => tls.createSecureContext(options)).not.toThrow();
  });
});
