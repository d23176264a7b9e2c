/**
 * The incremental WDS index: the single writer of istiod's mesh state.
 *
 * Informers feed it Kubernetes objects; it keeps the generated `Address` and `Authorization`
 * resources with content versions, and recomputes only what an event touches:
 *
 * | event               | recomputed                                                         |
 * |---------------------|--------------------------------------------------------------------|
 * | Pod                 | that pod's Workload                                                |
 * | Service             | the Service, and pods of its namespace its old or new selector picks |
 * | Namespace           | its Services and pods (namespace waypoint label)                   |
 * | Node                | pods on that node (locality)                                       |
 * | AuthorizationPolicy | the Authorization, and pods its old or new selector picks          |
 * | PeerAuthentication  | the static STRICT policy, and pods of its namespace (all for root) |
 * | Gateway             | Services and pods bound to that waypoint                           |
 * | EndpointSlice       | its non-pod endpoint Workloads, and the pods it lists              |
 * | ServiceEntry        | its Services and endpoint Workloads, entries sharing a host or     |
 * |                     | address, pods and WorkloadEntries its old or new selector picks    |
 * | WorkloadEntry       | that entry's Workload                                              |
 *
 * Non-pod sources are converted to validated domain types (`endpoint-slice.ts`,
 * `service-entry.ts`, `workload-entry.ts`) before anything is built from them; an invalid one
 * is kept out of WDS and reported through `onSourceStatus`. ServiceEntry VIPs are allocated
 * here (the allocator's single writer) and written to the entry's status by the caller.
 *
 * Every mutation returns a `ChangeSet` of resource names whose content changed or that were
 * removed; listeners get the same set after the state is committed.
 */
import type {
  AuthorizationPolicy,
  EndpointSlice,
  Gateway,
  KubeObject,
  Namespace,
  Node,
  PeerAuthentication,
  Pod,
  Service as KubeService,
  ServiceEntry,
  WorkloadEntry,
} from '../kube/objects.ts';
import { mapSelectorMatches, objectKey } from '../kube/objects.ts';
import { CrdResource, TypeUrl } from '@ambient-mesh/mesh-api';
import type { security, workload as wire } from '@ambient-mesh/xds-types';
import type { PeerAuthentication as ValidPeerAuthentication } from '@ambient-mesh/policy-engine';
import type { CompiledPolicy, PolicyCompiler, PolicyIssue } from './policies.ts';
import {
  peerAuthenticationAuthorizations,
  peerAuthenticationKeysForPod,
  policySelectsPod,
  validatePeerAuthenticationObject,
} from './policies.ts';
import { contentVersion } from './resource-version.ts';
import { buildService, serviceResourceName } from './service.ts';
import {
  bindWaypoint,
  NO_WAYPOINT,
  type BindingTargetKind,
  type WaypointBinding,
} from '../gateway/binding.ts';
import { resolveWaypoint, waypointRefFor, type WaypointLookup } from './waypoint.ts';
import { buildPodWorkload, podUid } from './workload.ts';
import {
  buildEndpointSliceWorkloads,
  validateEndpointSlice,
  type ValidEndpointSlice,
} from './endpoint-slice.ts';
import {
  buildServiceEntryService,
  buildServiceEntryWorkloads,
  serviceEntryPortsFor,
  serviceEntryResourceName,
  validateServiceEntry,
  type ValidServiceEntry,
} from './service-entry.ts';
import { issue, SourceIssueCode, type SourceIssue, type Validated } from './source-issues.ts';
import { VipAllocator, type AllocatedAddress } from './vip-allocator.ts';
import {
  buildWorkloadEntryWorkload,
  validateWorkloadEntry,
  workloadEntryUid,
  type ValidWorkloadEntry,
} from './workload-entry.ts';

export const TypeUrls = {
  ADDRESS: TypeUrl.address,
  AUTHORIZATION: TypeUrl.authorization,
} as const;
export type WdsTypeUrl = (typeof TypeUrls)[keyof typeof TypeUrls];

export const ObjectKinds = {
  POD: 'Pod',
  SERVICE: 'Service',
  NAMESPACE: 'Namespace',
  NODE: 'Node',
  AUTHORIZATION_POLICY: CrdResource.AuthorizationPolicy.kind,
  PEER_AUTHENTICATION: CrdResource.PeerAuthentication.kind,
  GATEWAY: CrdResource.Gateway.kind,
  ENDPOINT_SLICE: 'EndpointSlice',
  SERVICE_ENTRY: CrdResource.ServiceEntry.kind,
  WORKLOAD_ENTRY: CrdResource.WorkloadEntry.kind,
} as const;
export type ObjectKind = (typeof ObjectKinds)[keyof typeof ObjectKinds];

export interface WdsResource<T> {
  readonly name: string;
  readonly version: string;
  readonly value: T;
}

/** Names whose resource changed or disappeared, per type. */
export interface ChangeSet {
  readonly addresses: ReadonlySet<string>;
  readonly authorizations: ReadonlySet<string>;
}

export interface WdsIndexOptions {
  readonly clusterId: string;
  readonly trustDomain: string;
  readonly domain: string;
  readonly rootNamespace: string;
  readonly network?: string;
  readonly compilePolicy: PolicyCompiler;
  /** Called after each AuthorizationPolicy compile, for logs and status (errors empty when valid). */
  readonly onPolicyCompiled?: (policy: AuthorizationPolicy, result: CompiledPolicy) => void;
  /** Called for each PeerAuthentication that fails validation (it is then ignored). */
  readonly onPeerAuthenticationInvalid?: (pa: PeerAuthentication, errors: readonly PolicyIssue[]) => void;
  /**
   * Called after each ServiceEntry or WorkloadEntry is evaluated: its issues (empty when it was
   * applied) and, for ServiceEntries that get VIPs, the `status.addresses` it should carry
   * (undefined when its status already does).
   */
  readonly onSourceStatus?: (report: SourceStatusReport) => void;
  /** Called when a ServiceEntry or WorkloadEntry was deleted: its status is no longer wanted. */
  readonly onSourceDeleted?: (kind: SourceStatusReport['kind'], namespace: string, name: string) => void;
  /** Called for an EndpointSlice ignored as a whole or in part (issues say why). */
  readonly onEndpointSliceIssues?: (slice: EndpointSlice, issues: readonly SourceIssue[]) => void;
  /**
   * Called with each Service's, pod's and ServiceEntry's waypoint binding whenever it is recomputed (`obj`
   * undefined and binding `none` when the object was deleted): the waypoint status writer and
   * the `WaypointBindings` index listen here.
   */
  readonly onWaypointBinding?: (target: WaypointBindingTarget, binding: WaypointBinding) => void;
  /** A GatewayClass's labels (its `istio.io/waypoint-for` default), when GatewayClasses are watched. */
  readonly gatewayClassLabels?: (name: string) => Readonly<Record<string, string>> | undefined;
}

export interface SourceStatusReport {
  readonly kind: 'ServiceEntry' | 'WorkloadEntry';
  readonly object: ServiceEntry | WorkloadEntry;
  readonly issues: readonly SourceIssue[];
  readonly addresses?: readonly AllocatedAddress[];
}

export type { BindingTargetKind };

/** A Service, pod or ServiceEntry whose waypoint binding was computed; `key` is `namespace/name`. */
export interface WaypointBindingTarget {
  readonly kind: BindingTargetKind;
  readonly key: string;
  readonly obj: KubeObject | undefined;
}

type Listener = (changes: ChangeSet) => void;
type Authorization = security.AuthorizationInit;
type Address = wire.AddressInit;

export class WdsIndex {
  readonly #opts: WdsIndexOptions;
  readonly #pods = new Map<string, Pod>();
  readonly #podsByNs = new Map<string, Set<string>>();
  readonly #podsByNode = new Map<string, Set<string>>();
  readonly #services = new Map<string, KubeService>();
  readonly #servicesByNs = new Map<string, Set<string>>();
  readonly #namespaces = new Map<string, Namespace>();
  readonly #nodes = new Map<string, Node>();
  readonly #gateways = new Map<string, Gateway>();
  readonly #policies = new Map<string, { obj: AuthorizationPolicy; compiled: CompiledPolicy }>();
  readonly #policiesByNs = new Map<string, Set<string>>();
  readonly #peerAuths = new Map<string, PeerAuthentication>();
  readonly #validPeerAuths = new Map<string, ValidPeerAuthentication>();
  #peerAuthAuthorizationNames = new Set<string>();
  readonly #slices = new Map<string, EndpointSlice>();
  readonly #validSlices = new Map<string, ValidEndpointSlice>();
  /** `ns/serviceName` → slice keys. */
  readonly #slicesByService = new Map<string, Set<string>>();
  /** Pod key → keys of slices listing it by targetRef. */
  readonly #slicesByPod = new Map<string, Set<string>>();
  readonly #sliceWorkloads = new Map<string, Set<string>>();
  readonly #entries = new Map<string, ServiceEntry>();
  readonly #parsedEntries = new Map<string, Validated<ValidServiceEntry>>();
  /** Valid entries without an address conflict: what WDS is built from. */
  readonly #liveEntries = new Map<string, ValidServiceEntry>();
  readonly #entriesByNs = new Map<string, Set<string>>();
  readonly #entryOutputs = new Map<string, Set<string>>();
  readonly #allocator = new VipAllocator();
  readonly #workloadEntries = new Map<string, WorkloadEntry>();
  readonly #validWorkloadEntries = new Map<string, ValidWorkloadEntry>();
  readonly #workloadEntriesByNs = new Map<string, Set<string>>();
  readonly #addresses = new Map<string, WdsResource<Address>>();
  readonly #authorizations = new Map<string, WdsResource<Authorization>>();
  readonly #listeners: Listener[] = [];
  readonly #lookup: WaypointLookup;
  // Pending change names for the mutation in progress.
  #changedAddresses = new Set<string>();
  #changedAuthorizations = new Set<string>();
  /** Entries displaced from a VIP while another was planned, planned again right after. */
  readonly #replanLater = new Set<string>();

  constructor(opts: WdsIndexOptions) {
    this.#opts = opts;
    this.#lookup = {
      gateway: (ns, name) => this.#gateways.get(`${ns}/${name}`),
      namespace: name => this.#namespaces.get(name),
      service: (ns, name) => this.#services.get(`${ns}/${name}`),
      ...(opts.gatewayClassLabels === undefined ? {} : { gatewayClassLabels: opts.gatewayClassLabels }),
    };
  }

  /** Resources of one type, keyed by resource name. */
  resources(typeUrl: WdsTypeUrl): ReadonlyMap<string, WdsResource<Address | Authorization>> {
    return typeUrl === TypeUrls.ADDRESS ? this.#addresses : this.#authorizations;
  }

  get addresses(): ReadonlyMap<string, WdsResource<Address>> {
    return this.#addresses;
  }

  get authorizations(): ReadonlyMap<string, WdsResource<Authorization>> {
    return this.#authorizations;
  }

  /** The Kubernetes Services the index holds (the debug `registryz` view and `pilot_services`). */
  services(): KubeService[] {
    return [...this.#services.values()] as KubeService[];
  }

  /** The Istio config objects the index holds (the debug `configz` view). */
  configs(): KubeObject[] {
    return [
      ...[...this.#policies.values()].map(p => p.obj),
      ...this.#peerAuths.values(),
      ...this.#entries.values(),
      ...this.#workloadEntries.values(),
    ];
  }

  /**
   * A ServiceEntry's waypoint binding (`ns/name` of the waypoint when bound); undefined when the
   * ServiceEntry is unknown (the `WaypointAccepted` condition of policies targeting it).
   */
  serviceEntryWaypoint(key: string): { readonly waypoint: string | undefined } | undefined {
    const se = this.#entries.get(key);
    if (se === undefined) return undefined;
    const b = bindWaypoint(se, 'service', this.#lookup);
    return { waypoint: b.kind === 'bound' ? `${b.waypoint.namespace}/${b.waypoint.name}` : undefined };
  }

  /** A pod by namespace and name (the cache the CA's node authorization reads). */
  getPod(namespace: string, name: string): Pod | undefined {
    return this.#pods.get(`${namespace}/${name}`);
  }

  /** Pods scheduled on a node. */
  *podsOnNode(nodeName: string): Iterable<Pod> {
    for (const key of this.#podsByNode.get(nodeName) ?? []) {
      const pod = this.#pods.get(key);
      if (pod !== undefined) yield pod;
    }
  }

  /** Registers a listener for committed changes; returns an unsubscribe function. */
  onChange(listener: Listener): () => void {
    this.#listeners.push(listener);
    return () => {
      const i = this.#listeners.indexOf(listener);
      if (i !== -1) this.#listeners.splice(i, 1);
    };
  }

  upsert(kind: ObjectKind, obj: KubeObject): ChangeSet {
    return this.#mutate(kind, obj, false);
  }

  delete(kind: ObjectKind, obj: KubeObject): ChangeSet {
    return this.#mutate(kind, obj, true);
  }

  /** Replaces every object of a kind (an informer relist): missing ones are deleted. */
  replaceAll(kind: ObjectKind, objs: readonly KubeObject[]): ChangeSet {
    const store = this.#storeOf(kind);
    const keep = new Set(objs.map(o => objectKey(o)));
    const addresses = new Set<string>();
    const authorizations = new Set<string>();
    const merge = (cs: ChangeSet): void => {
      for (const n of cs.addresses) addresses.add(n);
      for (const n of cs.authorizations) authorizations.add(n);
    };
    for (const [key, old] of [...store]) if (!keep.has(key)) merge(this.delete(kind, old));
    for (const o of objs) merge(this.upsert(kind, o));
    return { addresses, authorizations };
  }

  #storeOf(kind: ObjectKind): Map<string, KubeObject> {
    switch (kind) {
      case 'Pod':
        return this.#pods;
      case 'Service':
        return this.#services;
      case 'Namespace':
        return this.#namespaces;
      case 'Node':
        return this.#nodes;
      case 'Gateway':
        return this.#gateways;
      case 'PeerAuthentication':
        return this.#peerAuths;
      case 'AuthorizationPolicy':
        return new Map([...this.#policies].map(([k, v]) => [k, v.obj]));
      case 'EndpointSlice':
        return this.#slices;
      case 'ServiceEntry':
        return this.#entries;
      case 'WorkloadEntry':
        return this.#workloadEntries;
    }
  }

  #mutate(kind: ObjectKind, obj: KubeObject, deleted: boolean): ChangeSet {
    this.#changedAddresses = new Set();
    this.#changedAuthorizations = new Set();
    const key = objectKey(obj);
    switch (kind) {
      case 'Pod':
        this.#onPod(key, obj, deleted);
        break;
      case 'Service':
        this.#onService(key, obj, deleted);
        break;
      case 'Namespace':
        this.#onNamespace(key, obj, deleted);
        break;
      case 'Node':
        this.#onNode(key, obj, deleted);
        break;
      // The informer's kind says what a custom resource is (the API server validated it against
      // its CRD); the policy engine validates policy specs further.
      case 'AuthorizationPolicy':
        this.#onPolicy(key, obj as AuthorizationPolicy, deleted);
        break;
      case 'PeerAuthentication':
        this.#onPeerAuth(key, obj as PeerAuthentication, deleted);
        break;
      case 'Gateway':
        this.#onGateway(key, obj as Gateway, deleted);
        break;
      case 'EndpointSlice':
        this.#onEndpointSlice(key, obj, deleted);
        break;
      case 'ServiceEntry':
        this.#onServiceEntry(key, obj as ServiceEntry, deleted);
        break;
      case 'WorkloadEntry':
        this.#onWorkloadEntry(key, obj as WorkloadEntry, deleted);
        break;
    }
    const changes: ChangeSet = {
      addresses: this.#changedAddresses,
      authorizations: this.#changedAuthorizations,
    };
    if (changes.addresses.size > 0 || changes.authorizations.size > 0) {
      for (const l of [...this.#listeners]) l(changes);
    }
    return changes;
  }

  #onPod(key: string, pod: Pod, deleted: boolean): void {
    const old = this.#pods.get(key);
    if (old !== undefined) {
      indexRemove(this.#podsByNs, old.metadata?.namespace ?? '', key);
      indexRemove(this.#podsByNode, old.spec?.nodeName ?? '', key);
    }
    if (deleted) {
      this.#pods.delete(key);
    } else {
      this.#pods.set(key, pod);
      indexAdd(this.#podsByNs, pod.metadata?.namespace ?? '', key);
      indexAdd(this.#podsByNode, pod.spec?.nodeName ?? '', key);
    }
    this.#recomputePod(key, old ?? pod);
  }

  #onService(key: string, svc: KubeService, deleted: boolean): void {
    const old = this.#services.get(key);
    const ns = svc.metadata?.namespace ?? '';
    if (deleted) {
      this.#services.delete(key);
      indexRemove(this.#servicesByNs, ns, key);
    } else {
      this.#services.set(key, svc);
      indexAdd(this.#servicesByNs, ns, key);
    }
    this.#recomputeService(key, old ?? svc);
    for (const podKey of this.#podsByNs.get(ns) ?? []) {
      const labels = this.#pods.get(podKey)?.metadata?.labels ?? {};
      if (mapSelectorMatches(svc.spec?.selector, labels) || mapSelectorMatches(old?.spec?.selector, labels)) {
        this.#recomputePod(podKey);
      }
    }
    // Slices of the Service (their Workloads carry its ports), and the pods they list.
    for (const sliceKey of [...(this.#slicesByService.get(key) ?? [])]) {
      this.#recomputeSlice(sliceKey);
      for (const ep of this.#validSlices.get(sliceKey)?.endpoints ?? [])
        if (ep.pod !== undefined) this.#recomputePod(ep.pod);
    }
    for (const weKey of this.#workloadEntriesByNs.get(ns) ?? []) {
      const labels = this.#validWorkloadEntries.get(weKey)?.labels ?? {};
      if (mapSelectorMatches(svc.spec?.selector, labels) || mapSelectorMatches(old?.spec?.selector, labels))
        this.#recomputeWorkloadEntry(weKey);
    }
    // A Service wins its hostname over a ServiceEntry of the same namespace.
    const hostname = serviceResourceName(svc, this.#opts.domain);
    for (const entryKey of this.#entriesByNs.get(ns) ?? []) {
      const entry = this.#liveEntries.get(entryKey);
      if (entry?.hosts.some(h => serviceEntryResourceName(ns, h) === hostname) !== true) continue;
      this.#recomputeEntry(entryKey);
      this.#recomputeSelectedBy(ns, [entry.workloadSelector]);
    }
  }

  #onNamespace(key: string, ns: Namespace, deleted: boolean): void {
    if (deleted) this.#namespaces.delete(key);
    else this.#namespaces.set(key, ns);
    for (const svcKey of this.#servicesByNs.get(key) ?? []) this.#recomputeService(svcKey);
    for (const podKey of this.#podsByNs.get(key) ?? []) this.#recomputePod(podKey);
    for (const entryKey of this.#entriesByNs.get(key) ?? []) this.#recomputeEntry(entryKey);
    for (const weKey of this.#workloadEntriesByNs.get(key) ?? []) this.#recomputeWorkloadEntry(weKey);
  }

  #onNode(key: string, node: Node, deleted: boolean): void {
    if (deleted) this.#nodes.delete(key);
    else this.#nodes.set(key, node);
    for (const podKey of this.#podsByNode.get(key) ?? []) this.#recomputePod(podKey);
  }

  #onPolicy(key: string, policy: AuthorizationPolicy, deleted: boolean): void {
    const ns = policy.metadata?.namespace ?? '';
    const old = this.#policies.get(key);
    const root = this.#opts.rootNamespace;
    let compiled: CompiledPolicy | undefined;
    if (deleted) {
      this.#policies.delete(key);
      indexRemove(this.#policiesByNs, ns, key);
    } else {
      compiled = this.#opts.compilePolicy(policy, root);
      this.#opts.onPolicyCompiled?.(policy, compiled);
      this.#policies.set(key, { obj: policy, compiled });
      indexAdd(this.#policiesByNs, ns, key);
    }
    this.#setAuthorization(key, compiled?.authorization);
    const candidates =
      ns === root ? this.#pods.keys() : (this.#podsByNs.get(ns) ?? new Set<string>()).values();
    for (const podKey of [...candidates]) {
      const pod = this.#pods.get(podKey);
      if (pod === undefined) continue;
      const before = old !== undefined && policySelectsPod(old.compiled, ns, pod, root);
      const after = compiled !== undefined && policySelectsPod(compiled, ns, pod, root);
      if (before || after) this.#recomputePod(podKey);
    }
    this.#recomputeNonPodWorkloads(ns);
  }

  #onPeerAuth(key: string, pa: PeerAuthentication, deleted: boolean): void {
    const ns = pa.metadata?.namespace ?? '';
    this.#peerAuths.delete(key);
    this.#validPeerAuths.delete(key);
    if (!deleted) {
      this.#peerAuths.set(key, pa);
      const v = validatePeerAuthenticationObject(pa);
      if (v.ok) this.#validPeerAuths.set(key, v.value);
      else this.#opts.onPeerAuthenticationInvalid?.(pa, v.errors);
    }
    const root = this.#opts.rootNamespace;
    const derived = peerAuthenticationAuthorizations([...this.#validPeerAuths.values()], root);
    for (const name of this.#peerAuthAuthorizationNames)
      if (!derived.has(name)) this.#setAuthorization(name, undefined);
    for (const [name, auth] of derived) this.#setAuthorization(name, auth);
    this.#peerAuthAuthorizationNames = new Set(derived.keys());
    const candidates = ns === root ? [...this.#pods.keys()] : [...(this.#podsByNs.get(ns) ?? [])];
    for (const podKey of candidates) this.#recomputePod(podKey);
    this.#recomputeNonPodWorkloads(ns);
  }

  #onGateway(key: string, gw: Gateway, deleted: boolean): void {
    if (deleted) this.#gateways.delete(key);
    else this.#gateways.set(key, gw);
    const bound = (obj: KubeObject): boolean => {
      const ref = waypointRefFor(obj, this.#namespaces.get(obj.metadata?.namespace ?? ''));
      return ref !== undefined && `${ref.namespace}/${ref.name}` === key;
    };
    for (const [svcKey, svc] of this.#services) if (bound(svc)) this.#recomputeService(svcKey);
    for (const [podKey, pod] of this.#pods) if (bound(pod)) this.#recomputePod(podKey);
    // Copies: a recompute removes and re-adds its key, which a live iterator would visit again.
    for (const entryKey of [...this.#liveEntries.keys()]) this.#recomputeEntry(entryKey);
    for (const weKey of [...this.#validWorkloadEntries.keys()]) this.#recomputeWorkloadEntry(weKey);
  }

  /** Entries and WorkloadEntries of a namespace (every namespace for the root), after a policy change. */
  #recomputeNonPodWorkloads(ns: string): void {
    const all = ns === this.#opts.rootNamespace;
    const entries = all ? [...this.#liveEntries.keys()] : [...(this.#entriesByNs.get(ns) ?? [])];
    const wes = all ? [...this.#validWorkloadEntries.keys()] : [...(this.#workloadEntriesByNs.get(ns) ?? [])];
    for (const k of entries) this.#recomputeEntry(k);
    for (const k of wes) this.#recomputeWorkloadEntry(k);
  }

  #onEndpointSlice(key: string, slice: EndpointSlice, deleted: boolean): void {
    const old = this.#validSlices.get(key);
    if (old !== undefined) {
      indexRemove(this.#slicesByService, `${old.namespace}/${old.serviceName}`, key);
      for (const ep of old.endpoints) if (ep.pod !== undefined) indexRemove(this.#slicesByPod, ep.pod, key);
    }
    this.#validSlices.delete(key);
    if (deleted) {
      this.#slices.delete(key);
    } else {
      this.#slices.set(key, slice);
      const v = validateEndpointSlice(slice);
      if (v.ok) {
        this.#validSlices.set(key, v.value);
        indexAdd(this.#slicesByService, `${v.value.namespace}/${v.value.serviceName}`, key);
        for (const ep of v.value.endpoints)
          if (ep.pod !== undefined) indexAdd(this.#slicesByPod, ep.pod, key);
        if (v.value.skipped.length > 0) this.#opts.onEndpointSliceIssues?.(slice, v.value.skipped);
      } else if (slice.metadata?.labels?.[SERVICE_NAME] !== undefined) {
        this.#opts.onEndpointSliceIssues?.(slice, v.errors);
      }
    }
    this.#recomputeSlice(key);
    const pods = new Set<string>();
    for (const ep of [...(old?.endpoints ?? []), ...(this.#validSlices.get(key)?.endpoints ?? [])])
      if (ep.pod !== undefined) pods.add(ep.pod);
    for (const podKey of pods) this.#recomputePod(podKey);
  }

  #recomputeSlice(key: string): void {
    const slice = this.#validSlices.get(key);
    const next =
      slice === undefined
        ? new Map<string, wire.WorkloadInit>()
        : buildEndpointSliceWorkloads(slice, this.#services.get(`${slice.namespace}/${slice.serviceName}`), {
            clusterId: this.#opts.clusterId,
            trustDomain: this.#opts.trustDomain,
            domain: this.#opts.domain,
            network: this.#opts.network ?? '',
          });
    for (const name of this.#sliceWorkloads.get(key) ?? [])
      if (!next.has(name)) this.#setAddress(name, undefined);
    for (const [name, workload] of next) this.#setAddress(name, { workload });
    if (next.size > 0) this.#sliceWorkloads.set(key, new Set(next.keys()));
    else this.#sliceWorkloads.delete(key);
  }

  #onServiceEntry(key: string, se: ServiceEntry, deleted: boolean): void {
    const ns = se.metadata?.namespace ?? '';
    const before = this.#parsedEntries.get(key);
    const related = new Set<string>();
    const relate = (v: Validated<ValidServiceEntry> | undefined): void => {
      if (v?.ok !== true) return;
      for (const [other, parsed] of this.#parsedEntries) {
        if (other === key || !parsed.ok) continue;
        const sameHost =
          parsed.value.namespace === v.value.namespace &&
          parsed.value.hosts.some(h => v.value.hosts.includes(h));
        const sameAddress = parsed.value.addresses.some(a => v.value.addresses.includes(a));
        if (sameHost || sameAddress) related.add(other);
      }
    };
    relate(before);
    if (deleted) {
      this.#entries.delete(key);
      this.#parsedEntries.delete(key);
      indexRemove(this.#entriesByNs, ns, key);
      this.#allocator.release(key);
      this.#opts.onSourceDeleted?.('ServiceEntry', ns, se.metadata?.name ?? '');
    } else {
      this.#entries.set(key, se);
      const parsed = validateServiceEntry(se);
      this.#parsedEntries.set(key, parsed);
      indexAdd(this.#entriesByNs, ns, key);
      relate(parsed);
    }
    this.#recomputeEntry(key);
    for (const other of related) this.#recomputeEntry(other);
    // Pods and WorkloadEntries the old or new selector picks list the entry's Services.
    const selectors = [before, this.#parsedEntries.get(key)].flatMap(v =>
      v?.ok === true && v.value.workloadSelector !== undefined ? [v.value.workloadSelector] : [],
    );
    this.#recomputeSelectedBy(ns, selectors);
  }

  /** Pods and WorkloadEntries of a namespace that any of the selectors picks. */
  #recomputeSelectedBy(
    ns: string,
    selectors: readonly (Readonly<Record<string, string>> | undefined)[],
  ): void {
    const present = selectors.filter(s => s !== undefined);
    if (present.length === 0) return;
    const picks = (labels: Readonly<Record<string, string>>): boolean =>
      present.some(sel => mapSelectorMatches(sel, labels));
    for (const podKey of this.#podsByNs.get(ns) ?? [])
      if (picks(this.#pods.get(podKey)?.metadata?.labels ?? {})) this.#recomputePod(podKey);
    for (const weKey of this.#workloadEntriesByNs.get(ns) ?? [])
      if (picks(this.#validWorkloadEntries.get(weKey)?.labels ?? {})) this.#recomputeWorkloadEntry(weKey);
  }

  /** An address of the entry an older valid entry (or a Service in its namespace) already uses. */
  #addressConflict(entry: ValidServiceEntry): SourceIssue | undefined {
    for (const [other, parsed] of this.#parsedEntries) {
      if (other === entry.key || !parsed.ok) continue;
      const o = parsed.value;
      const shared = o.addresses.find(a => entry.addresses.includes(a));
      if (shared === undefined || o.hosts.every(h => entry.hosts.includes(h))) continue;
      const olderOther = o.createdAt !== entry.createdAt ? o.createdAt < entry.createdAt : o.key < entry.key;
      if (olderOther)
        return issue(
          SourceIssueCode.ADDRESS_CONFLICT,
          'spec.addresses',
          `${shared} is already used by ServiceEntry ${o.key} for other hosts; give this entry its own address`,
        );
    }
    return undefined;
  }

  #recomputeEntry(key: string): void {
    const se = this.#entries.get(key);
    const parsed = this.#parsedEntries.get(key);
    const next = new Map<string, Address>();
    let issues: readonly SourceIssue[] = [];
    let addresses: readonly AllocatedAddress[] | undefined;
    let binding: WaypointBinding = NO_WAYPOINT;
    this.#liveEntries.delete(key);
    if (se !== undefined && parsed !== undefined) {
      if (!parsed.ok) {
        issues = parsed.errors;
      } else {
        const conflict = this.#addressConflict(parsed.value);
        if (conflict !== undefined) issues = [conflict];
      }
    }
    if (se !== undefined && parsed?.ok === true && issues.length === 0) {
      const entry = parsed.value;
      this.#liveEntries.set(key, entry);
      const plan = this.#allocator.plan(entry);
      if (plan.changed) addresses = plan.addresses;
      for (const other of plan.displaced) if (other !== key) this.#replanLater.add(other);
      // A ServiceEntry binds as a Service does (upstream's `fetchWaypointForService`).
      binding = bindWaypoint(entryObject(entry), 'service', this.#lookup);
      const waypoint = binding.kind === 'bound' ? binding.address : undefined;
      for (const host of this.#hostsWon(entry)) {
        next.set(serviceEntryResourceName(entry.namespace, host), {
          service: buildServiceEntryService(entry, host, { network: this.#opts.network ?? '', waypoint }),
        });
      }
      const workloads = buildServiceEntryWorkloads(entry, {
        clusterId: this.#opts.clusterId,
        trustDomain: this.#opts.trustDomain,
        network: this.#opts.network ?? '',
        authorizationPolicies: this.#policyNamesFor(entryObject(entry)),
        waypointFor: labels => resolveWaypoint(entryObject(entry, labels), 'workload', this.#lookup),
      });
      for (const [uid, workload] of workloads) next.set(uid, { workload });
    }
    if (!this.#liveEntries.has(key)) this.#allocator.release(key);
    for (const name of this.#entryOutputs.get(key) ?? [])
      if (!next.has(name) && !this.#serviceOwns(name)) this.#setAddress(name, undefined);
    for (const [name, value] of next) this.#setAddress(name, value);
    if (next.size > 0) this.#entryOutputs.set(key, new Set(next.keys()));
    else this.#entryOutputs.delete(key);
    this.#opts.onWaypointBinding?.({ kind: 'serviceentry', key, obj: se }, binding);
    if (se !== undefined)
      this.#opts.onSourceStatus?.({
        kind: 'ServiceEntry',
        object: se,
        issues,
        ...(addresses === undefined ? {} : { addresses }),
      });
    for (const other of [...this.#replanLater]) {
      this.#replanLater.delete(other);
      if (other !== key) this.#recomputeEntry(other);
    }
  }

  /** Whether a resource name is a Kubernetes Service's (which wins it over any ServiceEntry). */
  #serviceOwns(name: string): boolean {
    const slash = name.indexOf('/');
    const ns = name.slice(0, slash);
    const suffix = `.${ns}.svc.${this.#opts.domain}`;
    const host = name.slice(slash + 1);
    return host.endsWith(suffix) && this.#services.has(`${ns}/${host.slice(0, -suffix.length)}`);
  }

  /** Hosts whose WDS Service this entry provides: not a Service's, and no older entry's in its namespace. */
  #hostsWon(entry: ValidServiceEntry): string[] {
    return entry.hosts.filter(host => {
      const name = serviceEntryResourceName(entry.namespace, host);
      for (const k of this.#servicesByNs.get(entry.namespace) ?? []) {
        const svc = this.#services.get(k);
        if (svc !== undefined && serviceResourceName(svc, this.#opts.domain) === name) return false;
      }
      for (const k of this.#entriesByNs.get(entry.namespace) ?? []) {
        const o = this.#liveEntries.get(k);
        if (o === undefined || k === entry.key || !o.hosts.includes(host)) continue;
        if (o.createdAt !== entry.createdAt ? o.createdAt < entry.createdAt : o.key < entry.key) return false;
      }
      return true;
    });
  }

  /** The ServiceEntry Services a workload with these labels in this namespace backs: resource name → ports. */
  #entryServicesFor(
    ns: string,
    labels: Readonly<Record<string, string>>,
    endpointPorts: Readonly<Record<string, number>> = {},
  ): Record<string, wire.PortInit[]> {
    const out: Record<string, wire.PortInit[]> = {};
    for (const k of this.#entriesByNs.get(ns) ?? []) {
      const entry = this.#liveEntries.get(k);
      if (entry === undefined || !mapSelectorMatches(entry.workloadSelector, labels)) continue;
      for (const host of this.#hostsWon(entry))
        out[serviceEntryResourceName(ns, host)] = serviceEntryPortsFor(entry, endpointPorts);
    }
    return out;
  }

  /** Selector-scoped policy names for a non-pod workload, ordered as for pods. */
  #policyNamesFor(obj: Pod): string[] {
    const ns = obj.metadata?.namespace ?? '';
    const root = this.#opts.rootNamespace;
    const names: string[] = [];
    const consider = (keys: ReadonlySet<string> | undefined): void => {
      for (const pk of keys ?? []) {
        const entry = this.#policies.get(pk)!;
        if (policySelectsPod(entry.compiled, entry.obj.metadata?.namespace ?? '', obj, root)) names.push(pk);
      }
    };
    consider(this.#policiesByNs.get(ns));
    if (ns !== root) consider(this.#policiesByNs.get(root));
    names.sort();
    if (this.#validPeerAuths.size > 0)
      names.push(...peerAuthenticationKeysForPod([...this.#validPeerAuths.values()], obj, root));
    return names;
  }

  #onWorkloadEntry(key: string, we: WorkloadEntry, deleted: boolean): void {
    const ns = we.metadata?.namespace ?? '';
    this.#validWorkloadEntries.delete(key);
    if (deleted) {
      this.#workloadEntries.delete(key);
      indexRemove(this.#workloadEntriesByNs, ns, key);
      this.#opts.onSourceDeleted?.('WorkloadEntry', ns, we.metadata?.name ?? '');
    } else {
      this.#workloadEntries.set(key, we);
      indexAdd(this.#workloadEntriesByNs, ns, key);
      const v = validateWorkloadEntry(we);
      if (v.ok) this.#validWorkloadEntries.set(key, v.value);
      this.#opts.onSourceStatus?.({ kind: 'WorkloadEntry', object: we, issues: v.ok ? [] : v.errors });
    }
    this.#recomputeWorkloadEntry(key, we);
  }

  #recomputeWorkloadEntry(key: string, hint?: WorkloadEntry): void {
    const we = this.#validWorkloadEntries.get(key);
    const ref = this.#workloadEntries.get(key) ?? hint;
    if (ref === undefined) return;
    const uid = workloadEntryUid(
      this.#opts.clusterId,
      ref.metadata?.namespace ?? '',
      ref.metadata?.name ?? '',
    );
    if (we === undefined || !this.#workloadEntries.has(key)) {
      this.#setAddress(uid, undefined);
      return;
    }
    const services: KubeService[] = [];
    for (const k of this.#servicesByNs.get(we.namespace) ?? []) services.push(this.#services.get(k)!);
    const asObject: Pod = {
      metadata: { namespace: we.namespace, name: we.name, labels: we.labels, annotations: we.annotations },
    };
    const workload = buildWorkloadEntryWorkload(we, {
      clusterId: this.#opts.clusterId,
      trustDomain: this.#opts.trustDomain,
      domain: this.#opts.domain,
      network: this.#opts.network ?? '',
      services,
      serviceEntries: [...(this.#entriesByNs.get(we.namespace) ?? [])].flatMap(k => {
        const e = this.#liveEntries.get(k);
        return e === undefined ? [] : [{ ...e, hosts: this.#hostsWon(e) }];
      }),
      authorizationPolicies: this.#policyNamesFor(asObject),
      waypoint: resolveWaypoint(asObject, 'workload', this.#lookup),
    });
    this.#setAddress(uid, { workload });
  }

  #recomputePod(key: string, hint?: Pod): void {
    const pod = this.#pods.get(key);
    const ref = pod ?? hint;
    if (ref === undefined) return;
    const name = podUid(this.#opts.clusterId, ref.metadata?.namespace ?? '', ref.metadata?.name ?? '');
    const workload = pod === undefined ? undefined : this.#buildWorkload(pod);
    if (pod === undefined)
      this.#opts.onWaypointBinding?.({ kind: 'workload', key, obj: undefined }, NO_WAYPOINT);
    this.#setAddress(name, workload === undefined ? undefined : { workload });
  }

  #buildWorkload(pod: Pod): ReturnType<typeof buildPodWorkload> {
    const ns = pod.metadata?.namespace ?? '';
    const root = this.#opts.rootNamespace;
    const services: KubeService[] = [];
    for (const k of this.#servicesByNs.get(ns) ?? []) services.push(this.#services.get(k)!);
    const names: string[] = [];
    const consider = (keys: ReadonlySet<string> | undefined): void => {
      if (keys === undefined) return;
      for (const pk of keys) {
        const entry = this.#policies.get(pk)!;
        if (policySelectsPod(entry.compiled, entry.obj.metadata?.namespace ?? '', pod, root)) names.push(pk);
      }
    };
    consider(this.#policiesByNs.get(ns));
    if (ns !== root) consider(this.#policiesByNs.get(root));
    names.sort();
    if (this.#validPeerAuths.size > 0) {
      names.push(...peerAuthenticationKeysForPod([...this.#validPeerAuths.values()], pod, root));
    }
    const binding = bindWaypoint(pod, 'workload', this.#lookup);
    this.#opts.onWaypointBinding?.({ kind: 'workload', key: objectKey(pod), obj: pod }, binding);
    return buildPodWorkload(pod, {
      clusterId: this.#opts.clusterId,
      trustDomain: this.#opts.trustDomain,
      domain: this.#opts.domain,
      network: this.#opts.network ?? '',
      node: this.#nodes.get(pod.spec?.nodeName ?? ''),
      services,
      authorizationPolicies: names,
      waypoint: binding.kind === 'bound' ? binding.address : undefined,
      sliceServices: this.#sliceServicesFor(pod),
      entryServices: this.#entryServicesFor(ns, pod.metadata?.labels ?? {}),
    });
  }

  /** Services whose EndpointSlices list the pod by targetRef (name and uid). */
  #sliceServicesFor(pod: Pod): KubeService[] {
    const podKey = objectKey(pod);
    const uid = pod.metadata?.uid ?? '';
    const out: KubeService[] = [];
    for (const sliceKey of this.#slicesByPod.get(podKey) ?? []) {
      const slice = this.#validSlices.get(sliceKey);
      if (slice?.endpoints.some(ep => ep.pod === podKey && ep.podUid === uid) !== true) continue;
      const svc = this.#services.get(`${slice.namespace}/${slice.serviceName}`);
      if (svc !== undefined && svc.spec?.type !== 'ExternalName' && !out.includes(svc)) out.push(svc);
    }
    return out;
  }

  #recomputeService(key: string, hint?: KubeService): void {
    const svc = this.#services.get(key);
    const ref = svc ?? hint;
    if (ref === undefined) return;
    const name = serviceResourceName(ref, this.#opts.domain);
    if (svc === undefined) {
      this.#opts.onWaypointBinding?.({ kind: 'service', key, obj: undefined }, NO_WAYPOINT);
      this.#setAddress(name, undefined);
      return;
    }
    const binding = bindWaypoint(svc, 'service', this.#lookup);
    this.#opts.onWaypointBinding?.({ kind: 'service', key, obj: svc }, binding);
    const service = buildService(svc, {
      domain: this.#opts.domain,
      network: this.#opts.network ?? '',
      waypoint: binding.kind === 'bound' ? binding.address : undefined,
    });
    this.#setAddress(name, { service });
  }

  #setAddress(name: string, value: Address | undefined): void {
    setResource(this.#addresses, this.#changedAddresses, name, value);
  }

  #setAuthorization(name: string, value: Authorization | undefined): void {
    setResource(this.#authorizations, this.#changedAuthorizations, name, value);
  }
}

const SERVICE_NAME = 'kubernetes.io/service-name';

/** A ServiceEntry as the object waypoint binding and policy selection look at. */
function entryObject(entry: ValidServiceEntry, labels: Readonly<Record<string, string>> = entry.labels): Pod {
  return {
    metadata: { namespace: entry.namespace, name: entry.name, labels, annotations: entry.annotations },
  };
}

function setResource<T>(
  store: Map<string, WdsResource<T>>,
  changed: Set<string>,
  name: string,
  value: T | undefined,
): void {
  const prev = store.get(name);
  if (value === undefined) {
    if (prev !== undefined) {
      store.delete(name);
      changed.add(name);
    }
    return;
  }
  const version = contentVersion(value);
  if (prev?.version === version) return;
  store.set(name, { name, version, value });
  changed.add(name);
}

function indexAdd(index: Map<string, Set<string>>, bucket: string, key: string): void {
  let set = index.get(bucket);
  if (set === undefined) index.set(bucket, (set = new Set()));
  set.add(key);
}

function indexRemove(index: Map<string, Set<string>>, bucket: string, key: string): void {
  const set = index.get(bucket);
  if (set === undefined) return;
  set.delete(key);
  if (set.size === 0) index.delete(bucket);
}
