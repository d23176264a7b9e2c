/**
 * The mesh state ztunnel serves from: workloads, services and policies, with their indexes.
 *
 * Single writer: only `StateMutator` (made together with the store by `createProxyState`) changes
 * it; every other component gets the read-only `ProxyStateReader`. Listeners run after a batch is
 * committed, on a copy of the listener list, so they may unsubscribe while being called.
 */
import type { Address, Authorization, PortMapping, Service, Workload } from './types.ts';

export interface Endpoint {
  readonly workload: Workload;
  /** The workload's own port overrides for this service (may be empty). */
  readonly ports: readonly PortMapping[];
}

export interface StateChange {
  readonly workloadsUpserted: readonly Workload[];
  readonly workloadsRemoved: readonly Workload[];
  readonly servicesChanged: boolean;
  readonly policiesChanged: boolean;
}

export type StateListener = (change: StateChange) => void;

export interface StateSnapshot {
  readonly workloads: readonly Workload[];
  readonly services: readonly (Service & { readonly endpoints: readonly string[] })[];
  readonly policies: readonly Authorization[];
}

export interface ProxyStateReader {
  workloadByUid(uid: string): Workload | undefined;
  workloadByAddress(network: string, ip: string): Workload | undefined;
  serviceByKey(key: string): Service | undefined;
  serviceByVip(network: string, ip: string): Service | undefined;
  servicesByHostname(hostname: string): readonly Service[];
  /** Workloads that list the service key in `Workload.services`. */
  endpoints(serviceKey: string): readonly Endpoint[];
  policyByKey(key: string): Authorization | undefined;
  /** Global + namespace-scoped policies for the workload's namespace + its selector policies (docs/protocols.md#authorization-evaluation). */
  policiesFor(workload: Workload): readonly Authorization[];
  /** The node-local workload of a ZDS pod, matched by name, namespace and service account. */
  findLocalWorkload(
    node: string,
    info: { name: string; namespace: string; serviceAccount: string },
  ): Workload | undefined;
  workloadsOnNode(node: string): readonly Workload[];
  /** Bumps on every committed batch. */
  readonly generation: number;
  snapshot(): StateSnapshot;
  subscribe(listener: StateListener): () => void;
}

function addrKey(network: string, ip: string): string {
  return `${network}/${ip}`;
}

class Store implements ProxyStateReader {
  readonly workloads = new Map<string, Workload>();
  readonly workloadsByAddr = new Map<string, string>();
  readonly services = new Map<string, Service>();
  readonly servicesByVip = new Map<string, string>();
  readonly servicesByHost = new Map<string, Set<string>>();
  /** service key → workload uid → ports. */
  readonly endpointIndex = new Map<string, Map<string, readonly PortMapping[]>>();
  readonly policies = new Map<string, Authorization>();
  /** namespace ('' = global) → policy keys with a NAMESPACE or GLOBAL scope. */
  readonly policiesByNs = new Map<string, Set<string>>();
  readonly listeners = new Set<StateListener>();
  generation = 0;

  workloadByUid(uid: string): Workload | undefined {
    return this.workloads.get(uid);
  }

  workloadByAddress(network: string, ip: string): Workload | undefined {
    const uid = this.workloadsByAddr.get(addrKey(network, ip));
    return uid === undefined ? undefined : this.workloads.get(uid);
  }

  serviceByKey(key: string): Service | undefined {
    return this.services.get(key);
  }

  serviceByVip(network: string, ip: string): Service | undefined {
    const key = this.servicesByVip.get(addrKey(network, ip));
    return key === undefined ? undefined : this.services.get(key);
  }

  servicesByHostname(hostname: string): readonly Service[] {
    const keys = this.servicesByHost.get(hostname);
    if (keys === undefined) return [];
    return [...keys].flatMap(key => {
      const service = this.services.get(key);
      return service === undefined ? [] : [service];
    });
  }

  endpoints(serviceKey: string): readonly Endpoint[] {
    const byUid = this.endpointIndex.get(serviceKey);
    if (byUid === undefined) return [];
    const out: Endpoint[] = [];
    for (const [uid, ports] of byUid) {
      const workload = this.workloads.get(uid);
      if (workload !== undefined) out.push({ workload, ports });
    }
    return out;
  }

  policyByKey(key: string): Authorization | undefined {
    return this.policies.get(key);
  }

  policiesFor(workload: Workload): readonly Authorization[] {
    const keys = new Set<string>([
      ...(this.policiesByNs.get('') ?? []),
      ...(this.policiesByNs.get(workload.namespace) ?? []),
      ...workload.authorizationPolicies,
    ]);
    const out: Authorization[] = [];
    for (const key of keys) {
      const policy = this.policies.get(key);
      if (policy !== undefined) out.push(policy);
    }
    return out;
  }

  findLocalWorkload(
    node: string,
    info: { name: string; namespace: string; serviceAccount: string },
  ): Workload | undefined {
    for (const workload of this.workloads.values()) {
      if (
        workload.node === node &&
        workload.name === info.name &&
        workload.namespace === info.namespace &&
        workload.serviceAccount === (info.serviceAccount === '' ? 'default' : info.serviceAccount)
      ) {
        return workload;
      }
    }
    return undefined;
  }

  workloadsOnNode(node: string): readonly Workload[] {
    return [...this.workloads.values()].filter(w => w.node === node);
  }

  snapshot(): StateSnapshot {
    return {
      workloads: [...this.workloads.values()],
      services: [...this.services.values()].map(service => ({
        ...service,
        endpoints: [...(this.endpointIndex.get(service.key)?.keys() ?? [])],
      })),
      policies: [...this.policies.values()],
    };
  }

  subscribe(listener: StateListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/** The only writer of the mesh state. Inputs are already-validated domain values. */
export class StateMutator {
  readonly #store: Store;

  constructor(store: ProxyStateReader) {
    if (!(store instanceof Store)) throw new Error('BUG: StateMutator needs a store from createProxyState');
    this.#store = store;
  }

  /** Upserts then removes Address resources (by xDS name: workload uid or `<ns>/<hostname>`). */
  applyAddresses(upserts: readonly Address[], removedNames: readonly string[]): StateChange {
    const upserted: Workload[] = [];
    const removed: Workload[] = [];
    let servicesChanged = false;
    for (const address of upserts) {
      if (address.kind === 'workload') {
        this.#removeWorkload(address.workload.uid);
        this.#insertWorkload(address.workload);
        upserted.push(address.workload);
      } else {
        this.#removeService(address.service.key);
        this.#insertService(address.service);
        servicesChanged = true;
      }
    }
    for (const name of removedNames) {
      const old = this.#removeWorkload(name);
      if (old !== undefined) removed.push(old);
      else if (this.#removeService(name)) servicesChanged = true;
    }
    return this.#commit({
      workloadsUpserted: upserted,
      workloadsRemoved: removed,
      servicesChanged,
      policiesChanged: false,
    });
  }

  applyAuthorizations(upserts: readonly Authorization[], removedNames: readonly string[]): StateChange {
    for (const policy of upserts) {
      this.#removePolicy(policy.key);
      this.#store.policies.set(policy.key, policy);
      if (policy.scope !== 'WORKLOAD_SELECTOR') {
        const ns = policy.scope === 'GLOBAL' ? '' : policy.namespace;
        let keys = this.#store.policiesByNs.get(ns);
        if (keys === undefined) this.#store.policiesByNs.set(ns, (keys = new Set<string>()));
        keys.add(policy.key);
      }
    }
    for (const name of removedNames) this.#removePolicy(name);
    return this.#commit({
      workloadsUpserted: [],
      workloadsRemoved: [],
      servicesChanged: false,
      policiesChanged: upserts.length > 0 || removedNames.length > 0,
    });
  }

  #commit(change: StateChange): StateChange {
    this.#store.generation += 1;
    for (const listener of [...this.#store.listeners]) listener(change);
    return change;
  }

  #insertWorkload(workload: Workload): void {
    const store = this.#store;
    store.workloads.set(workload.uid, workload);
    if (workload.networkMode !== 'HOST_NETWORK') {
      for (const ip of workload.addresses)
        store.workloadsByAddr.set(addrKey(workload.network, ip), workload.uid);
    }
    for (const [serviceKey, ports] of Object.entries(workload.services)) {
      let byUid = store.endpointIndex.get(serviceKey);
      if (byUid === undefined)
        store.endpointIndex.set(serviceKey, (byUid = new Map<string, readonly PortMapping[]>()));
      byUid.set(workload.uid, ports);
    }
  }

  #removeWorkload(uid: string): Workload | undefined {
    const store = this.#store;
    const old = store.workloads.get(uid);
    if (old === undefined) return undefined;
    store.workloads.delete(uid);
    for (const ip of old.addresses) {
      const key = addrKey(old.network, ip);
      if (store.workloadsByAddr.get(key) === uid) store.workloadsByAddr.delete(key);
    }
    for (const serviceKey of Object.keys(old.services)) {
      const byUid = store.endpointIndex.get(serviceKey);
      byUid?.delete(uid);
      if (byUid?.size === 0) store.endpointIndex.delete(serviceKey);
    }
    return old;
  }

  #insertService(service: Service): void {
    const store = this.#store;
    store.services.set(service.key, service);
    for (const vip of service.addresses)
      store.servicesByVip.set(addrKey(vip.network, vip.address), service.key);
    let keys = store.servicesByHost.get(service.hostname);
    if (keys === undefined) store.servicesByHost.set(service.hostname, (keys = new Set<string>()));
    keys.add(service.key);
  }

  #removeService(key: string): boolean {
    const store = this.#store;
    const old = store.services.get(key);
    if (old === undefined) return false;
    store.services.delete(key);
    for (const vip of old.addresses) {
      const vipKey = addrKey(vip.network, vip.address);
      if (store.servicesByVip.get(vipKey) === key) store.servicesByVip.delete(vipKey);
    }
    const keys = store.servicesByHost.get(old.hostname);
    keys?.delete(key);
    if (keys?.size === 0) store.servicesByHost.delete(old.hostname);
    return true;
  }

  #removePolicy(key: string): void {
    const store = this.#store;
    const old = store.policies.get(key);
    if (old === undefined) return;
    store.policies.delete(key);
    for (const [ns, keys] of store.policiesByNs) {
      keys.delete(key);
      if (keys.size === 0) store.policiesByNs.delete(ns);
    }
  }
}

/** Makes an empty store and its one writer. */
export function createProxyState(): { readonly state: ProxyStateReader; readonly mutator: StateMutator } {
  const state = new Store();
  return { state, mutator: new StateMutator(state) };
}
