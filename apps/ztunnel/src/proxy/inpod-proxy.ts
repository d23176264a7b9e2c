/**
 * The proxy of one enrolled pod (in-pod mode): three listeners created in the pod through its
 * `PodSockets`, bound as soon as ZDS announces the pod. The pod's WDS workload and certificate
 * are resolved lazily (`LocalWorkload`): a connection that arrives before them waits, bounded,
 * and fails with an access-log line if they never come.
 *
 * - 15001 outbound: original destination → `routeOutbound` → HBONE tunnel (pooled per pod) or
 *   plain passthrough.
 * - 15006 inbound plaintext: L4 policy with no peer identity, then delivery to the app with the
 *   client's source IP.
 * - 15008 inbound HBONE (`@ambient-mesh/hbone` server): destination check (authority IP = arrival
 *   IP, else 400), self-call guard (503), policy (401), upstream dial, then 200.
 *
 * Ownership: the pod's `HboneClient` owns outbound tunnels; `#live` tracks every proxied
 * connection for drain, and the inbound ones carry their policy context so a policy change
 * re-evaluates them and closes those no longer allowed.
 */
import { Server } from 'node:net';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { errorMessage } from '@ambient-mesh/errors';
import {
  buildBaggage,
  buildForwarded,
  parseForwardedHost,
  createHboneClient,
  formatSocketAddress,
  HboneConnectRejectedError,
  HboneServer,
  relay,
} from '@ambient-mesh/hbone';
import type { ConnectDecision, ConnectRequest, HboneClient, HboneIdentity } from '@ambient-mesh/hbone';
import type { WorkloadCertificate } from '@ambient-mesh/spiffe-certs';
import type { AccessLog, ConnectionEnds } from '../access-log.ts';
import type { Logger } from '@ambient-mesh/runtime';
import type { ResponseFlags, ZtunnelMetrics } from '../metrics.ts';
import type { CertManager } from '../identity/cert-manager.ts';
import type { ProxyStateReader } from '../state/proxy-state.ts';
import type { Workload } from '../state/types.ts';
import { systemTimers } from '@ambient-mesh/runtime';
import type { TimerHandle, Timers } from '@ambient-mesh/runtime';
import { guessInboundService } from './inbound-service.ts';
import type { LocalWorkload } from './local-workload.ts';
import type { PodSockets } from './pod-sockets.ts';
import { whenConnected } from './pod-sockets.ts';
import { authorizeConnection } from './rbac.ts';
import type { ConnectionContext } from './rbac.ts';
import { PROXY_PORTS, routeOutbound } from './route.ts';
import type { OutboundRoute } from './route.ts';
import { connectionLabels } from './traffic-labels.ts';
import type { ConnectionParties } from './traffic-labels.ts';

export const OUTBOUND_PORT = 15001;
export const INBOUND_PLAINTEXT_PORT = 15006;
export const INBOUND_HBONE_PORT = 15008;
const UPSTREAM_CONNECT_TIMEOUT_MS = 10_000;

export interface InPodProxyOptions {
  /** The pod as ZDS described it; its WDS workload and certificate are awaited per connection. */
  readonly local: LocalWorkload;
  readonly state: ProxyStateReader;
  readonly sockets: PodSockets;
  readonly certificates: CertManager;
  readonly metrics: ZtunnelMetrics;
  readonly accessLog: AccessLog;
  readonly logger: Logger;
  /** Whether inbound delivery keeps the client's source IP (`ENABLE_ORIG_SRC` not false). */
  readonly spoofSource: boolean;
  /** How long `drain()` lets open connections run before closing them. */
  readonly drainTimeoutMs: number;
  readonly timers?: Timers;
}

interface LiveConnection {
  /** Set for inbound connections: re-checked when policy changes. */
  readonly policy: { readonly ctx: ConnectionContext } | undefined;
  close(reason: string): void;
  readonly done: Promise<void>;
}

function hboneIdentity(cert: WorkloadCertificate): HboneIdentity {
  return { id: cert.identity.uri, ...cert.tlsCredentials };
}

function address(socket: Socket, side: 'remote' | 'local'): string {
  const ip = side === 'remote' ? socket.remoteAddress : socket.localAddress;
  const port = side === 'remote' ? socket.remotePort : socket.localPort;
  return ip === undefined || port === undefined ? 'unknown' : formatSocketAddress(ip, port);
}

export class InPodProxy {
  readonly #o: InPodProxyOptions;
  readonly #log: Logger;
  readonly #client: HboneClient;
  readonly #live = new Set<LiveConnection>();
  readonly #listeners: Server[] = [];
  /** Connections waiting for the pod's state; aborted by `drain()`. */
  readonly #waiting = new Set<AbortController>();
  /** Never listens: accepted 15008 sockets are handed to the HBONE server through it. */
  readonly #hboneFeed = new Server();
  readonly #timers: Timers;
  #hbone: HboneServer | undefined;
  #unsubscribe: (() => void) | undefined;
  #onRenewed: ((event: { identity: { uri: string }; certificate: WorkloadCertificate }) => void) | undefined;
  #draining = false;

  private constructor(options: InPodProxyOptions) {
    this.#o = options;
    this.#timers = options.timers ?? systemTimers;
    this.#log = options.logger.child({ wl: `${options.local.info.namespace}/${options.local.info.name}` });
    this.#client = createHboneClient({
      socketFactory: ({ host, port }) => options.sockets.connect({ host, port }),
      onConnectionError: err => {
        this.#log.debug({ error: errorMessage(err) }, 'pooled HBONE connection dropped');
      },
    });
  }

  /**
   * Binds 15001/15006/15008 in the pod without waiting for WDS; on any failure releases what was
   * bound and rejects.
   */
  static async start(options: InPodProxyOptions): Promise<InPodProxy> {
    const proxy = new InPodProxy(options);
    try {
      await proxy.#bind();
    } catch (err) {
      proxy.#closeListeners();
      throw err;
    }
    return proxy;
  }

  get connectionCount(): number {
    return this.#live.size;
  }

  async #bind(): Promise<void> {
    const { sockets, certificates, local } = this.#o;
    const outbound = await sockets.listen(OUTBOUND_PORT, { transparent: false });
    this.#listeners.push(outbound);
    outbound.on('connection', socket => {
      void this.#onOutbound(socket);
    });
    const plaintext = await sockets.listen(INBOUND_PLAINTEXT_PORT, { transparent: true });
    this.#listeners.push(plaintext);
    plaintext.on('connection', socket => {
      void this.#onPlaintext(socket);
    });
    const hboneListener = await sockets.listen(INBOUND_HBONE_PORT, { transparent: true });
    this.#listeners.push(hboneListener);
    hboneListener.on('connection', socket => {
      void this.#onHboneSocket(socket);
    });
    this.#onRenewed = event => {
      if (event.identity.uri === local.current()?.identity)
        this.#hbone?.updateIdentity(hboneIdentity(event.certificate));
    };
    certificates.cache.on('renewed', this.#onRenewed);
    this.#unsubscribe = this.#o.state.subscribe(change => {
      const uid = local.current()?.uid;
      if (uid === undefined) return;
      if (change.policiesChanged || change.workloadsUpserted.some(w => w.uid === uid)) this.#reevaluate();
    });
  }

  /**
   * Waits (bounded) for the pod's state on behalf of one accepted connection. On failure (timeout,
   * the client left, drain) logs `connection failed`, destroys the socket and returns undefined.
   */
  async #awaitLocal<T>(
    socket: Socket,
    ends: Pick<ConnectionEnds, 'src.addr' | 'dst.addr' | 'direction'>,
    wait: (signal: AbortSignal) => Promise<T>,
  ): Promise<T | undefined> {
    const controller = new AbortController();
    const onClose = (): void => {
      controller.abort(new Error('the client closed while waiting for the workload state'));
    };
    socket.once('close', onClose);
    this.#waiting.add(controller);
    try {
      return await wait(controller.signal);
    } catch (err) {
      this.#o.accessLog.failed(ends, errorMessage(err));
      socket.destroy();
      return undefined;
    } finally {
      socket.off('close', onClose);
      this.#waiting.delete(controller);
    }
  }

  /** The pod's workload: at once when known, else once istiod sent it (see `#awaitLocal`). */
  async #localWorkload(
    socket: Socket,
    ends: Pick<ConnectionEnds, 'src.addr' | 'dst.addr' | 'direction'>,
  ): Promise<Workload | undefined> {
    return (
      this.#o.local.current() ??
      (await this.#awaitLocal(socket, ends, signal => this.#o.local.workload(signal)))
    );
  }

  /** The HBONE server, made with the pod's certificate once it is known. */
  async #hboneServer(signal: AbortSignal): Promise<HboneServer> {
    if (this.#hbone !== undefined) return this.#hbone;
    const { certificate } = await this.#o.local.ready(signal);
    if (this.#draining) throw new Error('the proxy is draining');
    this.#hbone ??= new HboneServer({
      identity: hboneIdentity(certificate),
      listener: this.#hboneFeed,
      onConnect: request => this.#onConnect(request),
      onError: err => {
        this.#log.debug({ error: errorMessage(err) }, 'inbound HBONE error');
      },
    });
    return this.#hbone;
  }

  #track(connection: Omit<LiveConnection, 'done'>, done: Promise<unknown>): void {
    const live: LiveConnection = { ...connection, done: done.then(() => undefined) };
    this.#live.add(live);
    void live.done.finally(() => this.#live.delete(live));
  }

  #reevaluate(): void {
    const local = this.#o.local.current();
    if (local === undefined) return;
    for (const live of [...this.#live]) {
      if (live.policy === undefined) continue;
      const decision = authorizeConnection(this.#o.state, local, live.policy.ctx);
      if (!decision.allowed)
        live.close(`connection closed due to policy change (${decision.policy ?? decision.reason})`);
    }
  }

  // ---- outbound (15001) ----

  async #onOutbound(socket: Socket): Promise<void> {
    socket.on('error', () => undefined);
    const started = Date.now();
    const original = this.#o.sockets.originalDestination(socket);
    const srcAddr = address(socket, 'remote');
    if (original === undefined) {
      this.#o.accessLog.failed(
        { 'src.addr': srcAddr, 'dst.addr': 'unknown', direction: 'outbound' },
        'no original destination',
      );
      socket.destroy();
      return;
    }
    const dstAddr = formatSocketAddress(original.address, original.port);
    const source = await this.#localWorkload(socket, {
      'src.addr': srcAddr,
      'dst.addr': dstAddr,
      direction: 'outbound',
    });
    if (source === undefined) return;
    const route = routeOutbound(this.#o.state, source, original);
    if (route.kind === 'reject') {
      this.#o.accessLog.failed(
        { 'src.addr': srcAddr, 'dst.addr': dstAddr, direction: 'outbound' },
        route.reason,
      );
      socket.destroy();
      return;
    }
    const parties: ConnectionParties = {
      reporter: 'source',
      source,
      sourcePrincipal: route.kind === 'hbone' ? source.identity : undefined,
      destination: route.workload,
      destinationPrincipal: route.kind === 'hbone' ? route.workload.identity : undefined,
      service: route.service,
      mtls: route.kind === 'hbone',
    };
    const ends: ConnectionEnds = {
      'src.addr': srcAddr,
      'src.workload': source.name,
      'src.namespace': source.namespace,
      'src.identity': route.kind === 'hbone' ? source.identity : undefined,
      'dst.addr': route.kind === 'hbone' ? route.nextHop : formatSocketAddress(route.address, route.port),
      'dst.hbone_addr': route.kind === 'hbone' ? route.target : undefined,
      'dst.service': route.service?.hostname,
      'dst.workload': route.workload?.name,
      'dst.namespace': route.workload?.namespace,
      'dst.identity': route.kind === 'hbone' ? route.workload.identity : undefined,
      direction: 'outbound',
    };
    this.#o.accessLog.opened(ends);
    let upstream: Duplex;
    try {
      upstream = await this.#openUpstream(route, source, srcAddr, socket);
    } catch (err) {
      const flags: ResponseFlags =
        err instanceof HboneConnectRejectedError && err.status === 401 ? 'DENY' : 'CONNECT';
      this.#o.metrics.connectionOpened(connectionLabels(parties, flags));
      this.#o.metrics.connectionClosed(connectionLabels(parties, flags), { fromClient: 0, toClient: 0 });
      this.#o.accessLog.complete(ends, {
        bytesSent: 0,
        bytesRecv: 0,
        durationMs: Date.now() - started,
        error: errorMessage(err),
      });
      socket.destroy();
      return;
    }
    const labels = connectionLabels(parties);
    this.#o.metrics.connectionOpened(labels);
    const result = relay(upstream, socket);
    this.#track(
      {
        policy: undefined,
        close: () => {
          upstream.destroy();
          socket.destroy();
        },
      },
      result,
    );
    const { sent, received, error } = await result;
    this.#o.metrics.connectionClosed(labels, { fromClient: sent, toClient: received });
    this.#o.accessLog.complete(ends, {
      bytesSent: sent,
      bytesRecv: received,
      durationMs: Date.now() - started,
      error: error === undefined ? undefined : errorMessage(error),
    });
  }

  async #openUpstream(
    route: Exclude<OutboundRoute, { kind: 'reject' }>,
    source: Workload,
    srcAddr: string,
    socket: Socket,
  ): Promise<Duplex> {
    if (route.kind === 'passthrough') {
      const upstream = this.#o.sockets.connect({ host: route.address, port: route.port });
      return whenConnected(upstream, UPSTREAM_CONNECT_TIMEOUT_MS);
    }
    const cert = await this.#o.certificates.get(source.identity);
    const pending = this.#client.connect({
      target: route.target,
      nextHop: route.nextHop,
      identity: hboneIdentity(cert),
      expectedIdentities: route.expectedIdentities,
      sourceIp: source.addresses[0] ?? '',
      headers: {
        baggage: buildBaggage({
          clusterId: source.clusterId,
          namespace: source.namespace,
          workloadType: source.workloadType,
          workloadName: source.workloadName,
          serviceName: source.canonicalName,
          serviceVersion: source.canonicalRevision,
          region: source.locality.region,
          zone: source.locality.zone,
        }),
        forwarded: buildForwarded(srcAddr, route.service?.hostname),
      },
    });
    // The client may leave while the tunnel is being set up.
    const closed = new Promise<never>((_, reject) => {
      socket.once('close', () => {
        reject(new Error('the client closed before the tunnel was up'));
      });
    });
    closed.catch(() => undefined);
    const tunnel = await Promise.race([pending, closed]);
    return tunnel;
  }

  // ---- inbound plaintext (15006) ----

  async #onPlaintext(socket: Socket): Promise<void> {
    socket.on('error', () => undefined);
    const started = Date.now();
    const target = this.#o.sockets.originalDestination(socket);
    const srcIp = socket.remoteAddress ?? '';
    const srcAddr = address(socket, 'remote');
    if (target === undefined || PROXY_PORTS.has(target.port)) {
      this.#o.accessLog.failed(
        {
          'src.addr': srcAddr,
          'dst.addr': target === undefined ? 'unknown' : formatSocketAddress(target.address, target.port),
          direction: 'inbound',
        },
        target === undefined ? 'no original destination' : `self-call to ztunnel port ${target.port}`,
      );
      socket.destroy();
      return;
    }
    const dstAddr = formatSocketAddress(target.address, target.port);
    const local = await this.#localWorkload(socket, {
      'src.addr': srcAddr,
      'dst.addr': dstAddr,
      direction: 'inbound',
    });
    if (local === undefined) return;
    const service = guessInboundService(this.#o.state, local, undefined, target.port);
    const ctx: ConnectionContext = {
      srcIp,
      srcPort: socket.remotePort ?? 0,
      dstIp: target.address,
      dstPort: target.port,
      dstNetwork: local.network,
    };
    const parties: ConnectionParties = {
      reporter: 'destination',
      source: this.#o.state.workloadByAddress(local.network, srcIp),
      sourcePrincipal: undefined,
      destination: local,
      destinationPrincipal: undefined,
      service,
      mtls: false,
    };
    const ends: ConnectionEnds = {
      'src.addr': srcAddr,
      'src.workload': parties.source?.name,
      'src.namespace': parties.source?.namespace,
      'dst.addr': dstAddr,
      'dst.service': service?.hostname,
      'dst.workload': local.name,
      'dst.namespace': local.namespace,
      direction: 'inbound',
    };
    const decision = authorizeConnection(this.#o.state, local, ctx);
    if (!decision.allowed) {
      this.#recordRejected(
        parties,
        ends,
        'DENY',
        `policy rejection: ${decision.reason} (${decision.policy ?? 'no policy'})`,
        started,
      );
      socket.destroy();
      return;
    }
    let upstream: Socket;
    try {
      upstream = await whenConnected(
        this.#o.sockets.connect({
          host: target.address,
          port: target.port,
          sourceIp: this.#o.spoofSource ? srcIp : undefined,
        }),
        UPSTREAM_CONNECT_TIMEOUT_MS,
      );
    } catch (err) {
      this.#recordRejected(parties, ends, 'CONNECT', errorMessage(err), started);
      socket.destroy();
      return;
    }
    await this.#relayInbound(upstream, socket, ctx, parties, ends, started);
  }

  async #relayInbound(
    upstream: Socket,
    downstream: Duplex,
    ctx: ConnectionContext,
    parties: ConnectionParties,
    ends: ConnectionEnds,
    started: number,
  ): Promise<void> {
    const labels = connectionLabels(parties);
    this.#o.metrics.connectionOpened(labels);
    this.#o.accessLog.opened(ends);
    let closedBy: string | undefined;
    const result = relay(downstream, upstream);
    this.#track(
      {
        policy: { ctx },
        close: reason => {
          closedBy = reason;
          upstream.destroy();
          downstream.destroy();
        },
      },
      result,
    );
    const { sent, received, error } = await result;
    // relay() counts tunnel-side bytes: `received` came from the client, `sent` went back to it.
    this.#o.metrics.connectionClosed(labels, { fromClient: received, toClient: sent });
    this.#o.accessLog.complete(ends, {
      bytesSent: sent,
      bytesRecv: received,
      durationMs: Date.now() - started,
      error: closedBy ?? (error === undefined ? undefined : errorMessage(error)),
    });
  }

  #recordRejected(
    parties: ConnectionParties,
    ends: ConnectionEnds,
    flags: ResponseFlags,
    error: string,
    started: number,
  ): void {
    const labels = connectionLabels(parties, flags);
    this.#o.metrics.connectionOpened(labels);
    this.#o.metrics.connectionClosed(labels, { fromClient: 0, toClient: 0 });
    this.#o.accessLog.complete(ends, { bytesSent: 0, bytesRecv: 0, durationMs: Date.now() - started, error });
  }

  // ---- inbound HBONE (15008) ----

  /** An accepted 15008 socket goes to the HBONE server, once it exists (it needs the certificate). */
  async #onHboneSocket(socket: Socket): Promise<void> {
    socket.on('error', () => undefined);
    if (this.#hbone === undefined) {
      const ends = {
        'src.addr': address(socket, 'remote'),
        'dst.addr': address(socket, 'local'),
        direction: 'inbound',
      } as const;
      const server = await this.#awaitLocal(socket, ends, signal => this.#hboneServer(signal));
      if (server === undefined || socket.destroyed) return;
    }
    this.#hboneFeed.emit('connection', socket);
  }

  #onConnect(request: ConnectRequest): ConnectDecision {
    const started = Date.now();
    const srcIp = request.remoteAddress.address;
    const local = this.#o.local.current();
    if (local === undefined) {
      this.#o.accessLog.failed(
        {
          'src.addr': formatSocketAddress(srcIp, request.remoteAddress.port),
          'dst.addr': formatSocketAddress(request.localAddress.address, request.localAddress.port),
          direction: 'inbound',
        },
        `no WDS workload for ${this.#o.local.info.namespace}/${this.#o.local.info.name}`,
      );
      return { status: 503, reason: 'unknown local workload' };
    }
    const forwarded = request.headers.forwarded;
    const service = guessInboundService(
      this.#o.state,
      local,
      forwarded === undefined ? undefined : parseForwardedHost(forwarded),
      request.authority.port,
    );
    const parties: ConnectionParties = {
      reporter: 'destination',
      source: this.#o.state.workloadByAddress(local.network, srcIp),
      sourcePrincipal: request.peerIdentity,
      destination: local,
      destinationPrincipal: local.identity,
      service,
      mtls: true,
    };
    const ends: ConnectionEnds = {
      'src.addr': formatSocketAddress(srcIp, request.remoteAddress.port),
      'src.workload': parties.source?.name,
      'src.namespace': parties.source?.namespace,
      'src.identity': request.peerIdentity,
      'dst.addr': formatSocketAddress(request.localAddress.address, request.localAddress.port),
      'dst.hbone_addr': request.rawAuthority,
      'dst.service': service?.hostname,
      'dst.workload': local.name,
      'dst.namespace': local.namespace,
      'dst.identity': local.identity,
      direction: 'inbound',
    };
    const authority = request.authority;
    if (authority.kind !== 'ip') {
      this.#o.accessLog.failed(ends, `hostname authority ${request.rawAuthority} is not supported`);
      return { status: 400, reason: 'hostname authorities are not supported' };
    }
    if (authority.ip !== request.localAddress.address && local.applicationTunnel === undefined) {
      this.#o.accessLog.failed(ends, `ip mismatch: ${authority.ip} != ${request.localAddress.address}`);
      return { status: 400, reason: 'IPMismatch' };
    }
    if (PROXY_PORTS.has(authority.port)) {
      this.#o.accessLog.failed(ends, `self-call to ztunnel port ${authority.port}`);
      return { status: 503, reason: 'SelfCall' };
    }
    const ctx: ConnectionContext = {
      srcIp,
      srcPort: request.remoteAddress.port,
      dstIp: authority.ip,
      dstPort: authority.port,
      srcIdentity: request.peerIdentity,
      dstNetwork: local.network,
    };
    const decision = authorizeConnection(this.#o.state, local, ctx);
    if (!decision.allowed) {
      this.#recordRejected(
        parties,
        ends,
        'DENY',
        `policy rejection: ${decision.reason} (${decision.policy ?? 'no policy'})`,
        started,
      );
      return { status: 401, reason: 'policy rejection' };
    }
    return {
      status: 200,
      connect: async signal => {
        let upstream: Socket;
        try {
          upstream = await whenConnected(
            this.#o.sockets.connect({
              host: authority.ip,
              port: authority.port,
              sourceIp: this.#o.spoofSource ? srcIp : undefined,
            }),
            UPSTREAM_CONNECT_TIMEOUT_MS,
            signal,
          );
        } catch (err) {
          this.#recordRejected(parties, ends, 'CONNECT', errorMessage(err), started);
          throw err;
        }
        // The server relays the tunnel; a paired stream lets this proxy count and track it.
        return this.#trackedUpstream(upstream, ctx, parties, ends, started);
      },
    };
  }

  /** Tracks a delivered inbound HBONE connection until its upstream socket closes. */
  #trackedUpstream(
    upstream: Socket,
    ctx: ConnectionContext,
    parties: ConnectionParties,
    ends: ConnectionEnds,
    started: number,
  ): Socket {
    const labels = connectionLabels(parties);
    this.#o.metrics.connectionOpened(labels);
    this.#o.accessLog.opened(ends);
    let closedBy: string | undefined;
    const done = new Promise<void>(resolve => {
      upstream.once('close', () => {
        this.#o.metrics.connectionClosed(labels, {
          fromClient: upstream.bytesWritten,
          toClient: upstream.bytesRead,
        });
        this.#o.accessLog.complete(ends, {
          bytesSent: upstream.bytesRead,
          bytesRecv: upstream.bytesWritten,
          durationMs: Date.now() - started,
          error: closedBy,
        });
        resolve();
      });
    });
    this.#track(
      {
        policy: { ctx },
        close: reason => {
          closedBy = reason;
          upstream.destroy();
        },
      },
      done,
    );
    return upstream;
  }

  // ---- lifecycle ----

  #closeListeners(): void {
    for (const listener of this.#listeners) listener.close();
    this.#listeners.length = 0;
  }

  /**
   * Stops accepting, lets open connections finish for up to `drainTimeoutMs`, then closes the
   * rest. Idempotent.
   */
  async drain(): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    for (const waiting of [...this.#waiting]) waiting.abort(new Error('the proxy is draining'));
    this.#unsubscribe?.();
    if (this.#onRenewed !== undefined) this.#o.certificates.cache.off('renewed', this.#onRenewed);
    this.#closeListeners();
    const hboneClosed = this.#hbone?.close() ?? Promise.resolve();
    this.#client.close();
    let timer: TimerHandle | undefined;
    const timeout = new Promise<'timeout'>(resolve => {
      timer = this.#timers.setTimeout(() => {
        resolve('timeout');
      }, this.#o.drainTimeoutMs);
    });
    const all = Promise.all([hboneClosed, ...[...this.#live].map(l => l.done)]).then(() => 'done' as const);
    const outcome = await Promise.race([all, timeout]);
    if (timer !== undefined) this.#timers.clearTimeout(timer);
    if (outcome === 'timeout') {
      this.#log.warn({ open: this.#live.size }, 'drain timed out; closing the remaining connections');
      for (const live of [...this.#live]) live.close('ztunnel is shutting down');
      this.#hbone?.destroy();
      this.#client.destroy();
    }
  }
}
