/**
 * The destination service of an inbound connection, for the `destination_service*` labels and
 * `dst.service` of the destination reporter (upstream's `guess_inbound_service`).
 *
 * The candidates are only the services the local workload belongs to (from WDS), so a client
 * cannot make ztunnel report an arbitrary service:
 * 1. the service named by the client's `forwarded` `host=` (set for service-addressed traffic);
 * 2. otherwise the first service with a port whose target port is the port the client reached.
 */
import type { ProxyStateReader } from '../state/proxy-state.ts';
import type { Service, Workload } from '../state/types.ts';
import { targetPort } from './route.ts';

export function guessInboundService(
  state: ProxyStateReader,
  destination: Workload,
  forwardedHost: string | undefined,
  dstPort: number,
): Service | undefined {
  const candidates = Object.entries(destination.services).flatMap(([key, ports]) => {
    const service = state.serviceByKey(key);
    return service === undefined ? [] : [{ service, endpoint: { workload: destination, ports } }];
  });
  if (forwardedHost !== undefined) {
    const named = candidates.find(c => c.service.hostname === forwardedHost);
    if (named !== undefined) return named.service;
  }
  return candidates.find(({ service, endpoint }) =>
    service.ports.some(p => targetPort(service, endpoint, p.servicePort) === dstPort),
  )?.service;
}
