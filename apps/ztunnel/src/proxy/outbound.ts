/**
 * Outbound (15001) of one pod (upstream ztunnel's `outbound.rs`): the original destination the
 * app dialled → `routeOutbound` → an HBONE tunnel (pooled per pod, owned here) or plain
 * passthrough. Every connection is reported through the pod's connection manager.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { errorMessage } from '@ambient-mesh/errors';
import {
  buildBaggage,
  buildForwarded,
  createHboneClient,
  formatSocketAddress,
  HboneConnectRejectedError,
} from '@ambient-mesh/hbone';
import type { HboneClient } from '@ambient-mesh/hbone';
import { ResponseFlag } from '@ambient-mesh/proxy-core';
import type { ConnectionEnds } from '../access-log.ts';
import type { Workload } from '../state/types.ts';
import type { ZtunnelConnection } from './connection-sink.ts';
import { whenConnected } from './pod-sockets.ts';
import type { PodInputs } from './proxy-inputs.ts';
import { addressOfFamily, routeOutbound } from './route.ts';
import type { OutboundRoute } from './route.ts';
import { hboneIdentity } from './secure-context.ts';
import { remoteAddress } from './socket-address.ts';

export class Outbound {
  readonly #i: PodInputs;
  readonly #client: HboneClient;

  constructor(inputs: PodInputs) {
    this.#i = inputs;
    this.#client = createHboneClient({
      socketFactory: ({ host, port }) => inputs.sockets.connect({ host, port }),
      onConnectionError: err => {
        inputs.logger.debug({ error: errorMessage(err) }, 'pooled HBONE connection dropped');
      },
    });
  }

  /** Serves one connection accepted on 15001. */
  async handle(socket: Socket): Promise<void> {
    socket.on('error', () => undefined);
    const { connections, local, state, sockets } = this.#i;
    const started = connections.now();
    const original = sockets.originalDestination(socket);
    const srcAddr = remoteAddress(socket);
    if (original === undefined) {
      connections.failed({ src: srcAddr, dst: 'unknown', direction: 'outbound' }, 'no original destination');
      socket.destroy();
      return;
    }
    const addresses = {
      src: srcAddr,
      dst: formatSocketAddress(original.address, original.port),
      direction: 'outbound',
    } as const;
    const source =
      local.current() ?? (await connections.pending(socket, addresses, signal => local.workload(signal)));
    if (source === undefined) return;
    const route = routeOutbound(state, source, original);
    if (route.kind === 'reject') {
      connections.failed(addresses, route.reason);
      socket.destroy();
      return;
    }
    const connection = describe(route, source, srcAddr);
    let upstream: Duplex;
    try {
      upstream = await this.#openUpstream(route, source, srcAddr, socket);
    } catch (err) {
      const flag =
        err instanceof HboneConnectRejectedError && err.status === 401
          ? ResponseFlag.denied
          : ResponseFlag.connectFailed;
      connections.refuse(connection, started, flag, errorMessage(err));
      socket.destroy();
      return;
    }
    // Returned, not awaited: this frame need not stay suspended for the connection's life.
    return connections.relay(connection, { client: socket, upstream, started });
  }

  /** Stops pooling: open tunnels finish, new ones are refused. */
  close(): void {
    this.#client.close();
  }

  destroy(): void {
    this.#client.destroy();
  }

  async #openUpstream(
    route: Exclude<OutboundRoute, { kind: 'reject' }>,
    source: Workload,
    srcAddr: string,
    socket: Socket,
  ): Promise<Duplex> {
    if (route.kind === 'passthrough') {
      const upstream = this.#i.sockets.connect({ host: route.address, port: route.port });
      return whenConnected(upstream, this.#i.limits.upstreamConnectTimeoutMs);
    }
    const cert = await this.#i.certificates.get(source.identity);
    const pending = this.#client.connect({
      target: route.target,
      nextHop: route.nextHop,
      identity: hboneIdentity(cert),
      expectedIdentities: route.expectedIdentities,
      // The pool key: the source pod's address of the connection's family.
      sourceIp: addressOfFamily(source.addresses, srcAddr) ?? '',
      headers: {
        baggage: baggageOf(source),
        forwarded: buildForwarded(srcAddr, route.service?.hostname),
      },
    });
    // The client may leave while the tunnel is being set up. Listened to only until then: an open
    // connection keeps neither the listener nor the race.
    let onClose: (() => void) | undefined;
    const closed = new Promise<never>((_, reject) => {
      onClose = () => {
        reject(new Error('the client closed before the tunnel was up'));
      };
      socket.on('close', onClose);
    });
    closed.catch(() => undefined);
    try {
      return await Promise.race([pending, closed]);
    } catch (err) {
      // A tunnel that comes up after its client left is closed at once.
      pending.then(
        tunnel => tunnel.destroy(),
        () => undefined,
      );
      throw err;
    } finally {
      socket.off('close', onClose!);
    }
  }
}

/**
 * The `baggage` a workload's tunnels carry, built once per workload object (WDS replaces the
 * object when the workload changes) and shared by its connections.
 */
const baggages = new WeakMap<Workload, string>();

function baggageOf(source: Workload): string {
  let baggage = baggages.get(source);
  if (baggage === undefined) {
    baggage = buildBaggage({
      clusterId: source.clusterId,
      namespace: source.namespace,
      workloadType: source.workloadType,
      workloadName: source.workloadName,
      serviceName: source.canonicalName,
      serviceVersion: source.canonicalRevision,
      region: source.locality.region,
      zone: source.locality.zone,
    });
    baggages.set(source, baggage);
  }
  return baggage;
}

/** The source reporter's description of a routed outbound connection. */
function describe(
  route: Exclude<OutboundRoute, { kind: 'reject' }>,
  source: Workload,
  srcAddr: string,
): ZtunnelConnection {
  const hbone = route.kind === 'hbone';
  const ends: ConnectionEnds = {
    'src.addr': srcAddr,
    'src.workload': source.name,
    'src.namespace': source.namespace,
    'src.identity': hbone ? source.identity : undefined,
    'dst.addr': hbone ? route.nextHop : formatSocketAddress(route.address, route.port),
    'dst.hbone_addr': hbone ? route.target : undefined,
    'dst.service': route.service?.hostname,
    'dst.workload': route.workload?.name,
    'dst.namespace': route.workload?.namespace,
    'dst.identity': hbone ? route.workload.identity : undefined,
    direction: 'outbound',
  };
  return {
    parties: {
      reporter: 'source',
      source,
      sourcePrincipal: hbone ? source.identity : undefined,
      destination: route.workload,
      destinationPrincipal: hbone ? route.workload.identity : undefined,
      service: route.service,
      mtls: hbone,
    },
    ends,
  };
}
