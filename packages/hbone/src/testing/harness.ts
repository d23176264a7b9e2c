/**
 * An HBONE server on loopback with a fixed test PKI, for tests over real sockets. The default hook
 * accepts every CONNECT and dials its authority (tests only use 127.0.0.1 authorities).
 */
import { createServer } from 'node:net';
import type { AddressInfo, Server } from 'node:net';
import { HboneServer } from '../connect-server.ts';
import type { ConnectHook, ConnectRequest } from '../connect-server.ts';
import { createCounters } from '../counters.ts';
import type { HboneIdentity } from '../identity.ts';
import { connectUpstream } from '../upstream.ts';
import { createTestPki } from './certs.ts';
import type { TestPki } from './certs.ts';

export interface TestServer {
  readonly pki: TestPki;
  readonly server: HboneServer;
  readonly listener: Server;
  readonly port: number;
  readonly nextHop: string;
  readonly serverIdentity: HboneIdentity & { readonly id: string };
  readonly clientIdentity: HboneIdentity & { readonly id: string };
  readonly requests: ConnectRequest[];
  readonly errors: Error[];
  close(): Promise<void>;
}

export const dialAuthority: ConnectHook = request =>
  request.authority.kind === 'ip'
    ? {
        status: 200,
        connect: signal =>
          connectUpstream({
            host: (request.authority as { ip: string }).ip,
            port: request.authority.port,
            signal,
            timeoutMs: 5000,
          }),
      }
    : { status: 400 };

export interface TestServerOptions {
  readonly hook?: ConnectHook;
  readonly pki?: TestPki;
  readonly serverIdentity?: HboneIdentity & { readonly id: string };
  readonly keepaliveIntervalMs?: number;
  readonly keepaliveTimeoutMs?: number;
  readonly idleSessionTimeoutMs?: number;
}

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const pki = options.pki ?? (await createTestPki());
  const serverIdentity = options.serverIdentity ?? (await pki.identity('server', { namespace: 'backend' }));
  const clientIdentity = await pki.identity('client', { namespace: 'frontend' });
  const listener = createServer();
  await new Promise<void>(resolve => listener.listen(0, '127.0.0.1', resolve));
  const requests: ConnectRequest[] = [];
  const errors: Error[] = [];
  const hook = options.hook ?? dialAuthority;
  const server = new HboneServer({
    identity: serverIdentity,
    listener,
    counters: createCounters(),
    onConnect: request => {
      requests.push(request);
      return hook(request);
    },
    onError: err => errors.push(err),
    ...(options.keepaliveIntervalMs === undefined
      ? {}
      : { keepaliveIntervalMs: options.keepaliveIntervalMs }),
    ...(options.keepaliveTimeoutMs === undefined ? {} : { keepaliveTimeoutMs: options.keepaliveTimeoutMs }),
    ...(options.idleSessionTimeoutMs === undefined
      ? {}
      : { idleSessionTimeoutMs: options.idleSessionTimeoutMs }),
  });
  const port = (listener.address() as AddressInfo).port;
  return {
    pki,
    server,
    listener,
    port,
    nextHop: `127.0.0.1:${port}`,
    serverIdentity,
    clientIdentity,
    requests,
    errors,
    close: async () => {
      server.destroy();
      await new Promise<void>(resolve =>
        listener.close(() => {
          resolve();
        }),
      );
    },
  };
}
