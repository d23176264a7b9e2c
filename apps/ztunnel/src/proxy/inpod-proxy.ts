/**
 * The proxy of one enrolled pod (in-pod mode): the composition of its parts for that pod. Three
 * listeners are created in the pod through its `PodSockets`, bound as soon as ZDS announces the
 * pod; the pod's WDS workload and certificate are resolved lazily (`LocalWorkload`).
 *
 * - 15001 → `Outbound` (outbound.ts)
 * - 15006 → `InboundPassthrough` (inbound-passthrough.ts)
 * - 15008 → inbound HBONE (inbound.ts, `@ambient-mesh/proxy-core`'s `InboundHbone`)
 *
 * All three report and track their connections through one `ConnectionManager` per pod, whose
 * policy check is the pod's L4 authorization: a policy change (or a change of the pod's
 * workload) re-evaluates the open inbound connections and closes those no longer allowed.
 * This file owns the listeners, that subscription, and drain.
 */
import type { Server, Socket } from 'node:net';
import { ConnectionManager } from '@ambient-mesh/proxy-core';
import type { PolicyVerdict } from '@ambient-mesh/proxy-core';
import { Port } from '@ambient-mesh/mesh-api';
import type { AccessLog } from '../access-log.ts';
import type { Logger } from '@ambient-mesh/runtime';
import type { ZtunnelMetrics } from '../metrics.ts';
import type { CertManager } from '../identity/cert-manager.ts';
import type { ProxyStateReader } from '../state/proxy-state.ts';
import { systemTimers } from '@ambient-mesh/runtime';
import type { TimerHandle, Timers } from '@ambient-mesh/runtime';
import { LiveConnectionSet, ztunnelConnectionSink } from './connection-sink.ts';
import type { LiveConnections } from './connection-sink.ts';
import { InboundPassthrough } from './inbound-passthrough.ts';
import { createInbound } from './inbound.ts';
import type { PodInbound } from './inbound.ts';
import type { LocalWorkload } from './local-workload.ts';
import { Outbound } from './outbound.ts';
import type { PodSockets } from './pod-sockets.ts';
import type { PodConnections, ProxyLimits } from './proxy-inputs.ts';
import { SourceLimiter } from './source-limit.ts';
import { authorizeConnection } from './rbac.ts';

export const OUTBOUND_PORT = Port.ztunnelOutbound;
export const INBOUND_PLAINTEXT_PORT = Port.ztunnelInboundPlaintext;
export const INBOUND_HBONE_PORT = Port.hbone;

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
  readonly limits: ProxyLimits;
  /** How long `drain()` lets open connections run before closing them. */
  readonly drainTimeoutMs: number;
  readonly timers?: Timers;
}

/** While the pod's workload is unknown nothing is re-checked (the connection was checked on arrival). */
const UNKNOWN_LOCAL: PolicyVerdict = { allowed: true, reason: 'unknown-local-workload' };

export class InPodProxy {
  readonly #o: InPodProxyOptions;
  readonly #log: Logger;
  readonly #timers: Timers;
  readonly #connections: PodConnections;
  readonly #live = new LiveConnectionSet();
  readonly #outbound: Outbound;
  readonly #passthrough: InboundPassthrough;
  readonly #inbound: PodInbound;
  readonly #listeners: Server[] = [];
  readonly #sources: SourceLimiter;
  /** Sources refused since they were last under the limit: each is logged once per episode. */
  readonly #refusing = new Set<string>();
  #unsubscribe: (() => void) | undefined;
  #draining = false;

  private constructor(options: InPodProxyOptions) {
    this.#o = options;
    this.#timers = options.timers ?? systemTimers;
    this.#log = options.logger.child({ wl: `${options.local.info.namespace}/${options.local.info.name}` });
    const { local, state } = options;
    this.#sources = new SourceLimiter(options.limits.maxConnectionsPerSource);
    this.#connections = new ConnectionManager({
      idleTimeoutMs: options.limits.connectionIdleTimeoutMs,
      sink: ztunnelConnectionSink(options.metrics, options.accessLog, this.#live),
      authorize: ctx => {
        const workload = local.current();
        return workload === undefined ? UNKNOWN_LOCAL : authorizeConnection(state, workload, ctx);
      },
    });
    const inputs = {
      local,
      state,
      sockets: options.sockets,
      certificates: options.certificates,
      connections: this.#connections,
      spoofSource: options.spoofSource,
      limits: options.limits,
      logger: this.#log,
    };
    this.#outbound = new Outbound(inputs);
    this.#passthrough = new InboundPassthrough(inputs);
    this.#inbound = createInbound(inputs);
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
      proxy.#outbound.destroy();
      throw err;
    }
    return proxy;
  }

  /** The open connections, for `/config_dump` `workloadState`. */
  connections(): LiveConnections {
    return this.#live.snapshot();
  }

  /** Connections carried now (relayed, or tunnels delivered to the app). */
  get connectionCount(): number {
    return this.#connections.size;
  }

  async #bind(): Promise<void> {
    const { sockets, local } = this.#o;
    for (const listener of await sockets.listen(OUTBOUND_PORT, { transparent: false })) {
      this.#listeners.push(listener);
      listener.on('connection', socket => {
        void this.#outbound.handle(socket);
      });
    }
    for (const listener of await sockets.listen(INBOUND_PLAINTEXT_PORT, { transparent: true })) {
      this.#listeners.push(listener);
      listener.on('connection', socket => {
        if (this.#admit(socket, INBOUND_PLAINTEXT_PORT)) void this.#passthrough.handle(socket);
      });
    }
    for (const listener of await sockets.listen(INBOUND_HBONE_PORT, { transparent: true })) {
      this.#listeners.push(listener);
      listener.on('connection', socket => {
        // HTTP/2 half-closes per stream, never the TCP connection: a client's FIN (say, during the
        // TLS handshake) ends the connection instead of leaving it open until a timeout.
        socket.allowHalfOpen = false;
        if (this.#admit(socket, INBOUND_HBONE_PORT)) void this.#inbound.accept(socket);
      });
    }
    this.#unsubscribe = this.#o.state.subscribe(change => {
      const uid = local.current()?.uid;
      if (uid === undefined) return;
      if (change.policiesChanged || change.workloadsUpserted.some(w => w.uid === uid))
        this.#connections.reevaluate();
    });
  }

  /** The per-source limit, at accept: a refused socket is closed before any other work. */
  #admit(socket: Socket, port: number): boolean {
    socket.on('error', () => undefined);
    const source = socket.remoteAddress ?? '';
    const decision = this.#sources.acquire(socket);
    if (decision.kind === 'admit') {
      this.#refusing.delete(source);
      return true;
    }
    this.#o.metrics.connectionsRefusedBySourceLimit.inc();
    if (!this.#refusing.has(source)) {
      this.#refusing.add(source);
      this.#log.warn(
        { src: source, port, open: decision.open, limit: decision.max },
        'refusing connections: the source is at MAX_CONNECTIONS_PER_SOURCE for this pod',
      );
    }
    socket.destroy();
    return false;
  }

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
    this.#unsubscribe?.();
    this.#closeListeners();
    const inboundClosed = this.#inbound.close();
    this.#outbound.close();
    let timer: TimerHandle | undefined;
    const deadline = new Promise<void>(resolve => {
      timer = this.#timers.setTimeout(resolve, this.#o.drainTimeoutMs);
    });
    const outcome = await this.#connections.drain({
      deadline,
      reason: 'ztunnel is shutting down',
      alsoWaitFor: [inboundClosed],
    });
    if (timer !== undefined) this.#timers.clearTimeout(timer);
    if (outcome === 'timeout') {
      this.#log.warn({ open: this.#connections.size }, 'drain timed out; closing the remaining connections');
      this.#inbound.destroy();
      this.#outbound.destroy();
    }
  }
}
