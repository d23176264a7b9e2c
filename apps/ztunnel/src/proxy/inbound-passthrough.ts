/**
 * Inbound plaintext (15006) of one pod (upstream ztunnel's `inbound_passthrough.rs`): a captured
 * connection without HBONE. L4 policy with no peer identity, then delivery to the app with the
 * client's source IP; the connection stays tracked with its policy context, so a policy change
 * that now denies it closes it.
 */
import type { Socket } from 'node:net';
import { errorMessage } from '@ambient-mesh/errors';
import { formatSocketAddress } from '@ambient-mesh/hbone';
import { policyRejection, ResponseFlag } from '@ambient-mesh/proxy-core';
import { guessInboundService } from './inbound-service.ts';
import { whenConnected } from './pod-sockets.ts';
import type { PodInputs } from './proxy-inputs.ts';
import type { ConnectionContext } from './rbac.ts';
import { PROXY_PORTS } from './route.ts';
import type { ZtunnelConnection } from './connection-sink.ts';
import { remoteAddress } from './socket-address.ts';

export class InboundPassthrough {
  readonly #i: PodInputs;

  constructor(inputs: PodInputs) {
    this.#i = inputs;
  }

  /** Serves one connection accepted on 15006. */
  async handle(socket: Socket): Promise<void> {
    socket.on('error', () => undefined);
    const { connections, local, state, sockets } = this.#i;
    const started = connections.now();
    const target = sockets.originalDestination(socket);
    const srcIp = socket.remoteAddress ?? '';
    const srcAddr = remoteAddress(socket);
    if (target === undefined || PROXY_PORTS.has(target.port)) {
      connections.failed(
        {
          src: srcAddr,
          dst: target === undefined ? 'unknown' : formatSocketAddress(target.address, target.port),
          direction: 'inbound',
        },
        target === undefined ? 'no original destination' : `self-call to ztunnel port ${target.port}`,
      );
      socket.destroy();
      return;
    }
    const dstAddr = formatSocketAddress(target.address, target.port);
    const destination =
      local.current() ??
      (await connections.pending(socket, { src: srcAddr, dst: dstAddr, direction: 'inbound' }, signal =>
        local.workload(signal),
      ));
    if (destination === undefined) return;
    const service = guessInboundService(state, destination, undefined, target.port);
    const source = state.workloadByAddress(destination.network, srcIp);
    const connection: ZtunnelConnection = {
      parties: {
        reporter: 'destination',
        source,
        sourcePrincipal: undefined,
        destination,
        destinationPrincipal: undefined,
        service,
        mtls: false,
      },
      ends: {
        'src.addr': srcAddr,
        'src.workload': source?.name,
        'src.namespace': source?.namespace,
        'dst.addr': dstAddr,
        'dst.service': service?.hostname,
        'dst.workload': destination.name,
        'dst.namespace': destination.namespace,
        direction: 'inbound',
      },
    };
    const policy: ConnectionContext = {
      srcIp,
      srcPort: socket.remotePort ?? 0,
      dstIp: target.address,
      dstPort: target.port,
      dstNetwork: destination.network,
    };
    const verdict = connections.authorize(policy);
    if (!verdict.allowed) {
      connections.refuse(connection, started, ResponseFlag.denied, policyRejection(verdict));
      socket.destroy();
      return;
    }
    let upstream: Socket;
    try {
      upstream = await whenConnected(
        sockets.connect({
          host: target.address,
          port: target.port,
          sourceIp: this.#i.spoofSource ? srcIp : undefined,
        }),
        this.#i.limits.upstreamConnectTimeoutMs,
      );
    } catch (err) {
      connections.refuse(connection, started, ResponseFlag.connectFailed, errorMessage(err));
      socket.destroy();
      return;
    }
    // Returned, not awaited: this frame need not stay suspended for the connection's life.
    return connections.relay(connection, { client: socket, upstream, started, policy });
  }
}
