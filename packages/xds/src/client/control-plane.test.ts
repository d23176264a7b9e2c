// Direct tier: the control-plane channel and per-call metadata, on loopback and temp files.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { TestAdsServer } from '../testing/test-ads-server.ts';
import {
  ControlPlaneChannel,
  DEFAULT_CHANNEL_SETTINGS,
  callMetadata,
  controlPlaneDeltaStreams,
  createGrpcClient,
} from './control-plane.ts';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function waitUntil(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise(r => setTimeout(r, 5));
  }
}

function scratchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  cleanups.push(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** A self-signed CA in `dir` (`<name>.pem`, `<name>.key`), made with the openssl CLI. */
function opensslCa(dir: string, name: string): string {
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      join(dir, `${name}.key`),
      '-out',
      join(dir, `${name}.pem`),
      '-subj',
      `/CN=${name}`,
      '-days',
      '1',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign',
    ],
    { stdio: 'pipe' },
  );
  return readFileSync(join(dir, `${name}.pem`), 'utf8');
}

/** A serving certificate for DNS name `host` signed by CA `ca` of `dir`: its chain and key PEM. */
function opensslServing(dir: string, ca: string, host: string): { cert: Buffer; key: Buffer } {
  const ext = join(dir, 'ext.cnf');
  writeFileSync(ext, `subjectAltName=DNS:${host}\n`);
  execFileSync(
    'openssl',
    [
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      join(dir, 'serving.key'),
      '-out',
      join(dir, 'serving.csr'),
      '-subj',
      `/CN=${host}`,
    ],
    { stdio: 'pipe' },
  );
  execFileSync(
    'openssl',
    [
      'x509',
      '-req',
      '-in',
      join(dir, 'serving.csr'),
      '-CA',
      join(dir, `${ca}.pem`),
      '-CAkey',
      join(dir, `${ca}.key`),
      '-set_serial',
      '2',
      '-days',
      '1',
      '-extfile',
      ext,
      '-out',
      join(dir, 'serving.pem'),
    ],
    { stdio: 'pipe' },
  );
  return { cert: readFileSync(join(dir, 'serving.pem')), key: readFileSync(join(dir, 'serving.key')) };
}

function tokenFile(token: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'xds-token-'));
  cleanups.push(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const path = join(dir, 'istio-token');
  writeFileSync(path, token);
  return path;
}

describe('callMetadata', () => {
  it('sends the bearer token re-read per call, clusterid and the extra headers', () => {
    const tokenPath = tokenFile('first\n');
    const identity = { tokenPath, clusterId: 'Kubernetes', headers: { 'x-extra': 'yes' } };
    const first = callMetadata(identity);
    expect(first.get('authorization')).toEqual(['Bearer first']);
    expect(first.get('clusterid')).toEqual(['Kubernetes']);
    expect(first.get('x-extra')).toEqual(['yes']);
    writeFileSync(tokenPath, 'rotated');
    expect(callMetadata(identity).get('authorization')).toEqual(['Bearer rotated']);
    expect(callMetadata({ ...identity, tokenPath: undefined }).get('authorization')).toEqual([]);
  });

  it('fails with XDS_TOKEN_UNREADABLE, or the error tokenError makes, when the token is missing', () => {
    const identity = { tokenPath: '/nonexistent/istio-token', clusterId: 'Kubernetes', headers: {} };
    expect(() => callMetadata(identity)).toThrow(
      expect.objectContaining({
        code: 'XDS_TOKEN_UNREADABLE',
        message: expect.stringContaining('/nonexistent/istio-token') as unknown,
      }),
    );
    const tokenError = (path: string, cause: unknown): Error =>
      Object.assign(new Error(`app: no token at ${path}`, { cause }), { code: 'APP_TOKEN_UNREADABLE' });
    expect(() => callMetadata({ ...identity, tokenError })).toThrow(
      expect.objectContaining({ code: 'APP_TOKEN_UNREADABLE' }),
    );
  });
});

describe('controlPlaneDeltaStreams', () => {
  it('opens delta streams carrying the call metadata', async () => {
    const server = new TestAdsServer();
    const hostPort = await server.start();
    cleanups.push(() => server.stop());
    const client = createGrpcClient({ address: `http://${hostPort}` });
    cleanups.push(() => {
      client.close();
    });
    const open = controlPlaneDeltaStreams(client, {
      tokenPath: tokenFile('t0k3n'),
      clusterId: 'east',
      headers: {},
    });
    const stream = open();
    stream.on('error', () => undefined);
    cleanups.push(() => {
      stream.cancel();
    });
    stream.write({ typeUrl: 'type.googleapis.com/istio.workload.Address' });
    await waitUntil('the stream to arrive', () => server.metadata.length > 0);
    expect(server.metadata[0]?.get('authorization')).toEqual(['Bearer t0k3n']);
    expect(server.metadata[0]?.get('clusterid')).toEqual(['east']);
  });
});

describe('ControlPlaneChannel', () => {
  it('replaces a channel stuck connecting, failing its calls UNAVAILABLE so they retry on the new one', async () => {
    // Accepts TCP and never answers: grpc-js stays CONNECTING, as for a SYN never acknowledged.
    const held: Socket[] = [];
    const blackhole = createServer(socket => {
      socket.on('error', () => undefined);
      held.push(socket);
    });
    await new Promise<void>(resolve => blackhole.listen(0, '127.0.0.1', resolve));
    cleanups.push(
      () =>
        new Promise(resolve => {
          for (const s of held) s.destroy();
          blackhole.close(resolve);
        }),
    );
    const reasons: string[] = [];
    const channel = new ControlPlaneChannel({
      target: { address: `http://127.0.0.1:${(blackhole.address() as AddressInfo).port}` },
      settings: { ...DEFAULT_CHANNEL_SETTINGS, connectTimeoutMs: 50 },
      onReplaced: reason => reasons.push(reason),
    });
    cleanups.push(() => {
      channel.close();
    });
    const first = channel.client;
    const stream = controlPlaneDeltaStreams(channel, { tokenPath: undefined, clusterId: 'c', headers: {} })();
    let failure: grpc.ServiceError | undefined;
    stream.on('error', err => {
      failure = err as grpc.ServiceError;
    });
    await waitUntil('the channel to be replaced', () => channel.replacements > 0 && failure !== undefined);
    expect(reasons[0]).toBe('connect-timeout');
    expect(channel.client).not.toBe(first);
    expect(failure?.code).toBe(grpc.status.UNAVAILABLE);
  });

  it('re-reads its roots after a failed attempt and dials again once they changed', async () => {
    const dir = scratchDir('xds-roots-');
    const oldRoot = opensslCa(dir, 'old-root');
    const newRoot = opensslCa(dir, 'new-root');
    // istiod already serves a certificate of the new root; the client's file holds the old one.
    const serving = opensslServing(dir, 'new-root', 'istiod.test');
    const server = new grpc.Server();
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(
        '127.0.0.1:0',
        grpc.ServerCredentials.createSsl(null, [{ cert_chain: serving.cert, private_key: serving.key }]),
        (err, p) => {
          if (err === null) resolve(p);
          else reject(err);
        },
      );
    });
    cleanups.push(() => {
      server.forceShutdown();
    });
    const rootsPath = join(dir, 'root-cert.pem');
    writeFileSync(rootsPath, oldRoot);
    const reasons: string[] = [];
    let reads = 0;
    const channel = new ControlPlaneChannel({
      target: {
        address: `https://127.0.0.1:${String(port)}`,
        rootCaPem: readFileSync(rootsPath),
        rootCaPath: rootsPath,
        altHostname: 'istiod.test',
      },
      settings: { ...DEFAULT_CHANNEL_SETTINGS, initialReconnectBackoffMs: 20, maxReconnectBackoffMs: 50 },
      readRoots: path => {
        reads++;
        return readFileSync(path);
      },
      onReplaced: reason => reasons.push(reason),
    });
    cleanups.push(() => {
      channel.close();
    });
    const state = (): grpc.connectivityState => channel.client.getChannel().getConnectivityState(true);
    // The handshake fails (unknown root); the file is re-read but unchanged: same client.
    const first = channel.client;
    await waitUntil('a failed attempt with the roots re-read', () => {
      state();
      return reads > 0;
    });
    expect(channel.client).toBe(first);
    expect(channel.replacements).toBe(0);
    // The file gets both roots (as istio-ca-root-cert during a migration): a fresh client, READY.
    writeFileSync(rootsPath, newRoot + oldRoot);
    await waitUntil('a client on the new roots, connected', () => state() === grpc.connectivityState.READY);
    expect(reasons).toEqual(['roots-changed']);
    expect(channel.client).not.toBe(first);
  });
});
