/**
 * The DNS proxy of one enrolled pod (in-pod mode): UDP and TCP listeners on 15053 in the pod's
 * network namespace, where the pod's capture rules redirect its port-53 traffic
 * (docs/dns.md). Each query is decided by `resolveQuestion` against ztunnel's WDS state and
 * answered here, or forwarded to the upstream resolvers (`DnsForwarder`).
 *
 * Bad input never reaches the resolver: oversized, undecodable and non-query packets are dropped
 * and counted (`ztunnel_dns_dropped_requests_total`), as are queries beyond the pod's in-flight
 * bound. A TCP connection carries any number of length-prefixed queries and is closed after
 * `tcpIdleTimeoutMs` without one, or at once on an oversized frame.
 */
import type dgram from 'node:dgram';
import type { Server, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Port } from '@ambient-mesh/mesh-api';
import type { Logger } from '@ambient-mesh/runtime';
import { errorMessage } from '@ambient-mesh/errors';
import type { Workload } from '../state/types.ts';
import type { DnsForwarder, DnsSockets } from './forwarder.ts';
import type { DnsProtocol, DnsQuery } from './message.ts';
import { DnsRcode, MAX_QUERY_BYTES, encodeResponse, parseQuery } from './message.ts';
import type { DnsMetrics, DnsRequestLabels } from './metrics.ts';
import type { DnsStateView } from './resolve.ts';
import { podSearchDomains, resolveQuestion } from './resolve.ts';

export const DNS_PROXY_PORT = Port.dns;
/** Upstream's TCP request timeout (5 s). */
export const DEFAULT_TCP_IDLE_TIMEOUT_MS = 5_000;
/** Queries of one pod being resolved or forwarded at once; more are dropped and counted. */
export const DEFAULT_MAX_IN_FLIGHT = 1_024;

export interface DnsProxyOptions {
  readonly sockets: DnsSockets;
  readonly forwarder: DnsForwarder;
  readonly state: DnsStateView;
  /** The pod's WDS workload, waiting (bounded) for it; undefined when it did not arrive in time. */
  readonly client: () => Promise<Workload | undefined>;
  readonly clusterDomain: string;
  readonly metrics: DnsMetrics;
  readonly logger: Logger;
  /** Default 15053; 0 in tests. */
  readonly port?: number;
  readonly tcpIdleTimeoutMs?: number;
  readonly maxInFlight?: number;
}

export class DnsProxy {
  readonly #o: DnsProxyOptions;
  readonly #tcpSockets = new Set<Socket>();
  #udp: dgram.Socket | undefined;
  #tcp: Server | undefined;
  #inFlight = 0;
  #closed = false;

  private constructor(options: DnsProxyOptions) {
    this.#o = options;
  }

  /** Binds UDP and TCP on the port in the pod; on failure releases what was bound and rejects. */
  static async start(options: DnsProxyOptions): Promise<DnsProxy> {
    const proxy = new DnsProxy(options);
    const port = options.port ?? DNS_PROXY_PORT;
    try {
      proxy.#udp = await options.sockets.listenUdp(port);
      proxy.#udp.on('message', (msg, rinfo) => {
        proxy.#onDatagram(msg, rinfo);
      });
      proxy.#udp.on('error', err => {
        options.logger.warn({ err: errorMessage(err) }, 'dns udp socket error');
      });
      proxy.#tcp = await options.sockets.listenTcp(port);
      proxy.#tcp.on('connection', socket => {
        proxy.#onTcp(socket);
      });
    } catch (err) {
      proxy.close();
      throw err;
    }
    return proxy;
  }

  /** The bound ports (for tests that bind port 0). */
  get ports(): { readonly udp: number; readonly tcp: number } {
    const tcp = this.#tcp?.address();
    return {
      udp: this.#udp?.address().port ?? 0,
      tcp: tcp !== null && typeof tcp === 'object' ? tcp.port : 0,
    };
  }

  /** Closes the listeners and open TCP connections; idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#udp?.close();
    } catch {
      // already closed
    }
    this.#tcp?.close();
    for (const socket of this.#tcpSockets) socket.destroy();
    this.#tcpSockets.clear();
  }

  #onDatagram(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    void this.handle(msg, 'udp').then(reply => {
      if (reply === undefined || this.#closed || this.#udp === undefined) return;
      this.#udp.send(reply, rinfo.port, rinfo.address);
    });
  }

  #onTcp(socket: Socket): void {
    this.#tcpSockets.add(socket);
    socket.setTimeout(this.#o.tcpIdleTimeoutMs ?? DEFAULT_TCP_IDLE_TIMEOUT_MS, () => socket.destroy());
    socket.on('close', () => this.#tcpSockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let buffered: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2) {
        const size = buffered.readUInt16BE(0);
        if (size > MAX_QUERY_BYTES) {
          this.#o.metrics.dropped('oversized', 'tcp');
          socket.destroy();
          return;
        }
        if (buffered.length < 2 + size) return;
        const frame = buffered.subarray(2, 2 + size);
        buffered = buffered.subarray(2 + size);
        void this.handle(frame, 'tcp').then(reply => {
          if (reply === undefined || socket.destroyed) return;
          const length = Buffer.alloc(2);
          length.writeUInt16BE(reply.length);
          socket.write(Buffer.concat([length, reply]));
        });
      }
    });
  }

  /** The response to one packet, or undefined when it is dropped. Never rejects. */
  async handle(packet: Buffer, protocol: DnsProtocol): Promise<Buffer | undefined> {
    const parsed = parseQuery(packet);
    if (!parsed.ok) {
      this.#o.metrics.dropped(parsed.reason, protocol);
      return undefined;
    }
    if (this.#inFlight >= (this.#o.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT)) {
      this.#o.metrics.dropped('overloaded', protocol);
      return undefined;
    }
    this.#inFlight++;
    try {
      return await this.#answer(parsed.query, packet, protocol);
    } catch (err) {
      this.#o.logger.warn({ err: errorMessage(err), name: parsed.query.name }, 'dns query failed');
      return encodeResponse(parsed.query, {
        rcode: DnsRcode.ServFail,
        answers: [],
        authoritative: false,
        protocol,
      });
    } finally {
      this.#inFlight--;
    }
  }

  async #answer(query: DnsQuery, packet: Buffer, protocol: DnsProtocol): Promise<Buffer> {
    const { metrics } = this.#o;
    const client = await this.#o.client();
    if (client === undefined) {
      metrics.request({ queryType: query.type, protocol });
      this.#o.logger.debug({ name: query.name }, 'dns query from a pod ztunnel has no workload for');
      return encodeResponse(query, { rcode: DnsRcode.ServFail, answers: [], authoritative: false, protocol });
    }
    const labels: DnsRequestLabels = { queryType: query.type, protocol, source: client };
    const decision = resolveQuestion(
      { name: query.name, type: query.type },
      {
        client: { namespace: client.namespace, network: client.network },
        clusterDomain: this.#o.clusterDomain,
        searchDomains: podSearchDomains(client.namespace, this.#o.clusterDomain),
      },
      this.#o.state,
    );
    metrics.request(labels);
    if (decision.kind === 'answer') {
      return encodeResponse(query, {
        rcode: DnsRcode.NoError,
        answers: decision.answers,
        authoritative: true,
        protocol,
      });
    }
    metrics.upstreamRequest(labels);
    const started = performance.now();
    try {
      return await this.#o.forwarder.forward(packet, query.id, protocol);
    } catch (err) {
      metrics.upstreamFailure(labels);
      this.#o.logger.debug({ err: errorMessage(err), name: query.name }, 'dns forwarding failed');
      return encodeResponse(query, { rcode: DnsRcode.ServFail, answers: [], authoritative: false, protocol });
    } finally {
      metrics.upstreamDuration(labels, (performance.now() - started) / 1000);
    }
  }
}
