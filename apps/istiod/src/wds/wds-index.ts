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
 *
 * Every mutation returns a `ChangeSet` of resource names whose content changed or that were
 * removed; listeners get the same set after the state is committed.
 */
import type {
  AuthorizationPolicy,
  Gateway,
  KubeObject,
  Namespace,
  Node,
  PeerAuthentication,
  Pod,
  Service as KubeService,
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
import { bindWaypoint, NO_WAYPOINT, type BindingKind, type WaypointBinding } from '../gateway/binding.ts';
import { waypointRefFor, type WaypointLookup } from './waypoint.ts';
import { buildPodWorkload, podUid } from './workload.ts';

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
   * Called with each Service's and pod's waypoint binding whenever it is recomputed (`obj`
   * undefined and binding `none` when the object was deleted): the waypoint status writer and
   * the `WaypointBindings` index listen here.
   */
  readonly onWaypointBinding?: (target: WaypointBindingTarget, binding: WaypointBinding) => void;
  /** A GatewayClass's labels (its `istio.io/waypoint-for` default), when GatewayClasses are watched. */
  readonly gatewayClassLabels?: (name: string) => Readonly<Record<string, string>> | undefined;
}

/** A Service or pod whose waypoint binding was computed; `key` is `namespace/name`. */
export interface WaypointBindingTarget {
  readonly kind: BindingKind;
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
  readonly #addresses = new Map<string, WdsResource<Address>>();
  readonly #authorizations = new Map<string, WdsResource<Authorization>>();
  readonly #listeners: Listener[] = [];
  readonly #lookup: WaypointLookup;
  // Pending change names for the mutation in progress.
  #changedAddresses = new Set<string>();
  #changedAuthorizations = new Set<string>();

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
    return [...[...this.#policies.values()].map(p => p.obj), ...this.#peerAuths.values()];
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
  }

  #onNamespace(key: string, ns: Namespace, deleted: boolean): void {
    if (deleted) this.#namespaces.delete(key);
    else this.#namespaces.set(key, ns);
    for (const svcKey of this.#servicesByNs.get(key) ?? []) this.#recomputeService(svcKey);
    for (const podKey of this.#podsByNs.get(key) ?? []) this.#recomputePod(podKey);
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
    });
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
