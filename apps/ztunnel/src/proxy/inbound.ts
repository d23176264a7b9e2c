/**
 * Inbound HBONE (15008) of one pod (upstream ztunnel's `inbound.rs`): `@ambient-mesh/proxy-core`'s
 * `InboundHbone` (authority, self-call and policy checks, dial, tracking) given what only ztunnel
 * knows: the pod's WDS workload and services (to describe the connection), its certificate, and
 * its sockets (delivery to the app from the client's IP).
 */
import { formatSocketAddress, parseForwardedHost } from '@ambient-mesh/hbone';
import type { ConnectRequest } from '@ambient-mesh/hbone';
import { InboundHbone } from '@ambient-mesh/proxy-core';
import type { InboundClassification } from '@ambient-mesh/proxy-core';
import { errorMessage } from '@ambient-mesh/errors';
import type { ZtunnelConnection } from './connection-sink.ts';
import { guessInboundService } from './inbound-service.ts';
import { whenConnected } from './pod-sockets.ts';
import type { PodInputs } from './proxy-inputs.ts';
import type { ConnectionContext } from './rbac.ts';
import { PROXY_PORTS, inboundWaypointHop } from './route.ts';
import { podSecureContext } from './secure-context.ts';

export type PodInbound = InboundHbone<ZtunnelConnection, ConnectionContext>;

export function createInbound(inputs: PodInputs): PodInbound {
  const { sockets, spoofSource } = inputs;
  return new InboundHbone({
    connections: inputs.connections,
    secureContext: podSecureContext(inputs.local, inputs.certificates),
    classify: request => classify(inputs, request),
    dial: (request, signal) =>
      whenConnected(
        sockets.connect({
          host: request.ip,
          port: request.port,
          sourceIp: spoofSource ? request.sourceIp : undefined,
        }),
        inputs.limits.upstreamConnectTimeoutMs,
        signal,
      ),
    proxyPorts: PROXY_PORTS,
    proxyName: 'ztunnel',
    onError: err => {
      const code = (err as { code?: unknown }).code;
      inputs.logger.debug(
        { error: errorMessage(err), ...(typeof code === 'string' ? { code } : {}) },
        'inbound HBONE error',
      );
    },
    server: {
      handshakeTimeoutMs: inputs.limits.hboneHandshakeTimeoutMs,
      idleSessionTimeoutMs: inputs.limits.hboneIdleSessionTimeoutMs,
    },
  });
}

/** The destination reporter's description of a CONNECT to this pod. */
function classify(
  inputs: PodInputs,
  request: ConnectRequest,
): InboundClassification<ZtunnelConnection, ConnectionContext> {
  const { local: pod, state } = inputs;
  const local = pod.current();
  if (local === undefined)
    return { kind: 'unknown', error: `no WDS workload for ${pod.info.namespace}/${pod.info.name}` };
  const srcIp = request.remoteAddress.address;
  const forwarded = request.headers.forwarded;
  const service = guessInboundService(
    state,
    local,
    forwarded === undefined ? undefined : parseForwardedHost(forwarded),
    request.authority.port,
  );
  const source = state.workloadByAddress(local.network, srcIp);
  return {
    kind: 'known',
    connection: {
      parties: {
        reporter: 'destination',
        source,
        sourcePrincipal: request.peerIdentity,
        destination: local,
        destinationPrincipal: local.identity,
        service,
        mtls: true,
      },
      ends: {
        'src.addr': formatSocketAddress(srcIp, request.remoteAddress.port),
        'src.workload': source?.name,
        'src.namespace': source?.namespace,
        'src.identity': request.peerIdentity,
        'dst.addr': formatSocketAddress(request.localAddress.address, request.localAddress.port),
        'dst.hbone_addr': request.rawAuthority,
        'dst.service': service?.hostname,
        'dst.workload': local.name,
        'dst.namespace': local.namespace,
        'dst.identity': local.identity,
        waypoint: inboundWaypointHop(state, local, {
          identity: request.peerIdentity,
          addresses: [srcIp],
        }),
        direction: 'inbound',
      },
    },
    // An application tunnel (e.g. a waypoint pod) is reached at an address other than its own.
    anyAuthorityIp: local.applicationTunnel !== undefined,
    policy: target => ({
      srcIp,
      srcPort: request.remoteAddress.port,
      dstIp: target.ip,
      dstPort: target.port,
      srcIdentity: request.peerIdentity,
      dstNetwork: local.network,
    }),
  };
}
