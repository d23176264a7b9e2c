// Direct tier: the control-plane channel and per-call metadata, on loopback and temp files.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
});
