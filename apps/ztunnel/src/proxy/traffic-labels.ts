/** Builds the docs/protocols.md#ztunnel-metrics traffic labels of one connection from the workloads at both ends. */
import { trafficLabels } from '../metrics.ts';
import type { Reporter, ResponseFlags, TrafficLabelName, TrafficLabels } from '../metrics.ts';
import type { Service, Workload } from '../state/types.ts';

function side(
  prefix: 'source' | 'destination',
  w: Workload | undefined,
): Partial<Record<TrafficLabelName, string>> {
  if (w === undefined) return {};
  return {
    [`${prefix}_workload`]: w.workloadName === '' ? w.name : w.workloadName,
    [`${prefix}_canonical_service`]: w.canonicalName,
    [`${prefix}_canonical_revision`]: w.canonicalRevision,
    [`${prefix}_workload_namespace`]: w.namespace,
    [`${prefix}_app`]: w.canonicalName,
    [`${prefix}_version`]: w.canonicalRevision,
    [`${prefix}_cluster`]: w.clusterId,
    [`${prefix}_region`]: w.locality.region,
    [`${prefix}_zone`]: w.locality.zone,
  };
}

export interface ConnectionParties {
  readonly reporter: Reporter;
  readonly source: Workload | undefined;
  readonly sourcePrincipal: string | undefined;
  readonly destination: Workload | undefined;
  readonly destinationPrincipal: string | undefined;
  readonly service: Service | undefined;
  readonly mtls: boolean;
}

export function connectionLabels(parties: ConnectionParties, flags: ResponseFlags = '-'): TrafficLabels {
  return trafficLabels({
    reporter: parties.reporter,
    ...side('source', parties.source),
    source_principal: parties.sourcePrincipal,
    ...side('destination', parties.destination),
    destination_principal: parties.destinationPrincipal,
    destination_service: parties.service?.hostname,
    destination_service_namespace: parties.service?.namespace,
    destination_service_name: parties.service?.name,
    response_flags: flags,
    connection_security_policy: parties.mtls ? 'mutual_tls' : 'unknown',
  });
}
