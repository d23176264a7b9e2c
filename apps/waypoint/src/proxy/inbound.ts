/**
 * Inbound HBONE on 15008: TLS 1.3 mTLS with the waypoint's identity (peers must present a
 * certificate of the mesh's trust domain), HTTP/2 CONNECT. The CONNECT authority (service VIP
 * or pod IP, and port) chooses the filter chain: an HTTP chain hands the tunnel to the HTTP
 * data path; a TCP chain relays it to an endpoint of its cluster (one of its weighted clusters,
 * picked per connection, for a TCPRoute) over HBONE (plain TCP for endpoints outside the mesh:
 * DNS and original-dst clusters). A cluster the configuration lacks (a TCPRoute backend that
 * did not resolve) refuses the CONNECT with 503.
 *
 * Where the destination's chains match on `application_protocols` (an undeclared Service port:
 * an HTTP chain and a TCP chain), the CONNECT is accepted first and `http_inspector` sniffs the
 * inner stream (`http-inspector.ts`): HTTP/1.x or h2c go to the HTTP chain, anything else (or
 * nothing within the listener filter timeout) to the TCP chain, which then cannot refuse with a
 * status any more: a TCP chain without an endpoint closes the accepted tunnel.
 *
 * Connections of a TCP chain are reported as `istio_tcp_*` (`reporter="waypoint"`, bytes as
 * they are relayed, `tcp-stats.ts`); a failed upstream connect counts opened and closed with `UF`,
 * a cluster without endpoints with `UH`, a missing cluster with `NC`.
 *
 * The source of every tunnel (its `source_*` labels, HTTP and TCP) is its WDS workload, found
 * by the CONNECT's `forwarded: for=` address or else the tunnel's source address, and checked
 * against the peer's mTLS identity; the CONNECT's `baggage` is the fallback (`peer-index.ts`).
 */
import { duplexPair } from 'node:stream';
import type { Server as NetServer } from 'node:net';
import { createHboneServer, parseBaggage, parseForwarded } from '@ambient-mesh/hbone';
import type {
  ConnectDecision,
  ConnectRequest,
  HboneIdentity,
  HboneServer,
  HboneServerError,
} from '@ambient-mesh/hbone';
import type { Logger } from '@ambient-mesh/runtime';
import type { StatsConfig } from '../config/types.ts';
import type { TcpConnectionMetrics, WaypointMetrics } from '../metrics.ts';
import type { WaypointStateReader } from '../state/waypoint-state.ts';
import { resolveSource } from '../state/peer-index.ts';
import type { PeerIndexReader } from '../state/peer-index.ts';
import type { HttpProxy } from './http-proxy.ts';
import { hash32 } from './balancer.ts';
import { clusterEndpoints } from './cluster-endpoints.ts';
import type { DnsClusters } from './dns-clusters.ts';
import { pickTcpCluster, selectChain, sniffTimeout } from './route.ts';
import { inspectHttp } from './http-inspector.ts';
import { relay } from '@ambient-mesh/hbone';
import type { Duplex } from 'node:stream';
import { tcpConnectionMetrics } from './tcp-stats.ts';
import type { TcpConnectionInfo, TcpSource } from './tcp-stats.ts';
import { tunnelTo } from './upstream.ts';
import type { UpstreamOptions } from './upstream.ts';

export interface InboundOptions {
  readonly listener: NetServer;
  readonly identity: HboneIdentity;
  /** The trust domain peers must belong to (`cluster.local`). */
  readonly trustDomain: string;
  readonly state: WaypointStateReader;
  /** WDS workloads: the source of a connection, for its `source_*` labels. */
  readonly peers: PeerIndexReader;
  /** The waypoint's network (workload addresses are looked up on it). */
  readonly network: string;
  readonly http: HttpProxy;
  readonly upstream: UpstreamOptions;
  readonly logger: Logger;
  /** Where TCP chains' connections are counted (`istio_tcp_*`). */
  readonly metrics: WaypointMetrics;
  /** Resolved endpoints of DNS clusters. */
  readonly dns?: DnsClusters;
}

/** Pure: the decision for one CONNECT, before anything is dialled. */
export type InboundDecision =
  | { readonly kind: 'reject'; readonly status: 400 | 401 | 503; readonly reason: string }
  | { readonly kind: 'http' }
  /** The destination's chains match on `application_protocols`: sniff the stream first. */
  | { readonly kind: 'sniff'; readonly timeoutMs: number }
  | { readonly kind: 'tcp'; readonly cluster: string; readonly stats?: StatsConfig };

export function decideConnect(
  state: WaypointStateReader,
  trustDomain: string,
  request: Pick<ConnectRequest, 'authority' | 'peerIdentity'>,
  random: () => number = Math.random,
): InboundDecision {
  if (!request.peerIdentity.startsWith(`spiffe://${trustDomain}/`)) {
    return {
      kind: 'reject',
      status: 401,
      reason: `peer ${request.peerIdentity} is not in trust domain ${trustDomain}`,
    };
  }
  if (request.authority.kind !== 'ip') {
    return { kind: 'reject', status: 400, reason: 'the CONNECT authority must be an IP address and port' };
  }
  const config = state.snapshot();
  const timeoutMs = sniffTimeout(config, request.authority.ip, request.authority.port);
  if (timeoutMs !== undefined) return { kind: 'sniff', timeoutMs };
  return chainDecision(selectChain(config, request.authority.ip, request.authority.port), random);
}

/** The decision for the chain picked (after sniffing, with the stream's application protocol). */
export function chainDecision(
  chain: ReturnType<typeof selectChain>,
  random: () => number = Math.random,
): Exclude<InboundDecision, { kind: 'sniff' }> {
  if (chain.kind === 'no-chain') return { kind: 'reject', status: 503, reason: chain.reason };
  const action = chain.chain.action;
  // A TCP chain with `weighted_clusters` (a TCPRoute) picks one cluster per connection.
  return action.kind === 'http'
    ? { kind: 'http' }
    : {
        kind: 'tcp',
        cluster: pickTcpCluster(action, random()),
        ...(action.stats === undefined ? {} : { stats: action.stats }),
      };
}

export function startInbound(options: InboundOptions): HboneServer {
  const log = options.logger;
  return createHboneServer({
    identity: options.identity,
    listener: options.listener,
    onError: (error: HboneServerError) => {
      log.debug({ code: error.code, err: error.message }, 'HBONE inbound error');
    },
    onConnect: async (request): Promise<ConnectDecision> => {
      const decision = decideConnect(options.state, options.trustDomain, request);
      if (decision.kind === 'reject') {
        log.debug(
          { authority: request.rawAuthority, peer: request.peerIdentity, reason: decision.reason },
          'CONNECT rejected',
        );
        return { status: decision.status, reason: decision.reason };
      }
      const authority = request.authority as { ip: string; port: number };
      // The source workload: WDS by the original client address, else `baggage`, else the identity.
      const baggage = parseBaggage(request.headers.baggage ?? '');
      const forwarded = parseForwarded(request.headers.forwarded ?? '');
      const { source: sourceWorkload } = resolveSource(options.peers, options.network, {
        peerIdentity: request.peerIdentity,
        forwardedFor: forwarded.ok ? forwarded.elements[0]?.get('for') : undefined,
        remoteAddress: request.remoteAddress.address,
        baggage: baggage.ok ? baggage.baggage : {},
      });
      const tunnel: TunnelInfo = {
        peerIdentity: request.peerIdentity,
        remoteAddress: request.remoteAddress.address,
        authority,
        sourceWorkload,
      };
      if (decision.kind === 'tcp') return tcpConnect(options, decision, tunnel);
      if (decision.kind === 'sniff') {
        return {
          status: 200,
          connect: () => {
            const [outer, inner] = duplexPair();
            sniffAndServe(options, inner, tunnel, decision.timeoutMs).catch((err: unknown) => {
              options.logger.warn(
                { err: err instanceof Error ? err.message : String(err) },
                'sniffed tunnel failed',
              );
              inner.destroy();
            });
            return Promise.resolve(outer);
          },
        };
      }
      return {
        status: 200,
        connect: () => {
          const [outer, inner] = duplexPair();
          serveHttp(options, inner, tunnel);
          return Promise.resolve(outer);
        },
      };
    },
  });
}

/** What one accepted CONNECT carries to its chain. */
interface TunnelInfo {
  readonly peerIdentity: string;
  readonly remoteAddress: string;
  readonly authority: { readonly ip: string; readonly port: number };
  readonly sourceWorkload: ReturnType<typeof resolveSource>['source'];
}

function serveHttp(options: InboundOptions, stream: Duplex, tunnel: TunnelInfo): void {
  options.http.serveTunnel(stream, {
    peerIdentity: tunnel.peerIdentity,
    destinationIp: tunnel.authority.ip,
    destinationPort: tunnel.authority.port,
    remoteAddress: tunnel.remoteAddress,
    baggage: tunnel.sourceWorkload,
  });
}

/** A TCP chain's CONNECT: the endpoint is picked (503 without one) and dialled before the 200. */
async function tcpConnect(
  options: InboundOptions,
  decision: Extract<InboundDecision, { kind: 'tcp' }>,
  tunnel: TunnelInfo,
): Promise<ConnectDecision> {
  const authority = tunnel.authority;
  const config = options.state.snapshot();
  const cluster = config.clusters.get(decision.cluster);
  const endpoints =
    cluster === undefined ? [] : await clusterEndpoints(cluster, config, options.dns, authority);
  // The cluster's load-balancing policy spreads connections over its endpoints, as Envoy's
  // tcp_proxy does (ring hash keys on the source address, its only TCP hash input).
  const balancer = options.http.balancer(decision.cluster);
  const endpoint =
    cluster === undefined
      ? undefined
      : balancer.pick(cluster, endpoints, {
          hash: hash32(tunnel.remoteAddress),
          exclude: new Set(),
          random: Math.random,
        });
  const source: TcpSource = {
    kind: 'peer',
    peerIdentity: tunnel.peerIdentity,
    baggage: tunnel.sourceWorkload,
  };
  const count = (flags: TcpConnectionInfo['flags']): TcpConnectionMetrics =>
    tcpConnectionMetrics(
      options.metrics,
      { source, cluster, endpoint, flags },
      { stats: decision.stats, remoteAddress: tunnel.remoteAddress, destinationPort: authority.port },
    );
  if (endpoint === undefined) {
    count(cluster === undefined ? 'NC' : 'UH');
    return { status: 503, reason: `no endpoint for cluster ${decision.cluster}` };
  }
  let conn: TcpConnectionMetrics | undefined;
  return {
    status: 200,
    connect: async () => {
      try {
        const upstream = await tunnelTo(options.upstream, endpoint);
        conn = count('-');
        return upstream;
      } catch (err) {
        count('UF');
        throw err;
      }
    },
    observe: {
      fromClient: n => conn?.received(n),
      toClient: n => conn?.sent(n),
      closed: () => conn?.closed(),
    },
  };
}

/**
 * `http_inspector` on an accepted tunnel: its first bytes are read (and put back) until they
 * show HTTP/1.x or h2c, or show neither, or `timeoutMs` passes without a verdict (a server-first
 * protocol: the client waits for the server); then the chain for that application protocol
 * (none: the TCP chain) serves the stream, from its first byte.
 */
async function sniffAndServe(
  options: InboundOptions,
  inner: Duplex,
  tunnel: TunnelInfo,
  timeoutMs: number,
): Promise<void> {
  const log = options.logger;
  const { head, protocol } = await new Promise<{ head: Buffer; protocol: string | undefined }>(resolve => {
    let head = Buffer.alloc(0);
    let settled = false;
    const done = (protocol: string | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      inner.off('data', onData);
      inner.off('end', onEnd);
      inner.off('close', onEnd);
      inner.pause();
      resolve({ head, protocol });
    };
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const r = inspectHttp(head);
      if (r.kind === 'protocol') done(r.protocol);
      else if (r.kind === 'none') done(undefined);
    };
    const onEnd = (): void => {
      done(undefined);
    };
    const timer = setTimeout(() => {
      done(undefined);
    }, timeoutMs);
    inner.on('data', onData);
    inner.on('end', onEnd);
    inner.on('close', onEnd);
  });
  if (inner.destroyed) return;
  if (head.length > 0) inner.unshift(head);
  const decision = chainDecision(
    selectChain(options.state.snapshot(), tunnel.authority.ip, tunnel.authority.port, protocol),
  );
  log.debug(
    {
      authority: `${tunnel.authority.ip}:${tunnel.authority.port}`,
      protocol: protocol ?? 'none',
      chain: decision.kind,
    },
    'inner stream sniffed',
  );
  if (decision.kind === 'reject') {
    inner.destroy();
    return;
  }
  if (decision.kind === 'http') {
    serveHttp(options, inner, tunnel);
    // Paused while sniffing: the HTTP data path reads from here (the peeked bytes first).
    inner.resume();
    return;
  }
  const tcp = await tcpConnect(options, decision, tunnel);
  if (tcp.status !== 200) {
    inner.destroy();
    return;
  }
  const abort = new AbortController();
  inner.once('close', () => {
    abort.abort();
  });
  let upstream: Duplex;
  try {
    upstream = await tcp.connect(abort.signal);
  } catch (err) {
    log.debug(
      { err: err instanceof Error ? err.message : String(err) },
      'sniffed TCP upstream connect failed',
    );
    inner.destroy();
    return;
  }
  const relayed = relay(inner, upstream, {
    ...(tcp.observe?.fromClient === undefined ? {} : { onTunnelData: tcp.observe.fromClient }),
    ...(tcp.observe?.toClient === undefined ? {} : { onSocketData: tcp.observe.toClient }),
  });
  inner.resume();
  const result = await relayed;
  tcp.observe?.closed?.(result);
}
