/**
 * A loopback mesh for waypoint tests: a test CA, an ADS server serving Envoy resources (the
 * `@ambient-mesh/xds` server over grpc-js), HBONE echo backends, and an HBONE client that sends
 * HTTP/1.1 requests through a tunnel (undici over the tunnel stream).
 */
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect as netConnect, createServer as createNetServer } from 'node:net';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import { duplexPair } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { Client as UndiciClient } from 'undici';
import { createHboneClient, createHboneServer } from '@ambient-mesh/hbone';
import type { HboneClient, HboneIdentity, HboneServer } from '@ambient-mesh/hbone';
import { createTestCa, issueRawCert } from '@ambient-mesh/spiffe-certs/testing';
import { SpiffeId } from '@ambient-mesh/spiffe-certs';
import type { CertificateAuthority } from '@ambient-mesh/spiffe-certs';
import { AddressCodec, IstioCertificateService } from '@ambient-mesh/xds-types';
import type { ca } from '@ambient-mesh/xds-types';
import {
  AdsServer,
  MemoryResourceSource,
  ResourceTypeRegistry,
  deltaStreamFactory,
  resourceType,
} from '@ambient-mesh/xds';
import type { DeltaStreamFactory, ResourceType } from '@ambient-mesh/xds';
import { TypeUrl } from '@ambient-mesh/mesh-api';
import { WAYPOINT_TYPES, encodeEnvoy, decodeEnvoy } from '../xds/envoy-protos.ts';
import type { ProtoObject } from '../xds/envoy-protos.ts';

export const TRUST_DOMAIN = 'cluster.local';

export interface TestPki {
  readonly ca: CertificateAuthority;
  identity(namespace: string, sa: string): Promise<HboneIdentity & { readonly id: string }>;
}

export async function createTestPki(): Promise<TestPki> {
  const ca = await createTestCa({ trustDomain: TRUST_DOMAIN });
  return {
    ca,
    async identity(namespace, sa) {
      const id = `spiffe://${TRUST_DOMAIN}/ns/${namespace}/sa/${sa}`;
      const creds = await issueRawCert(ca, id);
      return { id, certChain: creds.certChain, privateKey: creds.privateKeyPem, roots: creds.roots };
    },
  };
}

/** An ADS server that serves the four Envoy types from a `MemoryResourceSource`. */
export class TestXdsServer {
  readonly source = new MemoryResourceSource();
  readonly ads: AdsServer;
  readonly #grpc = new grpc.Server();
  #client: grpc.Client | undefined;
  address = '';

  constructor() {
    const types: ResourceType<ProtoObject>[] = WAYPOINT_TYPES.map(t => ({
      typeUrl: t.typeUrl,
      encode: (value: ProtoObject) => encodeEnvoy(t.typeName, value),
      decode: (bytes: Uint8Array) => decodeEnvoy(t.typeName, bytes),
    }));
    // WDS, as istiod serves it to waypoints on the same stream (`workload.AddressInit` values).
    types.push(resourceType(TypeUrl.address, AddressCodec) as unknown as ResourceType<ProtoObject>);
    this.ads = new AdsServer({ registry: new ResourceTypeRegistry(types), source: this.source });
    this.ads.register(this.#grpc);
  }

  async start(): Promise<void> {
    const port = await new Promise<number>((resolve, reject) => {
      this.#grpc.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => {
        if (err) reject(err);
        else resolve(p);
      });
    });
    this.address = `127.0.0.1:${port}`;
  }

  /** A delta stream factory for the waypoint under test. */
  connect(): DeltaStreamFactory {
    this.#client ??= new grpc.Client(this.address, grpc.credentials.createInsecure());
    return deltaStreamFactory(this.#client, () => new grpc.Metadata());
  }

  set(typeUrl: string, name: string, value: ProtoObject): void {
    this.ads.push(this.source.set(typeUrl, name, value));
  }

  /** The last NACK message of `typeUrl` on the first connection, if any. */
  lastNack(typeUrl: string): string | undefined {
    return this.ads.syncStatus()[0]?.types.find(t => t.typeUrl === typeUrl)?.lastNack;
  }

  syncState(typeUrl: string): string | undefined {
    return this.ads.syncStatus()[0]?.types.find(t => t.typeUrl === typeUrl)?.state;
  }

  close(): void {
    this.ads.closeAll();
    this.#client?.close();
    this.#grpc.forceShutdown();
  }
}

export { TypeUrl };

export type EchoHandler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

/** An HBONE server whose tunnels are served by an HTTP handler (the echo backend). */
export class HboneBackend {
  readonly name: string;
  readonly identity: HboneIdentity & { readonly id: string };
  readonly requests: {
    method: string;
    url: string;
    headers: IncomingMessage['headers'];
    peer: string;
    authority: string;
  }[] = [];
  readonly #listener = createNetServer();
  readonly #tunnels = new WeakMap<object, { peer: string; authority: string }>();
  readonly #http;
  #server: HboneServer | undefined;
  port = 0;

  constructor(name: string, identity: HboneIdentity & { readonly id: string }, handler?: EchoHandler) {
    this.name = name;
    this.identity = identity;
    this.#http = createHttpServer((req, res) => {
      const tunnel = this.#tunnels.get(req.socket);
      this.requests.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        peer: tunnel?.peer ?? '',
        authority: tunnel?.authority ?? '',
      });
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        if (handler !== undefined) {
          handler(req, res, body);
          return;
        }
        const text = JSON.stringify({
          backend: name,
          method: req.method,
          url: req.url,
          headers: req.headers,
          body,
        });
        res
          .writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
          .end(text);
      });
    });
  }

  async start(): Promise<void> {
    await new Promise<void>(resolve => this.#listener.listen(0, '127.0.0.1', resolve));
    this.port = (this.#listener.address() as AddressInfo).port;
    this.#server = createHboneServer({
      identity: this.identity,
      listener: this.#listener,
      onConnect: request => ({
        status: 200,
        connect: () => {
          const [outer, inner] = duplexPair();
          this.#tunnels.set(inner, { peer: request.peerIdentity, authority: request.rawAuthority });
          this.#http.emit('connection', inner);
          return Promise.resolve(outer);
        },
      }),
    });
  }

  async close(): Promise<void> {
    this.#http.closeAllConnections();
    await this.#server?.close();
    await new Promise<void>(resolve =>
      this.#listener.close(() => {
        resolve();
      }),
    );
  }
}

/**
 * An HBONE server in front of a plain TCP port on loopback, as ztunnel's inbound is in front of
 * a pod: each tunnel is a TCP connection to `127.0.0.1:<targetPort>` (a gRPC or HTTP/2 server).
 */
export class HboneTcpBackend {
  readonly identity: HboneIdentity & { readonly id: string };
  readonly #targetPort: number;
  readonly #listener = createNetServer();
  readonly #sockets = new Set<Socket>();
  #server: HboneServer | undefined;
  /** Tunnels accepted so far. */
  tunnels = 0;
  port = 0;

  constructor(identity: HboneIdentity & { readonly id: string }, targetPort: number) {
    this.identity = identity;
    this.#targetPort = targetPort;
  }

  async start(): Promise<void> {
    await new Promise<void>(resolve => this.#listener.listen(0, '127.0.0.1', resolve));
    this.port = (this.#listener.address() as AddressInfo).port;
    this.#server = createHboneServer({
      identity: this.identity,
      listener: this.#listener,
      onConnect: () => ({
        status: 200,
        connect: () =>
          new Promise((resolve, reject) => {
            const socket = netConnect(this.#targetPort, '127.0.0.1');
            socket.once('connect', () => {
              this.tunnels++;
              this.#sockets.add(socket);
              socket.once('close', () => this.#sockets.delete(socket));
              resolve(socket);
            });
            socket.once('error', reject);
          }),
      }),
    });
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await this.#server?.close();
    await new Promise<void>(resolve =>
      this.#listener.close(() => {
        resolve();
      }),
    );
  }
}

/**
 * A local TCP port whose connections are carried to the waypoint in HBONE tunnels (what
 * ztunnel's outbound does for a client pod), so any client (grpc-js) can talk through it.
 */
export class HboneForwarder {
  readonly hbone: HboneClient = createHboneClient();
  readonly #server: NetServer;
  readonly #sockets = new Set<Socket>();
  port = 0;

  constructor(options: {
    readonly identity: HboneIdentity;
    readonly waypoint: string;
    readonly waypointIdentity: string;
    readonly target: string;
    readonly baggage?: string;
  }) {
    this.#server = createNetServer(socket => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
      socket.pause();
      this.hbone
        .connect({
          target: options.target,
          nextHop: options.waypoint,
          identity: options.identity,
          expectedIdentities: [options.waypointIdentity],
          ...(options.baggage === undefined ? {} : { headers: { baggage: options.baggage } }),
        })
        .then(
          tunnel => {
            socket.pipe(tunnel).pipe(socket);
            socket.once('close', () => tunnel.destroy());
            tunnel.once('close', () => socket.destroy());
            tunnel.on('error', () => socket.destroy());
            socket.on('error', () => tunnel.destroy());
            socket.resume();
          },
          () => socket.destroy(),
        );
    });
  }

  async start(): Promise<void> {
    await new Promise<void>(resolve => this.#server.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>(resolve =>
      this.#server.close(() => {
        resolve();
      }),
    );
    this.hbone.destroy();
  }
}

/** Sends HTTP/1.1 requests to the waypoint through one HBONE tunnel per undici connection. */
export class MeshClient {
  readonly hbone: HboneClient = createHboneClient();
  readonly #undici: UndiciClient;
  readonly #options: {
    readonly identity: HboneIdentity;
    readonly waypoint: string;
    readonly waypointIdentity: string;
    readonly target: string;
  };

  constructor(options: {
    readonly identity: HboneIdentity;
    readonly waypoint: string;
    readonly waypointIdentity: string;
    readonly target: string;
    readonly baggage?: string;
    /** More CONNECT headers (e.g. `forwarded`). */
    readonly headers?: Readonly<Record<string, string>>;
    /** Speak h2c (prior knowledge) inside the tunnel instead of HTTP/1.1. */
    readonly h2?: boolean;
  }) {
    this.#options = options;
    this.#undici = new UndiciClient(`http://${options.target}`, {
      pipelining: 1,
      allowH2: options.h2 === true,
      connect: (_opts, callback) => {
        this.hbone
          .connect({
            target: options.target,
            nextHop: options.waypoint,
            identity: options.identity,
            expectedIdentities: [options.waypointIdentity],
            headers: {
              ...options.headers,
              ...(options.baggage === undefined ? {} : { baggage: options.baggage }),
            },
          })
          .then(
            stream => {
              // undici picks HTTP/2 by the socket's ALPN; a tunnel has none, so say it.
              if (options.h2 === true) Object.assign(stream, { alpnProtocol: 'h2' });
              callback(null, stream as never);
            },
            (err: unknown) => {
              callback(err as Error, null);
            },
          );
      },
    });
  }

  async get(
    path: string,
    headers: Record<string, string> = {},
  ): Promise<{
    status: number;
    headers: Record<string, string | string[] | undefined>;
    text: string;
    json: () => unknown;
  }> {
    const r = await this.#undici.request({
      path,
      method: 'GET',
      headers: { host: 'reviews.default.svc.cluster.local', ...headers },
    });
    const text = await r.body.text();
    return { status: r.statusCode, headers: r.headers, text, json: () => JSON.parse(text) as unknown };
  }

  /** A request without a body, of any method. */
  async request(
    path: string,
    method: string,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }> {
    const r = await this.#undici.request({
      path,
      method,
      headers: { host: 'reviews.default.svc.cluster.local', ...headers },
    });
    return { status: r.statusCode, headers: r.headers, text: await r.body.text() };
  }

  /** A POST with a text body. */
  async post(
    path: string,
    body: string,
    headers: Record<string, string> = {},
  ): Promise<{
    status: number;
    headers: Record<string, string | string[] | undefined>;
    text: string;
    json: () => unknown;
  }> {
    const r = await this.#undici.request({
      path,
      method: 'POST',
      headers: { host: 'reviews.default.svc.cluster.local', 'content-type': 'text/plain', ...headers },
      body,
    });
    const text = await r.body.text();
    return { status: r.statusCode, headers: r.headers, text, json: () => JSON.parse(text) as unknown };
  }

  /** Writes raw bytes into a fresh tunnel and returns everything read until the waypoint closes it. */
  async raw(bytes: string): Promise<string> {
    const tunnel = await this.hbone.connect({
      target: this.#options.target,
      nextHop: this.#options.waypoint,
      identity: this.#options.identity,
      expectedIdentities: [this.#options.waypointIdentity],
    });
    const chunks: Buffer[] = [];
    tunnel.on('data', (c: Buffer) => chunks.push(c));
    tunnel.write(bytes);
    await new Promise<void>(resolve => {
      tunnel.once('end', resolve);
      tunnel.once('close', resolve);
      tunnel.once('error', () => {
        resolve();
      });
    });
    return Buffer.concat(chunks).toString('latin1');
  }

  async close(): Promise<void> {
    await this.#undici.destroy();
    this.hbone.destroy();
  }
}

/** Waits until `check` holds (bounded). */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise(resolve => setTimeout(resolve, 20));
  }
}

/** The Prometheus text of a waypoint's stats endpoint (`/stats/prometheus`). */
export async function scrapeStats(waypoint: { readonly statsAddress: AddressInfo }): Promise<string> {
  return (await fetch(`http://127.0.0.1:${waypoint.statsAddress.port}/stats/prometheus`)).text();
}

/** The first `istio_requests_total` series of a Prometheus text that contains every fragment. */
export function requestsTotalLine(text: string, ...fragments: readonly string[]): string | undefined {
  return text
    .split('\n')
    .find(l => l.startsWith('istio_requests_total{') && fragments.every(f => l.includes(f)));
}

/** A loopback `IstioCertificateService` server (see {@link startTestCaServer}). */
export interface TestCaServer {
  /** Its address, `http://127.0.0.1:<port>`. */
  readonly address: string;
  /** The bearer token (`authorization` metadata) of each CreateCertificate call, in order. */
  readonly tokens: readonly string[];
  /** How many certificates it has issued. */
  issued(): number;
  close(): void;
}

/**
 * A real `IstioCertificateService/CreateCertificate` server over grpc-js on loopback: `authority`
 * signs each CSR for `issueAs` with the requested lifetime.
 */
export async function startTestCaServer(
  authority: CertificateAuthority,
  issueAs: string,
): Promise<TestCaServer> {
  let issued = 0;
  const tokens: string[] = [];
  const server = new grpc.Server();
  server.addService(IstioCertificateService, {
    CreateCertificate: (
      call: grpc.ServerUnaryCall<ca.IstioCertificateRequest, ca.IstioCertificateResponseInit>,
      callback: grpc.sendUnaryData<ca.IstioCertificateResponseInit>,
    ) => {
      tokens.push(String(call.metadata.get('authorization')[0]));
      authority
        .sign({
          csrPem: call.request.csr,
          identity: SpiffeId.parse(issueAs),
          ttlSeconds: call.request.validityDuration,
        })
        .then(
          result => {
            issued++;
            callback(null, { certChain: [...result.certChain] });
          },
          (err: unknown) => {
            callback({ code: grpc.status.INVALID_ARGUMENT, details: String(err) });
          },
        );
    },
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, bound) => {
      if (err) reject(err);
      else resolve(bound);
    });
  });
  return {
    address: `http://127.0.0.1:${port}`,
    tokens,
    issued: () => issued,
    close: () => {
      server.forceShutdown();
    },
  };
}
