/**
 * Direct tier: ztunnel's channels to istiod come back from a replica that vanished.
 *
 * A loopback "Service address" stands in for istiod's ClusterIP: like conntrack, it sends each new
 * connection to one backend and keeps it there. A black-holed backend accepts and never answers
 * (for grpc-js the same as a SYN that is never acknowledged: the channel stays CONNECTING); a
 * frozen connection stops carrying bytes both ways (the pod's netns disappeared mid-stream).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect as netConnect } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SpiffeId } from '@ambient-mesh/spiffe-certs';
import { createTestCa } from '@ambient-mesh/spiffe-certs/testing';
import { captureLogs } from '@ambient-mesh/runtime/testing';
import { TypeUrl } from '@ambient-mesh/xds-types';
import { build } from '../app.ts';
import { loadConfig } from '../config.ts';
import type { Config } from '../config.ts';
import { CaClient } from '../identity/ca-client.ts';
import { TestDeltaXdsServer } from '../testing/delta-xds-server.ts';
import { TestCaServer } from '../testing/test-ca-server.ts';
import { waitFor } from '../testing/wait.ts';
import { ControlPlaneChannel, DEFAULT_CHANNEL_SETTINGS } from '@ambient-mesh/xds';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

type Route = 'blackhole' | number;

/** A loopback address whose new connections go where `route()` says, and stay there. */
class ServiceAddress {
  readonly held: Socket[] = [];
  readonly #pairs: [Socket, Socket][] = [];
  readonly #server: Server;
  readonly #route: (nth: number) => Route;
  connections = 0;

  constructor(route: (nth: number) => Route) {
    this.#route = route;
    this.#server = createServer(socket => {
      socket.on('error', () => undefined);
      const target = this.#route(this.connections++);
      if (target === 'blackhole') {
        this.held.push(socket);
        return;
      }
      const upstream = netConnect({ host: '127.0.0.1', port: target });
      upstream.on('error', () => socket.destroy());
      socket.on('close', () => upstream.destroy());
      upstream.on('close', () => socket.destroy());
      socket.pipe(upstream).pipe(socket);
      this.#pairs.push([socket, upstream]);
    });
  }

  async start(): Promise<string> {
    await new Promise<void>(resolve => this.#server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${String((this.#server.address() as AddressInfo).port)}`;
  }

  /** Every forwarded connection stops carrying bytes, without a FIN or RST. */
  freeze(): void {
    for (const [a, b] of this.#pairs) {
      a.unpipe(b);
      b.unpipe(a);
      a.pause();
      b.pause();
      this.held.push(a, b);
    }
    this.#pairs.length = 0;
  }

  close(): Promise<void> {
    for (const s of this.held) s.destroy();
    for (const [a, b] of this.#pairs) {
      a.destroy();
      b.destroy();
    }
    return new Promise(resolve =>
      this.#server.close(() => {
        resolve();
      }),
    );
  }
}

function portOf(address: string): number {
  return Number(new URL(address).port);
}

function ztunnelConfig(xdsAddress: string, caAddress: string): Config {
  const dir = mkdtempSync(join(tmpdir(), 'ztunnel-reconnect-'));
  cleanups.push(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const tokenPath = join(dir, 'istio-token');
  writeFileSync(tokenPath, 'node-token');
  const local = { host: '127.0.0.1', port: 0 };
  return {
    ...loadConfig({
      POD_NAME: 'ztunnel-x',
      POD_NAMESPACE: 'istio-system',
      NODE_NAME: 'node-1',
      XDS_ADDRESS: xdsAddress,
      CA_ADDRESS: caAddress,
      TERMINATION_GRACE_PERIOD_SECONDS: '2',
      CONTROL_PLANE_CONNECT_TIMEOUT: '0.3s',
      CONTROL_PLANE_KEEPALIVE_INTERVAL: '0.3s',
      CONTROL_PLANE_KEEPALIVE_TIMEOUT: '0.3s',
    }),
    tokenPath,
    adminAddress: local,
    statsAddress: local,
    readinessAddress: local,
  };
}

function liveXds(): TestDeltaXdsServer {
  const xds = new TestDeltaXdsServer();
  xds.onInitial = () => {
    xds.push({ typeUrl: TypeUrl.ADDRESS, resources: [] });
    xds.push({ typeUrl: TypeUrl.AUTHORIZATION, resources: [] });
  };
  cleanups.push(() => xds.stop());
  return xds;
}

describe('ztunnel reconnects to istiod through a replaced replica (direct tier)', () => {
  it('gives up on a black-holed connection attempt and syncs xDS from a live replica', async () => {
    const xds = liveXds();
    const live = portOf(await xds.start());
    // The first connection lands on the vanished pod; every later one on the live replica.
    const service = new ServiceAddress(nth => (nth === 0 ? 'blackhole' : live));
    const address = await service.start();
    cleanups.push(() => service.close());
    const { logs, records } = captureLogs();
    const bound = await build(ztunnelConfig(address, address), { logs, caFetch: () => never() });
    cleanups.push(() => bound.shutdown());

    await waitFor(() => bound.readiness.ready, 'xDS synced from the live replica', 20_000);
    expect(service.held).toHaveLength(1);
    expect(xds.streams).toBeGreaterThanOrEqual(1);
    expect(records.some(r => String(r.msg).includes('within the connect timeout'))).toBe(true);
  });

  it('notices a stream whose peer went silent (keepalive) and re-opens it on a live replica', async () => {
    const first = liveXds();
    const second = liveXds();
    const ports = [portOf(await first.start()), portOf(await second.start())];
    let replaced = false;
    const service = new ServiceAddress(() => (replaced ? ports[1]! : ports[0]!));
    const address = await service.start();
    cleanups.push(() => service.close());
    const bound = await build(ztunnelConfig(address, address), {
      logs: captureLogs().logs,
      caFetch: () => never(),
    });
    cleanups.push(() => bound.shutdown());
    await waitFor(() => bound.readiness.ready && first.streams === 1, 'first stream', 20_000);

    replaced = true;
    service.freeze();
    await waitFor(
      () => second.streams >= 1 && second.requests.length >= 2,
      'stream on the new replica',
      20_000,
    );
    expect(first.streams).toBe(1);
  });

  it('a CA request after a black-holed connection attempt is served by a live replica', async () => {
    const ca = new TestCaServer(await createTestCa());
    const live = portOf(await ca.start());
    cleanups.push(() => {
      ca.stop();
    });
    const service = new ServiceAddress(nth => (nth === 0 ? 'blackhole' : live));
    const address = await service.start();
    cleanups.push(() => service.close());
    const channel = new ControlPlaneChannel({
      target: { address },
      settings: { ...DEFAULT_CHANNEL_SETTINGS, connectTimeoutMs: 300 },
    });
    cleanups.push(() => {
      channel.close();
    });
    const dir = mkdtempSync(join(tmpdir(), 'ztunnel-reconnect-'));
    cleanups.push(() => {
      rmSync(dir, { recursive: true, force: true });
    });
    writeFileSync(join(dir, 'token'), 'node-token');
    const client = new CaClient({
      client: () => channel.client,
      identity: { tokenPath: join(dir, 'token'), clusterId: 'Kubernetes', headers: {} },
      ttlSeconds: 3600,
      impersonate: true,
      deadlineMs: 20_000,
    });
    const id = SpiffeId.parse('spiffe://cluster.local/ns/default/sa/sa-a');

    // The call queued on the stuck channel fails (UNAVAILABLE) when it is replaced, long before
    // its deadline; the retry, as the certificate manager makes it, reaches the live replica.
    await expect(client.fetch(id)).rejects.toThrow(/closed/i);
    expect(channel.replacements).toBe(1);
    const cert = await client.fetch(id);
    expect(cert.identity.uri).toBe(id.uri);
    expect(service.held).toHaveLength(1);
  });
});

function never<T>(): Promise<T> {
  return new Promise<T>(() => undefined);
}
