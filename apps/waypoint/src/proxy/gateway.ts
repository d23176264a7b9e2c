/**
 * Router mode (an ingress gateway): the listener manager. Every LDS listener with an
 * `address.socket_address` is a plain TCP port on the pod (not HBONE). Per connection:
 *
 *   TLS ClientHello? (first byte 0x16, only peeked when the listener has TLS chains)
 *     → TLS: the ClientHello is read without consuming it (`client-hello.ts`) and its SNI picks
 *       the chain (`selectGatewayChain`):
 *       - a passthrough chain (`transport_protocol: tls`, no transport socket): the bytes read
 *         and the rest of the stream are relayed, still encrypted, to the chain's cluster;
 *       - a terminating chain: TLS ends here with that chain's secure context (made once per
 *         certificate set), ALPN `h2`/`http/1.1`; with a client CA (MUTUAL) the client must
 *         present a certificate that chains to it, else the connection is closed;
 *       - no chain for the SNI: the handshake fails.
 *     → plaintext: the chain without TLS.
 *   HTTP chain → the waypoint's HTTP data path (`HttpProxy.serveTunnel`: HTTP/1.1 or h2 by the
 *   preface) with the chain fixed for the connection's life; TCP chain → relayed to an endpoint.
 *
 * Listener updates keep the bound socket when the address is unchanged (new connections see the
 * new config); a new address is bound before the old one closes. Removing a listener stops
 * accepting; its open connections are served until they end. A bind error rejects (NACKs) that
 * listener only, naming the address and the cause; its last good version stays.
 */
import { createServer as createNetServer } from 'node:net';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import { TLSSocket, createSecureContext } from 'node:tls';
import type { SecureContext } from 'node:tls';
import { errorMessage } from '@ambient-mesh/errors';
import type { Logger } from '@ambient-mesh/runtime';
import type { Rejection } from '@ambient-mesh/xds';
import type {
  DownstreamTls,
  FilterChain,
  ListenerConfig,
  SocketAddress,
  WaypointConfig,
} from '../config/types.ts';
import { clusterEndpoints } from './cluster-endpoints.ts';
import type { DnsClusters } from './dns-clusters.ts';
import type { HttpProxy } from './http-proxy.ts';
import type { GatewaySource } from './traffic-labels.ts';
import { hash32 } from './balancer.ts';
import { peekClientHello } from './client-hello.ts';
import { isPassthrough, pickTcpCluster, selectGatewayChain } from './route.ts';
import { tcpConnectionMetrics } from './tcp-stats.ts';
import type { TcpConnectionInfo } from './tcp-stats.ts';
import { tunnelTo } from './upstream.ts';
import type { StatsConfig } from '../config/types.ts';
import type { WaypointMetrics } from '../metrics.ts';
import type { UpstreamOptions } from './upstream.ts';

/**
 * Starts `server` listening on `address` (resolves once it listens, rejects with the bind
 * error). The default is `server.listen` in the process's network namespace.
 */
export type ListenerSocketFactory = (server: NetServer, address: SocketAddress) => Promise<void>;

export const listenHere: ListenerSocketFactory = (server, address) =>
  new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: address.host, port: address.port, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });

export interface GatewayOptions {
  readonly http: HttpProxy;
  /** How a listener's port is bound (default {@link listenHere}). */
  readonly listen?: ListenerSocketFactory;
  /** The current configuration (clusters and endpoints of TCP chains). */
  readonly snapshot: () => WaypointConfig;
  readonly upstream: UpstreamOptions;
  readonly source: GatewaySource;
  /** Where TCP chains' connections are counted (`istio_tcp_*`, `reporter="source"`). */
  readonly metrics: WaypointMetrics;
  readonly logger: Logger;
  readonly dns?: DnsClusters;
}

/** The outcome of applying one LDS response: the listeners now in force, and the rejected ones. */
export interface ListenerApplyResult {
  readonly applied: readonly ListenerConfig[];
  readonly rejected: readonly Rejection[];
}

interface BoundListener {
  config: ListenerConfig;
  readonly server: NetServer;
  readonly address: AddressInfo;
  /** Secure context per TLS chain (by chain object) of `config`. */
  contexts: ReadonlyMap<FilterChain, SecureContext>;
}

/** Default ALPN of a TLS chain that lists none: what istiod's gateways offer. */
const DEFAULT_ALPN = ['h2', 'http/1.1'];
/** How long a connection may take to send its first byte (TLS detection) or finish its handshake. */
const HANDSHAKE_TIMEOUT_MS = 15_000;
/** A secure context without certificate: OpenSSL fails the handshake (no SNI, no default chain). */
let refusing: SecureContext | undefined;

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Why a port could not be bound, in words that say what to check. */
export function bindFailure(address: string, err: unknown): string {
  // Node's `code`, or the errno name of a bind made elsewhere (`errnoCode`, e.g. in another netns).
  const e = err as { code?: unknown; errnoCode?: unknown };
  const code = typeof e.errnoCode === 'string' ? e.errnoCode : e.code;
  if (code === 'EADDRINUSE') return `cannot bind ${address}: the address is already in use (EADDRINUSE)`;
  if (code === 'EACCES')
    return `cannot bind ${address}: permission denied (EACCES); ports below 1024 need the pod sysctl net.ipv4.ip_unprivileged_port_start=0 or NET_BIND_SERVICE`;
  if (code === 'EADDRNOTAVAIL')
    return `cannot bind ${address}: the address is not on this pod (EADDRNOTAVAIL)`;
  return `cannot bind ${address}: ${errorMessage(err)}`;
}

function tlsKey(tls: DownstreamTls): string {
  return (
    tls.certificates.map(c => `${c.certificateChain}\u0000${c.privateKey}`).join('\u0001') +
    `\u0002${tls.clientCa ?? ''}`
  );
}

/**
 * Whether a terminated connection's client certificate verified against the chain's CA
 * (OpenSSL's verify result, as Node's own TLS server reads it). Fails closed when it cannot tell.
 */
function clientVerified(tls: TLSSocket): boolean {
  const handle = (tls as unknown as { _handle?: { verifyError?: () => unknown } })._handle;
  if (typeof handle?.verifyError !== 'function') return false;
  // Without a peer certificate Node answers an empty object.
  return handle.verifyError() == null && Object.keys(tls.getPeerCertificate()).length > 0;
}

export class GatewayListeners {
  readonly #o: GatewayOptions;
  readonly #log: Logger;
  readonly #listeners = new Map<string, BoundListener>();
  /** Secure contexts by certificate set, shared by every chain presenting it. */
  #contexts = new Map<string, SecureContext>();
  readonly #sockets = new Set<Socket>();
  #closed = false;

  constructor(options: GatewayOptions) {
    this.#o = options;
    this.#log = options.logger;
  }

  /** The bound address of each listener. */
  addresses(): ReadonlyMap<string, AddressInfo> {
    return new Map([...this.#listeners].map(([name, l]) => [name, l.address]));
  }

  /** Open downstream connections (TCP), across listeners. */
  get connections(): number {
    return this.#sockets.size;
  }

  /**
   * Applies an LDS response: binds new addresses, keeps or moves existing ones, closes removed
   * ones. Listeners without a socket address are applied as they are. Resolves once every bind
   * has succeeded or failed.
   */
  async apply(accepted: readonly ListenerConfig[], removed: readonly string[]): Promise<ListenerApplyResult> {
    const applied: ListenerConfig[] = [];
    const rejected: Rejection[] = [];
    for (const name of removed) {
      const l = this.#listeners.get(name);
      if (l === undefined) continue;
      this.#listeners.delete(name);
      l.server.close();
      this.#log.info(
        { listener: name },
        'listener removed: no new connections; open ones are served until they end',
      );
    }
    const contexts = new Map<string, SecureContext>();
    for (const config of accepted) {
      if (config.address === undefined || this.#closed) {
        applied.push(config);
        continue;
      }
      const made = this.#secureContexts(config, contexts);
      if ('problem' in made) {
        rejected.push({ name: config.name, reason: made.problem });
        continue;
      }
      const address = hostPort(config.address.host, config.address.port);
      const current = this.#listeners.get(config.name);
      const was = current?.config.address;
      // The same address (port 0: any port, the one bound) keeps its socket.
      if (
        current !== undefined &&
        was !== undefined &&
        was.host === config.address.host &&
        (config.address.port === 0 ||
          config.address.port === was.port ||
          config.address.port === current.address.port)
      ) {
        current.config = config;
        current.contexts = made.contexts;
        applied.push(config);
        continue;
      }
      try {
        const bound = await this.#bind(config, made.contexts);
        if (current !== undefined) current.server.close();
        this.#listeners.set(config.name, bound);
        applied.push(config);
        this.#log.info(
          { listener: config.name, address: hostPort(bound.address.address, bound.address.port) },
          'listener bound',
        );
      } catch (err) {
        const reason = bindFailure(address, err);
        this.#log.warn({ listener: config.name, address, err: errorMessage(err) }, 'listener rejected');
        rejected.push({ name: config.name, reason });
      }
    }
    // Contexts of certificates no listener presents any more are dropped.
    const inUse = new Set<SecureContext>();
    for (const l of this.#listeners.values()) for (const c of l.contexts.values()) inUse.add(c);
    this.#contexts = new Map([...this.#contexts, ...contexts].filter(([, c]) => inUse.has(c)));
    return { applied, rejected };
  }

  /** One secure context per TLS chain, made once per certificate set (reused across updates). */
  #secureContexts(
    config: ListenerConfig,
    fresh: Map<string, SecureContext>,
  ): { contexts: Map<FilterChain, SecureContext> } | { problem: string } {
    const contexts = new Map<FilterChain, SecureContext>();
    const chains = [...config.chains, ...(config.defaultChain === undefined ? [] : [config.defaultChain])];
    for (const chain of chains) {
      if (chain.tls === undefined) continue;
      const key = tlsKey(chain.tls);
      let context = this.#contexts.get(key) ?? fresh.get(key);
      if (context === undefined) {
        try {
          context = createSecureContext({
            cert: chain.tls.certificates.map(c => c.certificateChain),
            key: chain.tls.certificates.map(c => ({ pem: c.privateKey })),
            ...(chain.tls.clientCa === undefined ? {} : { ca: chain.tls.clientCa }),
          });
        } catch (err) {
          return {
            problem: `filter chain ${JSON.stringify(chain.name)}: its certificate or key is not valid PEM or they do not match: ${errorMessage(err)}`,
          };
        }
        fresh.set(key, context);
      }
      contexts.set(chain, context);
    }
    return { contexts };
  }

  async #bind(
    config: ListenerConfig,
    contexts: ReadonlyMap<FilterChain, SecureContext>,
  ): Promise<BoundListener> {
    const server = createNetServer({ pauseOnConnect: true });
    const address = config.address ?? { host: '0.0.0.0', port: 0 };
    await (this.#o.listen ?? listenHere)(server, address);
    const bound: BoundListener = {
      config,
      server,
      address: server.address() as AddressInfo,
      contexts,
    };
    server.on('error', err => {
      this.#log.warn({ listener: bound.config.name, err: errorMessage(err) }, 'listener error');
    });
    server.on('connection', (socket: Socket) => {
      this.#accept(bound, socket);
    });
    return bound;
  }

  #accept(listener: BoundListener, socket: Socket): void {
    // The configuration and contexts in force when the connection arrived serve it for its life.
    const config = listener.config;
    const contexts = listener.contexts;
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
    socket.on('error', err => {
      this.#log.debug({ listener: config.name, err: errorMessage(err) }, 'downstream connection error');
    });
    socket.setNoDelay(true);
    const port = socket.localPort ?? listener.address.port;
    const hasTls =
      contexts.size > 0 ||
      config.chains.some(isPassthrough) ||
      (config.defaultChain !== undefined && isPassthrough(config.defaultChain));
    if (!hasTls) {
      socket.resume();
      this.#plain(config, socket, port);
      return;
    }
    socket.setTimeout(HANDSHAKE_TIMEOUT_MS, () => socket.destroy());
    // Bytes are read until the first one says plaintext, or the whole ClientHello is in.
    const read: Buffer[] = [];
    const onData = (chunk: Buffer): void => {
      read.push(chunk);
      const bytes = read.length === 1 ? chunk : Buffer.concat(read);
      const hello = bytes[0] === 0x16 ? peekClientHello(bytes) : undefined;
      if (hello?.kind === 'incomplete') return;
      socket.off('data', onData);
      socket.pause();
      socket.unshift(bytes);
      if (hello === undefined) {
        socket.setTimeout(0);
        this.#plain(config, socket, port);
        socket.resume();
        return;
      }
      if (hello.kind === 'invalid')
        this.#log.debug({ listener: config.name, reason: hello.reason }, 'unreadable TLS ClientHello');
      this.#tls(config, contexts, socket, port, hello.kind === 'hello' ? hello.sni : undefined);
    };
    socket.on('data', onData);
    socket.resume();
  }

  #plain(config: ListenerConfig, socket: Socket, port: number): void {
    const chain = selectGatewayChain(config, { tls: false, sni: undefined, port });
    if (chain.kind === 'no-chain') {
      this.#log.debug({ listener: config.name, reason: chain.reason }, 'connection refused');
      socket.destroy();
      return;
    }
    this.#dispatch(config, chain.chain, socket, socket, 'http');
  }

  #tls(
    config: ListenerConfig,
    contexts: ReadonlyMap<FilterChain, SecureContext>,
    socket: Socket,
    port: number,
    sni: string | undefined,
  ): void {
    const result = selectGatewayChain(config, { tls: true, sni, port });
    const chain = result.kind === 'chain' ? result.chain : undefined;
    if (chain !== undefined && isPassthrough(chain)) {
      socket.setTimeout(0);
      this.#dispatch(config, chain, socket, socket, 'https');
      return;
    }
    const context = chain === undefined ? undefined : contexts.get(chain);
    if (context === undefined)
      this.#log.debug({ listener: config.name, sni }, 'TLS handshake refused: no filter chain for the SNI');
    const mutual = chain?.tls?.clientCa !== undefined;
    refusing ??= createSecureContext({});
    const tls = new TLSSocket(socket, {
      isServer: true,
      ALPNProtocols: [...(chain?.tls?.alpn.length ? chain.tls.alpn : DEFAULT_ALPN)],
      // No chain for the SNI: a context without certificate, so the handshake fails.
      secureContext: context ?? refusing,
      // MUTUAL: a client without certificate fails the handshake; one whose certificate does
      // not chain to the CA is closed once it completes (`clientVerified`).
      requestCert: mutual,
      rejectUnauthorized: mutual,
    });
    tls.on('error', err => {
      this.#log.debug({ listener: config.name, err: errorMessage(err) }, 'TLS connection error');
      tls.destroy();
      socket.destroy();
    });
    tls.once('secure', () => {
      socket.setTimeout(0);
      if (chain === undefined || context === undefined) {
        tls.destroy();
        return;
      }
      if (mutual && !clientVerified(tls)) {
        this.#log.debug(
          { listener: config.name, sni, chain: chain.name },
          'TLS connection refused: the client certificate does not chain to the listener CA',
        );
        tls.destroy();
        socket.destroy();
        return;
      }
      this.#dispatch(config, chain, tls, socket, 'https');
    });
  }

  #dispatch(
    config: ListenerConfig,
    chain: FilterChain,
    stream: Socket | TLSSocket,
    socket: Socket,
    scheme: 'http' | 'https',
  ): void {
    const context = {
      peerIdentity: '',
      destinationIp: socket.localAddress ?? '',
      destinationPort: socket.localPort ?? 0,
      remoteAddress: socket.remoteAddress ?? '',
      baggage: {},
      edge: { listener: config.name, chain, scheme, source: this.#o.source },
    };
    const action = chain.action;
    if (action.kind === 'http') {
      this.#o.http.serveTunnel(stream, context);
      return;
    }
    stream.pause();
    void this.#relay(pickTcpCluster(action, Math.random()), action.stats, stream, context).catch(
      (err: unknown) => {
        this.#log.debug(
          { listener: config.name, cluster: action.cluster, err: errorMessage(err) },
          'TCP relay failed',
        );
        stream.destroy();
      },
    );
  }

  /** A TCP chain: the connection relayed to an endpoint of the cluster (HBONE, or plain TCP outside the mesh). */
  async #relay(
    clusterName: string,
    stats: StatsConfig | undefined,
    stream: Socket | TLSSocket,
    ctx: {
      readonly destinationIp: string;
      readonly destinationPort: number;
      readonly remoteAddress: string;
    },
  ): Promise<void> {
    const config = this.#o.snapshot();
    const cluster = config.clusters.get(clusterName);
    const endpoints =
      cluster === undefined
        ? []
        : await clusterEndpoints(cluster, config, this.#o.dns, {
            ip: ctx.destinationIp,
            port: ctx.destinationPort,
          });
    // The cluster's LB policy spreads connections over its endpoints (tcp_proxy's, as in Envoy).
    const endpoint =
      cluster === undefined
        ? undefined
        : this.#o.http.balancer(clusterName).pick(cluster, endpoints, {
            hash: hash32(ctx.remoteAddress),
            exclude: new Set(),
            random: Math.random,
          });
    // Reported as the gateway's HTTP requests are: `reporter="source"`, itself the source.
    const count = (flags: TcpConnectionInfo['flags']) =>
      tcpConnectionMetrics(
        this.#o.metrics,
        { source: { kind: 'edge', gateway: this.#o.source }, cluster, endpoint, flags },
        { stats, remoteAddress: ctx.remoteAddress, destinationPort: ctx.destinationPort },
      );
    if (endpoint === undefined) {
      count(cluster === undefined ? 'NC' : 'UH');
      throw new Error(`no endpoint for cluster ${clusterName}`);
    }
    let upstream: Awaited<ReturnType<typeof tunnelTo>>;
    try {
      upstream = await tunnelTo(this.#o.upstream, endpoint);
    } catch (err) {
      count('UF');
      throw err;
    }
    const conn = count('-');
    if (stream.destroyed) {
      // The client went away while the upstream connection was being made.
      conn.closed();
      upstream.destroy();
      return;
    }
    stream.pipe(upstream).pipe(stream);
    // Bytes as they flow: received from the client, sent to it.
    stream.on('data', (chunk: Buffer) => {
      conn.received(chunk.length);
    });
    upstream.on('data', (chunk: Buffer) => {
      conn.sent(chunk.length);
    });
    stream.once('close', () => {
      conn.closed();
      upstream.destroy();
    });
    upstream.once('close', () => stream.destroy());
    upstream.on('error', () => stream.destroy());
    stream.resume();
  }

  /** Stops accepting on every listener (drain); open connections keep being served. */
  stopAccepting(): void {
    this.#closed = true;
    // `close` stops listening at once; its callback would wait for the open connections.
    for (const l of this.#listeners.values()) l.server.close();
    this.#listeners.clear();
  }

  /** Ends every open downstream connection (after the drain). */
  destroy(): void {
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
  }
}
