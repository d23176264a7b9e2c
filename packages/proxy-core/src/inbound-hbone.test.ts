import { createServer, connect as netConnect } from 'node:net';
import { X509Certificate } from 'node:crypto';
import { connect as h2Connect } from 'node:http2';
import { connect as tlsConnect } from 'node:tls';
import type { AddressInfo, Server } from 'node:net';
import type { Duplex } from 'node:stream';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createHboneClient } from '@ambient-mesh/hbone';
import type { HboneIdentity } from '@ambient-mesh/hbone';
import { buildSecureContextOptions } from '@ambient-mesh/spiffe-certs';
import type { CertificateAuthority } from '@ambient-mesh/spiffe-certs';
import { createTestCa, issueRawCert } from '@ambient-mesh/spiffe-certs/testing';
import { ConnectionManager } from './connection-manager.ts';
import type { ConnectionAddresses, ConnectionOutcome } from './connection-sink.ts';
import { InboundHbone } from './inbound-hbone.ts';
import type { InboundClassification, InboundTarget } from './inbound-hbone.ts';
import type { PolicyVerdict } from './policy-check.ts';

const SERVER_ID = 'spiffe://cluster.local/ns/default/sa/server';
const CLIENT_ID = 'spiffe://cluster.local/ns/default/sa/client';
const HOST = '127.0.0.1';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

let ca: CertificateAuthority;
let serverIdentity: HboneIdentity;
let clientIdentity: HboneIdentity;
beforeAll(async () => {
  ca = await createTestCa();
  const identity = async (id: string): Promise<HboneIdentity> => {
    const raw = await issueRawCert(ca, id);
    return { id, certChain: raw.certChain, privateKey: raw.privateKeyPem, roots: raw.roots };
  };
  serverIdentity = await identity(SERVER_ID);
  clientIdentity = await identity(CLIENT_ID);
});

async function waitFor(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise(resolve => setTimeout(resolve, 5));
  }
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>(resolve => server.listen(0, HOST, resolve));
  cleanups.push(() => new Promise(resolve => server.close(resolve)));
  return (server.address() as AddressInfo).port;
}

interface Policy extends InboundTarget {
  readonly peer: string;
}

interface Harness {
  readonly events: { kind: string; name?: string; outcome?: ConnectionOutcome; error?: string }[];
  readonly connections: ConnectionManager<{ name: string }, Policy>;
  readonly inbound: InboundHbone<{ name: string }, Policy>;
  readonly hbonePort: number;
  readonly appPort: number;
  /** Resolves the serving identity (the first socket waits for it). */
  provideIdentity(): void;
  /** Announces a new certificate of the serving identity, as the provider's renewal listener. */
  renew(identity: HboneIdentity): void;
  connect(target: string): Promise<Duplex>;
}

async function harness(
  options: {
    classify?: () => InboundClassification<{ name: string }, Policy>;
    authorize?: (policy: Policy) => PolicyVerdict;
    identityNow?: boolean;
  } = {},
): Promise<Harness> {
  const events: Harness['events'] = [];
  const connections = new ConnectionManager<{ name: string }, Policy>({
    sink: {
      opened: c => events.push({ kind: 'opened', name: c.name }),
      completed: (c, outcome) => events.push({ kind: 'completed', name: c.name, outcome }),
      failed: (_: ConnectionAddresses, error) => events.push({ kind: 'failed', error }),
    },
    authorize: options.authorize ?? (() => ({ allowed: true, reason: 'no-policies' })),
  });
  // The app: answers each request with its upper-case.
  const app = createServer({ allowHalfOpen: true }, socket => {
    socket.on('error', () => undefined);
    socket.on('data', chunk => socket.write(String(chunk).toUpperCase()));
    socket.on('end', () => socket.end());
  });
  const appPort = await listen(app);
  let provide: () => void = () => undefined;
  const identityReady = new Promise<void>(resolve => (provide = resolve));
  if (options.identityNow !== false) provide();
  const renewalListeners = new Set<(identity: HboneIdentity) => void>();
  const inbound = new InboundHbone<{ name: string }, Policy>({
    connections,
    secureContext: {
      identity: async () => {
        await identityReady;
        return serverIdentity;
      },
      onRenewed: listener => {
        renewalListeners.add(listener);
        return () => renewalListeners.delete(listener);
      },
    },
    classify:
      options.classify ??
      (request => ({
        kind: 'known',
        connection: { name: `to-${request.authority.port}` },
        policy: target => ({ ...target, peer: request.peerIdentity }),
      })),
    dial: (request, signal) =>
      new Promise((resolve, reject) => {
        const socket = netConnect({ host: request.ip, port: request.port, allowHalfOpen: true });
        socket.once('connect', () => {
          resolve(socket);
        });
        socket.once('error', reject);
        signal.addEventListener('abort', () => socket.destroy(), { once: true });
      }),
    proxyPorts: new Set([15001, 15006, 15008]),
    proxyName: 'test-proxy',
  });
  const listener = createServer({ allowHalfOpen: true }, socket => {
    void inbound.accept(socket);
  });
  const hbonePort = await listen(listener);
  // Before the listener's close, which waits for the sessions the server holds.
  cleanups.push(() => {
    inbound.destroy();
  });
  const client = createHboneClient({ connectTimeoutMs: 5_000 });
  cleanups.push(() => {
    client.destroy();
  });
  return {
    events,
    connections,
    inbound,
    hbonePort,
    appPort,
    provideIdentity: provide,
    renew: identity => {
      for (const listener of renewalListeners) listener(identity);
    },
    connect: target =>
      client.connect({
        target,
        nextHop: `${HOST}:${hbonePort}`,
        identity: clientIdentity,
        expectedIdentities: [SERVER_ID],
      }),
  };
}

/** Sends `text` on a tunnel, half-closes, and collects the answer until the tunnel ends. */
function exchange(tunnel: Duplex, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let answer = '';
    tunnel.on('data', chunk => (answer += String(chunk)));
    tunnel.on('end', () => {
      resolve(answer);
    });
    tunnel.on('error', reject);
    tunnel.end(text);
  });
}

/** The leaf certificate the server on `port` presents to a TLS client of the client identity. */
function presentedLeaf(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host: HOST,
      port,
      ...buildSecureContextOptions(clientIdentity),
      ALPNProtocols: ['h2'],
      checkServerIdentity: () => undefined,
    });
    socket.once('secureConnect', () => {
      const fingerprint = socket.getPeerX509Certificate()?.fingerprint256 ?? '';
      // An HTTP/2 session closed at once, so the server does not wait for a preface.
      const session = h2Connect(`https://${HOST}:${String(port)}`, { createConnection: () => socket });
      session.on('error', () => undefined);
      session.once('connect', () => {
        session.close();
        resolve(fingerprint);
      });
    });
    socket.once('error', reject);
  });
}

const leafOf = (identity: HboneIdentity): string =>
  new X509Certificate(
    typeof identity.certChain === 'string' ? identity.certChain : (identity.certChain[0] ?? ''),
  ).fingerprint256;

describe('InboundHbone', () => {
  it('serves a CONNECT to the app and reports it once through the manager, with its bytes', async () => {
    const h = await harness();
    const tunnel = await h.connect(`${HOST}:${h.appPort}`);
    expect(await exchange(tunnel, 'hello')).toBe('HELLO');
    await waitFor(() => h.events.some(e => e.kind === 'completed'), 'the completion');
    expect(h.events).toEqual([
      { kind: 'opened', name: `to-${h.appPort}` },
      {
        kind: 'completed',
        name: `to-${h.appPort}`,
        outcome: expect.objectContaining({ fromClient: 5, toClient: 5, error: undefined }) as unknown,
      },
    ]);
  });

  it('answers 400 to a foreign authority IP, 503 to a self-call and to an unknown destination', async () => {
    const h = await harness();
    await expect(h.connect(`127.0.0.2:${h.appPort}`)).rejects.toMatchObject({ status: 400 });
    await expect(h.connect(`${HOST}:15006`)).rejects.toMatchObject({ status: 503 });
    expect(h.events.map(e => e.error)).toEqual([
      `ip mismatch: 127.0.0.2 != ${HOST}`,
      'self-call to test-proxy port 15006',
    ]);
    const unknown = await harness({ classify: () => ({ kind: 'unknown', error: 'no workload' }) });
    await expect(unknown.connect(`${HOST}:${unknown.appPort}`)).rejects.toMatchObject({ status: 503 });
    expect(unknown.events).toEqual([{ kind: 'failed', error: 'no workload' }]);
  });

  it('lets a destination accept any authority IP when it says so', async () => {
    const h = await harness({
      classify: () => ({
        kind: 'known',
        connection: { name: 'tunnel' },
        policy: target => ({ ...target, peer: '' }),
        anyAuthorityIp: true,
      }),
    });
    // The destination listens on another address than the one the CONNECT arrived at.
    const other = createServer({ allowHalfOpen: true }, socket => {
      socket.on('error', () => undefined);
      socket.on('data', chunk => socket.end(String(chunk).toUpperCase()));
    });
    await new Promise<void>(resolve => other.listen(0, '127.0.0.2', resolve));
    cleanups.push(() => new Promise(resolve => other.close(resolve)));
    const tunnel = await h.connect(`127.0.0.2:${(other.address() as AddressInfo).port}`);
    expect(await exchange(tunnel, 'ok')).toBe('OK');
  });

  it('answers 401 under a denying policy, counted DENY once, with the policy context it was given', async () => {
    const seen: Policy[] = [];
    const h = await harness({
      authorize: policy => {
        seen.push(policy);
        return { allowed: false, reason: 'denied', policy: 'default/deny-all' };
      },
    });
    await expect(h.connect(`${HOST}:${h.appPort}`)).rejects.toMatchObject({ status: 401 });
    expect(seen).toEqual([{ ip: HOST, port: h.appPort, peer: CLIENT_ID }]);
    expect(h.events).toEqual([
      {
        kind: 'completed',
        name: `to-${h.appPort}`,
        outcome: {
          fromClient: 0,
          toClient: 0,
          durationMs: expect.any(Number) as unknown,
          error: 'policy rejection: denied (default/deny-all)',
          refused: 'DENY',
        },
      },
    ]);
  });

  it('answers 503 when the upstream cannot be dialled, counted CONNECT once', async () => {
    const h = await harness();
    const closed = createServer();
    const port = await listen(closed);
    await new Promise(resolve => closed.close(resolve));
    await expect(h.connect(`${HOST}:${port}`)).rejects.toMatchObject({ status: 503 });
    await waitFor(() => h.events.length > 0, 'the refusal');
    expect(h.events).toEqual([
      expect.objectContaining({
        kind: 'completed',
        outcome: expect.objectContaining({ refused: 'CONNECT' }) as unknown,
      }),
    ]);
  });

  it('closes a delivered tunnel that a policy change now denies', async () => {
    let deny = false;
    const h = await harness({
      authorize: () =>
        deny ? { allowed: false, reason: 'denied', policy: 'default/late' } : { allowed: true, reason: 'ok' },
    });
    const tunnel = await h.connect(`${HOST}:${h.appPort}`);
    tunnel.on('error', () => undefined);
    tunnel.write('first');
    await waitFor(() => h.connections.size === 1, 'the tracked tunnel');
    deny = true;
    expect(h.connections.reevaluate()).toBe(1);
    await waitFor(() => h.events.some(e => e.kind === 'completed'), 'the closure');
    expect(h.events.find(e => e.kind === 'completed')?.outcome?.error).toBe(
      'connection closed due to policy change (default/late)',
    );
  });

  it('holds the first socket until the identity is known, then serves it', async () => {
    const h = await harness({ identityNow: false });
    const pending = h.connect(`${HOST}:${h.appPort}`);
    let settled = false;
    void pending.then(
      () => (settled = true),
      () => (settled = true),
    );
    await new Promise(resolve => setTimeout(resolve, 50));
    expect(settled).toBe(false);
    h.provideIdentity();
    expect(await exchange(await pending, 'late')).toBe('LATE');
  });

  it('presents a certificate renewed while the first identity was awaited, and every later renewal', async () => {
    const h = await harness({ identityNow: false });
    const issue = async (): Promise<HboneIdentity> => {
      const raw = await issueRawCert(ca, SERVER_ID);
      return { id: SERVER_ID, certChain: raw.certChain, privateKey: raw.privateKeyPem, roots: raw.roots };
    };
    const pending = h.connect(`${HOST}:${h.appPort}`);
    // The server is being made: it asked for the identity and waits.
    await new Promise(resolve => setTimeout(resolve, 50));
    const renewed = await issue();
    h.renew(renewed);
    // The provider answers with the certificate it had when it was asked.
    h.provideIdentity();
    expect(await exchange(await pending, 'first')).toBe('FIRST');
    expect(await presentedLeaf(h.hbonePort)).toBe(leafOf(renewed));
    const next = await issue();
    h.renew(next);
    expect(await presentedLeaf(h.hbonePort)).toBe(leafOf(next));
  });

  it('refuses sockets that arrive once it is closed', async () => {
    const h = await harness({ identityNow: false });
    const drained = h.connections.drain({ deadline: new Promise(() => undefined), reason: 'x' });
    await h.inbound.close();
    await drained;
    const raw = netConnect({ host: HOST, port: h.hbonePort });
    raw.on('error', () => undefined);
    await new Promise(resolve => raw.once('close', resolve));
    expect(h.events).toEqual([{ kind: 'failed', error: 'the proxy is draining' }]);
  });
});
