/**
 * A store of ztunnel `Authorization`s keyed by `ns/name`, indexed so that the policies that apply
 * to one workload are found without scanning the store:
 *
 * - ztunnel's view, {@link PolicyIndex.policiesForWorkload}: GLOBAL policies, NAMESPACE policies of
 *   the workload's namespace, and the names the workload lists in `authorization_policies`
 *   (unknown names are skipped and reported).
 * - istiod's view, {@link PolicyIndex.selectorPolicyKeys}: WORKLOAD_SELECTOR policies from the
 *   workload's namespace or the root namespace whose `matchLabels` select the workload's labels.
 *   Each selector is indexed under one of its label pairs, so a lookup only checks the policies
 *   that share a label with the workload.
 *
 * Single writer: only `upsert`/`delete` mutate it; lookups return fresh arrays.
 */
import { DEFAULT_ROOT_NAMESPACE } from './compile-authorization-policy.ts';
import { selectorMatches } from './label-selector.ts';
import type { security } from './wire.ts';
import { WireScope } from './wire.ts';

interface Entry {
  readonly key: string;
  readonly authorization: security.Authorization;
  readonly matchLabels: Readonly<Record<string, string>> | undefined;
  /** Bucket the selector is indexed under: `label\0value`, or '' for a select-all selector. */
  readonly bucket: string | undefined;
}

export interface PolicyIndexOptions {
  /** Mesh root namespace; its selector policies apply in every namespace. Default `istio-system`. */
  readonly rootNamespace?: string;
}

/** A workload as ztunnel knows it from WDS. */
export interface WorkloadPolicyRef {
  readonly namespace: string;
  /** `Workload.authorization_policies`: `ns/name` keys. */
  readonly authorizationPolicies?: readonly string[];
}

export interface WorkloadPolicies {
  readonly policies: security.Authorization[];
  /** Names listed by the workload but absent from the index (ztunnel warns and skips them). */
  readonly unknown: string[];
}

const SELECT_ALL = '';

function bucketOf(matchLabels: Readonly<Record<string, string>> | undefined): string {
  if (matchLabels === undefined) return SELECT_ALL;
  const keys = Object.keys(matchLabels).sort();
  const first = keys[0];
  return first === undefined ? SELECT_ALL : `${first}\0${matchLabels[first]!}`;
}

function addTo<K, V>(map: Map<K, Map<string, V>>, k: K, key: string, v: V): void {
  let inner = map.get(k);
  if (inner === undefined) map.set(k, (inner = new Map<string, V>()));
  inner.set(key, v);
}

function removeFrom<K, V>(map: Map<K, Map<string, V>>, k: K, key: string): void {
  const inner = map.get(k);
  if (inner === undefined) return;
  inner.delete(key);
  if (inner.size === 0) map.delete(k);
}

export class PolicyIndex {
  readonly #rootNamespace: string;
  readonly #byKey = new Map<string, Entry>();
  readonly #global = new Map<string, security.Authorization>();
  readonly #byNamespace = new Map<string, Map<string, security.Authorization>>();
  /** namespace → bucket → key → entry, for WORKLOAD_SELECTOR policies with a selector. */
  readonly #selectors = new Map<string, Map<string, Map<string, Entry>>>();

  constructor(options: PolicyIndexOptions = {}) {
    this.#rootNamespace = options.rootNamespace ?? DEFAULT_ROOT_NAMESPACE;
  }

  get size(): number {
    return this.#byKey.size;
  }

  /**
   * Adds or replaces a policy. `matchLabels` is the source policy's selector; pass it for
   * WORKLOAD_SELECTOR policies that istiod must attach by labels (omit it for policies attached by
   * name only, such as converted PeerAuthentications).
   */
  upsert(authorization: security.Authorization, matchLabels?: Readonly<Record<string, string>>): void {
    const key = `${authorization.namespace}/${authorization.name}`;
    this.delete(key);
    const selectable = authorization.scope === WireScope.WORKLOAD_SELECTOR && matchLabels !== undefined;
    const entry: Entry = {
      key,
      authorization,
      matchLabels: selectable ? { ...matchLabels } : undefined,
      bucket: selectable ? bucketOf(matchLabels) : undefined,
    };
    this.#byKey.set(key, entry);
    if (authorization.scope === WireScope.GLOBAL) this.#global.set(key, authorization);
    else if (authorization.scope === WireScope.NAMESPACE)
      addTo(this.#byNamespace, authorization.namespace, key, authorization);
    if (entry.bucket !== undefined) {
      let ns = this.#selectors.get(authorization.namespace);
      if (ns === undefined)
        this.#selectors.set(authorization.namespace, (ns = new Map<string, Map<string, Entry>>()));
      addTo(ns, entry.bucket, key, entry);
    }
  }

  /** Removes a policy by `ns/name`; true when it was present. */
  delete(key: string): boolean {
    const entry = this.#byKey.get(key);
    if (entry === undefined) return false;
    this.#byKey.delete(key);
    this.#global.delete(key);
    removeFrom(this.#byNamespace, entry.authorization.namespace, key);
    if (entry.bucket !== undefined) {
      const ns = this.#selectors.get(entry.authorization.namespace);
      if (ns !== undefined) {
        removeFrom(ns, entry.bucket, key);
        if (ns.size === 0) this.#selectors.delete(entry.authorization.namespace);
      }
    }
    return true;
  }

  get(key: string): security.Authorization | undefined {
    return this.#byKey.get(key)?.authorization;
  }

  /** Every stored policy, in insertion order. */
  all(): security.Authorization[] {
    return [...this.#byKey.values()].map(e => e.authorization);
  }

  /** ztunnel's candidate policies for a destination workload (input of `authorize`). */
  policiesForWorkload(workload: WorkloadPolicyRef): WorkloadPolicies {
    const policies = [...this.#global.values()];
    const ns = this.#byNamespace.get(workload.namespace);
    if (ns !== undefined) for (const p of ns.values()) policies.push(p);
    const unknown: string[] = [];
    const named = workload.authorizationPolicies ?? [];
    if (named.length === 0) return { policies, unknown };
    // Names already collected (GLOBAL or the workload's namespace) or listed twice are skipped.
    const seen = new Set<string>();
    for (const key of named) {
      if (seen.has(key) || this.#global.has(key) || ns?.has(key) === true) continue;
      seen.add(key);
      const p = this.#byKey.get(key);
      if (p === undefined) unknown.push(key);
      else policies.push(p.authorization);
    }
    return { policies, unknown };
  }

  /**
   * istiod's view: sorted `ns/name` keys of the WORKLOAD_SELECTOR policies whose selector selects
   * the workload, from its namespace or the root namespace.
   */
  selectorPolicyKeys(workload: {
    readonly namespace: string;
    readonly labels: Readonly<Record<string, string>>;
  }): string[] {
    const out: string[] = [];
    const scan = (namespace: string): void => {
      const buckets = this.#selectors.get(namespace);
      if (buckets === undefined) return;
      const check = (bucket: string): void => {
        for (const e of buckets.get(bucket)?.values() ?? []) {
          if (selectorMatches(e.matchLabels, workload.labels)) out.push(e.key);
        }
      };
      check(SELECT_ALL);
      for (const label in workload.labels) check(`${label}\0${workload.labels[label]!}`);
    };
    scan(workload.namespace);
    if (workload.namespace !== this.#rootNamespace) scan(this.#rootNamespace);
    return out.sort();
  }
}
