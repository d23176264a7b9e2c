/**
 * EndpointSlice → WDS, as upstream istiod's ambient index does it:
 *
 * - an endpoint whose `targetRef` is a Pod is the pod's own Workload; the slice only tells which
 *   Services without a selector (or not selecting it) the pod backs, when the targetRef's uid is
 *   the pod's (Kubernetes' controller always sets it; a hand-written slice must too);
 * - any other endpoint (a manually written slice, `default/kubernetes`'s apiserver address)
 *   becomes a Workload of its own, uid `<cluster>/discovery.k8s.io/EndpointSlice/<ns>/<slice>/<ip>`,
 *   host-network mode (the address may be shared), no identity, healthy unless `ready: false`,
 *   serving the slice's Service on the slice's TCP ports, matched to Service ports by name.
 *
 * Slices without the `kubernetes.io/service-name` label, FQDN slices and endpoints with an
 * unparsable address are left out, as upstream does.
 */
import type { EndpointSlice, Service as KubeService } from '../kube/objects.ts';
import { ipToBytes } from './ip.ts';
import { serviceResourceName } from './service.ts';
import { issue, SourceIssueCode, type SourceIssue, type Validated } from './source-issues.ts';
import { DEFAULT_TRUST_DOMAIN } from './workload.ts';
import { workload as wire } from '@ambient-mesh/xds-types';

const { NetworkMode, TunnelProtocol, WorkloadStatus, WorkloadType } = wire;
type Workload = wire.WorkloadInit;
type Port = wire.PortInit;

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

export interface SlicePort {
  readonly name: string;
  readonly port: number;
  readonly protocol: string;
}

export interface SliceEndpoint {
  /** The first address (Kubernetes puts one family per slice). */
  readonly address: string;
  readonly ready: boolean;
  /** `namespace/name` of the Pod the endpoint is, when its targetRef is a Pod. */
  readonly pod?: string;
  /** The targetRef's uid: the pod counts only when it matches (as upstream's index keys it). */
  readonly podUid?: string;
}

/** A validated EndpointSlice of a Service. */
export interface ValidEndpointSlice {
  readonly namespace: string;
  readonly name: string;
  readonly serviceName: string;
  readonly ports: readonly SlicePort[];
  readonly endpoints: readonly SliceEndpoint[];
  /** Endpoints left out (unparsable address, duplicate), for logs. */
  readonly skipped: readonly SourceIssue[];
}

/**
 * The slice as istiod uses it; `ok: false` when it does not belong to a Service or is FQDN-typed
 * (nothing of it reaches WDS; errors say why).
 */
export function validateEndpointSlice(slice: EndpointSlice): Validated<ValidEndpointSlice> {
  const namespace = slice.metadata?.namespace ?? '';
  const name = slice.metadata?.name ?? '';
  const serviceName = slice.metadata?.labels?.[SERVICE_NAME_LABEL];
  if (serviceName === undefined || serviceName === '') {
    return {
      ok: false,
      errors: [
        issue(
          SourceIssueCode.MISSING_FIELD,
          `metadata.labels["${SERVICE_NAME_LABEL}"]`,
          'the slice names no Service, so istiod ignores it',
        ),
      ],
    };
  }
  if (slice.addressType === 'FQDN') {
    return {
      ok: false,
      errors: [issue(SourceIssueCode.INVALID_ADDRESS, 'addressType', 'FQDN slices are not supported')],
    };
  }
  const ports: SlicePort[] = [];
  for (const p of slice.ports ?? []) {
    if (p.name === undefined || p.port === undefined) continue;
    ports.push({ name: p.name, port: p.port, protocol: p.protocol ?? 'TCP' });
  }
  const endpoints: SliceEndpoint[] = [];
  const skipped: SourceIssue[] = [];
  const seen = new Set<string>();
  (slice.endpoints ?? []).forEach((ep, i) => {
    const addresses = ep.addresses ?? [];
    const address = addresses[0];
    if (address === undefined) return;
    const bad = addresses.findIndex(a => ipToBytes(a) === undefined);
    if (bad !== -1) {
      skipped.push(
        issue(
          SourceIssueCode.INVALID_ADDRESS,
          `endpoints[${i}].addresses[${bad}]`,
          `"${addresses[bad]}" is not an IP address`,
        ),
      );
      return;
    }
    const ref = ep.targetRef;
    const pod = ref?.kind === 'Pod' ? `${ref.namespace ?? namespace}/${ref.name ?? ''}` : undefined;
    if (pod === undefined) {
      if (seen.has(address)) {
        skipped.push(
          issue(
            SourceIssueCode.INVALID_ADDRESS,
            `endpoints[${i}].addresses[0]`,
            `${address} is listed twice`,
          ),
        );
        return;
      }
      seen.add(address);
    }
    endpoints.push({
      address,
      ready: ep.conditions?.ready !== false,
      ...(pod === undefined ? {} : { pod, podUid: ref?.uid ?? '' }),
    });
  });
  return { ok: true, value: { namespace, name, serviceName, ports, endpoints, skipped } };
}

/** `<cluster>/discovery.k8s.io/EndpointSlice/<ns>/<slice>/<ip>`. */
export function endpointSliceWorkloadUid(
  clusterId: string,
  slice: ValidEndpointSlice,
  address: string,
): string {
  return `${clusterId}/discovery.k8s.io/EndpointSlice/${slice.namespace}/${slice.name}/${address}`;
}

export interface EndpointSliceInputs {
  readonly clusterId: string;
  readonly trustDomain: string;
  readonly domain: string;
  readonly network?: string;
}

/**
 * The Workloads of a slice's non-pod endpoints, by uid. Empty when its Service is unknown (or
 * an ExternalName Service, which has no WDS Service).
 */
export function buildEndpointSliceWorkloads(
  slice: ValidEndpointSlice,
  service: KubeService | undefined,
  inputs: EndpointSliceInputs,
): Map<string, Workload> {
  const out = new Map<string, Workload>();
  if (service === undefined || service.spec?.type === 'ExternalName') return out;
  const ports: Port[] = [];
  for (const p of slice.ports) {
    if (p.protocol !== 'TCP') continue;
    const svcPort = (service.spec?.ports ?? []).find(sp => (sp.name ?? '') === p.name);
    if (svcPort !== undefined) ports.push({ servicePort: svcPort.port, targetPort: p.port });
  }
  const serviceKey = serviceResourceName(service, inputs.domain);
  for (const ep of slice.endpoints) {
    if (ep.pod !== undefined) continue;
    const uid = endpointSliceWorkloadUid(inputs.clusterId, slice, ep.address);
    out.set(uid, {
      uid,
      name: slice.name,
      namespace: slice.namespace,
      addresses: [ipToBytes(ep.address)!],
      network: inputs.network ?? '',
      tunnelProtocol: TunnelProtocol.NONE,
      trustDomain: inputs.trustDomain === DEFAULT_TRUST_DOMAIN ? '' : inputs.trustDomain,
      workloadType: WorkloadType.DEPLOYMENT,
      services: { [serviceKey]: { ports: ports.map(p => ({ ...p })) } },
      status: ep.ready ? WorkloadStatus.HEALTHY : WorkloadStatus.UNHEALTHY,
      clusterId: inputs.clusterId,
      networkMode: NetworkMode.HOST_NETWORK,
    });
  }
  return out;
}
