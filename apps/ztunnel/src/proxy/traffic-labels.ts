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

/** Stands for an absent workload or service in the cache's keys. */
const NONE = {};

/**
 * Label sets by the parties' objects (source → destination → service) and the rest as text. WDS
 * replaces a workload or service object when it changes, so an object's labels never go stale, and
 * a replaced object's entries go with it.
 */
const cache = new WeakMap<object, WeakMap<object, WeakMap<object, Map<string, TrafficLabels>>>>();

/**
 * The traffic labels of a connection between these parties. Connections between the same parties
 * share one frozen label set: built once, not on every connection.
 */
export function connectionLabels(parties: ConnectionParties, flags: ResponseFlags = '-'): TrafficLabels {
  let bySource = cache.get(parties.source ?? NONE);
  if (bySource === undefined) {
    bySource = new WeakMap();
    cache.set(parties.source ?? NONE, bySource);
  }
  let byDestination = bySource.get(parties.destination ?? NONE);
  if (byDestination === undefined) {
    byDestination = new WeakMap();
    bySource.set(parties.destination ?? NONE, byDestination);
  }
  let byRest = byDestination.get(parties.service ?? NONE);
  if (byRest === undefined) {
    byRest = new Map();
    byDestination.set(parties.service ?? NONE, byRest);
  }
  const key = `${parties.reporter} ${parties.sourcePrincipal ?? ''} ${parties.destinationPrincipal ?? ''} ${parties.mtls ? 1 : 0} ${flags}`;
  let labels = byRest.get(key);
  if (labels === undefined) {
    labels = Object.freeze(buildLabels(parties, flags));
    byRest.set(key, labels);
  }
  return labels;
}

function buildLabels(parties: ConnectionParties, flags: ResponseFlags): TrafficLabels {
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
