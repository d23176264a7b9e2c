/**
 * WorkloadEntry (a VM or other non-Kubernetes host) → validated domain type → WDS `Workload`,
 * with the pods' identity model: the identity is `spiffe://<trust domain>/ns/<namespace>/sa/<serviceAccount>`,
 * carried as `serviceAccount` plus namespace. The uid is `<cluster>/networking.istio.io/WorkloadEntry/<ns>/<name>`.
 *
 * Services and ServiceEntries of the same namespace whose selector matches the entry's labels
 * (metadata labels, overridden by `spec.labels`) list it as an endpoint, as upstream does with its
 * default `PILOT_ENABLE_K8S_SELECT_WORKLOAD_ENTRIES`.
 */
import type { Service as KubeService, WorkloadEntry } from '../kube/objects.ts';
import { mapSelectorMatches } from '../kube/objects.ts';
import {
  endpointIdentity,
  serviceEntryPortsFor,
  serviceEntryResourceName,
  tunnelOf,
  validateEndpoint,
  type ValidEndpoint,
  type ValidServiceEntry,
} from './service-entry.ts';
import { serviceResourceName } from './service.ts';
import type { Validated } from './source-issues.ts';
import { canonicalService } from './workload.ts';
import { workload as wire } from '@ambient-mesh/xds-types';

const { WorkloadType } = wire;
type Workload = wire.WorkloadInit;
type Port = wire.PortInit;
type GatewayAddress = wire.GatewayAddressInit;

export const AUTO_REGISTRATION_GROUP_ANNOTATION = 'istio.io/autoRegistrationGroup';
export const WORKLOAD_NAME_LABEL = 'service.istio.io/workload-name';

export interface ValidWorkloadEntry {
  readonly namespace: string;
  readonly name: string;
  /** Metadata labels with `spec.labels` on top: what selectors match. */
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly endpoint: ValidEndpoint;
}

export function validateWorkloadEntry(we: WorkloadEntry): Validated<ValidWorkloadEntry> {
  const v = validateEndpoint(we.spec ?? {}, 'spec', { allowHostname: true });
  if (!v.ok) return v;
  const meta = we.metadata ?? {};
  return {
    ok: true,
    value: {
      namespace: meta.namespace ?? '',
      name: meta.name ?? '',
      labels: { ...(meta.labels ?? {}), ...v.value.labels },
      annotations: { ...(meta.annotations ?? {}) },
      endpoint: v.value,
    },
  };
}

/** `<cluster>/networking.istio.io/WorkloadEntry/<ns>/<name>`. */
export function workloadEntryUid(clusterId: string, namespace: string, name: string): string {
  return `${clusterId}/networking.istio.io/WorkloadEntry/${namespace}/${name}`;
}

/** The auto-registration group, else the `service.istio.io/workload-name` label, else the name. */
export function workloadEntryWorkloadName(we: ValidWorkloadEntry): string {
  return we.annotations[AUTO_REGISTRATION_GROUP_ANNOTATION] ?? we.labels[WORKLOAD_NAME_LABEL] ?? we.name;
}

export interface WorkloadEntryInputs {
  readonly clusterId: string;
  readonly trustDomain: string;
  readonly domain: string;
  readonly network?: string;
  /** Services of the entry's namespace; only those whose selector matches are used. */
  readonly services: Iterable<KubeService>;
  /** ServiceEntries of the entry's namespace; only those whose workloadSelector matches are used. */
  readonly serviceEntries: Iterable<ValidServiceEntry>;
  readonly authorizationPolicies: readonly string[];
  readonly waypoint: GatewayAddress | undefined;
}

export function buildWorkloadEntryWorkload(we: ValidWorkloadEntry, inputs: WorkloadEntryInputs): Workload {
  const workloadName = workloadEntryWorkloadName(we);
  const [canonicalName, canonicalRevision] = canonicalService(we.labels, workloadName);
  const entries: [string, Port[]][] = [];
  for (const svc of inputs.services) {
    if (svc.metadata?.namespace !== we.namespace || !mapSelectorMatches(svc.spec?.selector, we.labels))
      continue;
    if (svc.spec?.type === 'ExternalName') continue;
    entries.push([serviceResourceName(svc, inputs.domain), kubeServicePortsFor(svc, we.endpoint.ports)]);
  }
  for (const se of inputs.serviceEntries) {
    if (se.namespace !== we.namespace || !mapSelectorMatches(se.workloadSelector, we.labels)) continue;
    for (const h of se.hosts)
      entries.push([serviceEntryResourceName(se.namespace, h), serviceEntryPortsFor(se, we.endpoint.ports)]);
  }
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const services: Record<string, { ports: Port[] }> = {};
  for (const [key, ports] of entries) services[key] ??= { ports };
  const w: Workload = {
    ...endpointIdentity(we.endpoint, inputs),
    uid: workloadEntryUid(inputs.clusterId, we.namespace, we.name),
    name: we.name,
    namespace: we.namespace,
    workloadName,
    workloadType: WorkloadType.POD,
    canonicalName,
    canonicalRevision,
    ...tunnelOf(we.labels, we.annotations),
    services,
    authorizationPolicies: [...inputs.authorizationPolicies],
  };
  if (inputs.waypoint !== undefined) w.waypoint = inputs.waypoint;
  return w;
}

/**
 * A Kubernetes Service's ports for a WorkloadEntry: a named targetPort maps through the entry's
 * `ports` (left out when the entry does not name it), a numeric one is used as is.
 */
export function kubeServicePortsFor(
  svc: KubeService,
  endpointPorts: Readonly<Record<string, number>>,
): Port[] {
  const out: Port[] = [];
  for (const p of svc.spec?.ports ?? []) {
    const target = p.targetPort ?? p.port;
    if (typeof target === 'number') {
      out.push({ servicePort: p.port, targetPort: target });
      continue;
    }
    const numeric = Number(target);
    if (target !== '' && Number.isInteger(numeric)) {
      out.push({ servicePort: p.port, targetPort: numeric });
      continue;
    }
    const resolved = endpointPorts[target];
    if (resolved !== undefined) out.push({ servicePort: p.port, targetPort: resolved });
  }
  return out;
}
