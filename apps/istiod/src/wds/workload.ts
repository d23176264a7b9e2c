/**
 * Pod → WDS `Workload`, as a pure function of the pod and what it depends on (its node, the
 * Services selecting it, its selector-scoped policies, its waypoint). Fields follow the wire
 * reference docs/protocols.md#wds-workload-api; the uid is `<clusterID>//Pod/<ns>/<name>` (docs/protocols.md#wds-resource-names).
 */
import type { Node, Pod, Service } from '../kube/objects.ts';
import { mapSelectorMatches } from '../kube/objects.ts';
import { ipToBytes } from './ip.ts';
import { serviceResourceName } from './service.ts';
import { Annotation, Label, REDIRECTION_ENABLED, WellKnown } from '@ambient-mesh/mesh-api';
import { workload as wire } from '@ambient-mesh/xds-types';

const { NetworkMode, TunnelProtocol, WorkloadStatus, WorkloadType } = wire;
type GatewayAddress = wire.GatewayAddressInit;
type Locality = wire.LocalityInit;
type Port = wire.PortInit;
type Workload = wire.WorkloadInit;

export const REDIRECTION_ANNOTATION = Annotation.redirection;
export const TUNNEL_LABEL = Label.tunnel;
export const DEFAULT_TRUST_DOMAIN = WellKnown.trustDomain;

export interface WorkloadInputs {
  readonly clusterId: string;
  readonly trustDomain: string;
  readonly domain: string;
  readonly network?: string;
  /** The pod's node, for locality; undefined when unknown. */
  readonly node: Node | undefined;
  /** Services of the pod's namespace; only those whose selector matches the pod are used. */
  readonly services: Iterable<Service>;
  /** Selector-scoped policy names (`ns/name`) that apply to this pod, already filtered. */
  readonly authorizationPolicies: readonly string[];
  readonly waypoint: GatewayAddress | undefined;
  /** Services whose EndpointSlices list the pod by targetRef (selector-less Services); used as if selecting. */
  readonly sliceServices?: Iterable<Service>;
  /** ServiceEntry Services whose workloadSelector matches the pod: resource name → ports. */
  readonly entryServices?: Readonly<Record<string, readonly Port[]>>;
}

/** `<clusterID>//Pod/<ns>/<name>`. */
export function podUid(clusterId: string, namespace: string, name: string): string {
  return `${clusterId}//Pod/${namespace}/${name}`;
}

/** True when istiod publishes a Workload for the pod: it has an IP and is not terminal. */
export function podHasWorkload(pod: Pod): boolean {
  const phase = pod.status?.phase;
  if (phase === 'Succeeded' || phase === 'Failed') return false;
  return podIps(pod).length > 0;
}

/** The Workload for a pod, or undefined when the pod has no WDS representation (see podHasWorkload). */
export function buildPodWorkload(pod: Pod, inputs: WorkloadInputs): Workload | undefined {
  if (!podHasWorkload(pod)) return undefined;
  const meta = pod.metadata ?? {};
  const name = meta.name ?? '';
  const namespace = meta.namespace ?? '';
  const labels = meta.labels ?? {};
  const annotations = meta.annotations ?? {};
  const workloadName = podWorkloadName(pod);
  const [canonicalName, canonicalRevision] = canonicalService(labels, workloadName);
  const tunnel = (labels[TUNNEL_LABEL] ?? '').split(',').map(s => s.trim());
  const nativeTunnel = tunnel.includes('http');
  const hbone = annotations[REDIRECTION_ANNOTATION] === REDIRECTION_ENABLED || nativeTunnel;
  const workload: Workload = {
    uid: podUid(inputs.clusterId, namespace, name),
    name,
    namespace,
    addresses: podIps(pod).map(ip => ipToBytes(ip)!),
    hostname: '',
    network: inputs.network ?? '',
    tunnelProtocol: hbone ? TunnelProtocol.HBONE : TunnelProtocol.NONE,
    trustDomain: inputs.trustDomain === DEFAULT_TRUST_DOMAIN ? '' : inputs.trustDomain,
    serviceAccount: pod.spec?.serviceAccountName ?? 'default',
    node: pod.spec?.nodeName ?? '',
    canonicalName,
    canonicalRevision,
    workloadType: WorkloadType.POD,
    workloadName,
    nativeTunnel,
    services: podServices(pod, inputs),
    authorizationPolicies: [...inputs.authorizationPolicies],
    status:
      podReady(pod) && meta.deletionTimestamp === undefined
        ? WorkloadStatus.HEALTHY
        : WorkloadStatus.UNHEALTHY,
    clusterId: inputs.clusterId,
    networkMode: pod.spec?.hostNetwork === true ? NetworkMode.HOST_NETWORK : NetworkMode.STANDARD,
  };
  if (inputs.waypoint !== undefined) workload.waypoint = inputs.waypoint;
  const locality = nodeLocality(inputs.node);
  if (locality !== undefined) workload.locality = locality;
  return workload;
}

/** Pod IPs in status order (`podIPs`, else `podIP`), only parsable ones. */
export function podIps(pod: Pod): string[] {
  const listed = (pod.status?.podIPs ?? []).map(p => p.ip ?? '').filter(ip => ip !== '');
  const ips = listed.length > 0 ? listed : [pod.status?.podIP ?? ''];
  return ips.filter(ip => ipToBytes(ip) !== undefined);
}

function podReady(pod: Pod): boolean {
  return (pod.status?.conditions ?? []).some(c => c.type === 'Ready' && c.status === 'True');
}

const CRONJOB_JOB_NAME = /^(.+)-\d{8,10}$/;

/**
 * The workload name, by upstream's rules (`GetDeployMetaFromPod`): only a pod with a
 * `generateName` (made by a controller) is named after its controlling owner — a ReplicaSet
 * after its Deployment or Argo Rollout (the `-<hash>` suffix stripped), a ReplicationController
 * of an OpenShift DeploymentConfig after the `deploymentconfig` label, a Job created by a
 * CronJob after the CronJob, any other controller by its own name. Otherwise the pod name.
 */
export function podWorkloadName(pod: Pod): string {
  const meta = pod.metadata ?? {};
  const podName = meta.name ?? '';
  if ((meta.generateName ?? '') === '') return podName;
  const ref = (meta.ownerReferences ?? []).find(o => o.controller === true);
  if (ref === undefined) return podName;
  const labels = meta.labels ?? {};
  const trimHash = (hash: string | undefined): string | undefined =>
    hash !== undefined && hash !== '' && ref.name.endsWith(hash)
      ? ref.name.endsWith(`-${hash}`)
        ? ref.name.slice(0, -hash.length - 1)
        : ref.name
      : undefined;
  let name = ref.name;
  if (ref.kind === 'ReplicaSet') {
    name =
      trimHash(labels['pod-template-hash']) ?? trimHash(labels['rollouts-pod-template-hash']) ?? ref.name;
  } else if (ref.kind === 'ReplicationController' && (labels.deploymentconfig ?? '') !== '') {
    name = labels.deploymentconfig!;
  } else if (ref.kind === 'Job') {
    name = CRONJOB_JOB_NAME.exec(ref.name)?.[1] ?? ref.name;
  }
  return name === '' ? podName : name;
}

/** Canonical service name and revision from the usual label fallbacks. */
export function canonicalService(
  labels: Readonly<Record<string, string>>,
  workloadName: string,
): [string, string] {
  const name = labels[Label.canonicalName] ?? labels[Label.appName] ?? labels[Label.app] ?? workloadName;
  const revision =
    labels[Label.canonicalRevision] ?? labels[Label.appVersion] ?? labels[Label.version] ?? 'latest';
  return [name, revision];
}

function podServices(pod: Pod, inputs: WorkloadInputs): Record<string, { ports: Port[] }> {
  const domain = inputs.domain;
  const labels = pod.metadata?.labels ?? {};
  const selecting: Service[] = [];
  for (const svc of inputs.services) {
    if (svc.metadata?.namespace !== pod.metadata?.namespace) continue;
    if (mapSelectorMatches(svc.spec?.selector, labels)) selecting.push(svc);
  }
  for (const svc of inputs.sliceServices ?? []) if (!selecting.includes(svc)) selecting.push(svc);
  // Sorted keys keep the record's JSON canonical (see contentVersion).
  const named: (readonly [string, Service | readonly Port[]])[] = selecting.map(
    svc => [serviceResourceName(svc, domain), svc] as const,
  );
  for (const [key, ports] of Object.entries(inputs.entryServices ?? {}))
    if (!named.some(([k]) => k === key)) named.push([key, ports]);
  named.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const out: Record<string, { ports: Port[] }> = {};
  for (const [key, svc] of named) {
    if (Array.isArray(svc)) {
      out[key] = { ports: (svc as readonly Port[]).map(p => ({ ...p })) };
      continue;
    }
    if (!isKubeService(svc)) continue;
    const ports: { ports: Port[] } = { ports: [] };
    for (const p of svc.spec?.ports ?? []) {
      if (p.protocol !== undefined && p.protocol !== 'TCP' && p.protocol !== 'UDP' && p.protocol !== 'SCTP')
        continue;
      const target = p.targetPort ?? p.port;
      if (typeof target === 'number') {
        ports.ports.push({ servicePort: p.port, targetPort: target });
        continue;
      }
      const numeric = Number(target);
      if (target !== '' && Number.isInteger(numeric)) {
        ports.ports.push({ servicePort: p.port, targetPort: numeric });
        continue;
      }
      const resolved = namedContainerPort(pod, target);
      // A named port the pod does not declare is left out for this workload.
      if (resolved !== undefined) ports.ports.push({ servicePort: p.port, targetPort: resolved });
    }
    out[key] = ports;
  }
  return out;
}

function isKubeService(svc: Service | readonly Port[]): svc is Service {
  return !Array.isArray(svc);
}

function namedContainerPort(pod: Pod, name: string): number | undefined {
  for (const c of [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])]) {
    for (const p of c.ports ?? []) if (p.name === name) return p.containerPort;
  }
  return undefined;
}

/** Region/zone/subzone from the node's topology labels; undefined when none is set. */
export function nodeLocality(node: Node | undefined): Locality | undefined {
  const labels = node?.metadata?.labels ?? {};
  const region = labels[Label.region] ?? '';
  const zone = labels[Label.zone] ?? '';
  const subzone = labels[Label.subzone] ?? '';
  if (region === '' && zone === '' && subzone === '') return undefined;
  return { region, zone, subzone };
}
