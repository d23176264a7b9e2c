// The sailoperator.io resource types the operator serves, their API paths, and the ownership
// markers it puts on everything it creates (owner reference, labels, finalizer, field manager).

export const GROUP = 'sailoperator.io';
export const API_VERSION = `${GROUP}/v1`;

/** The field manager of every server-side apply the operator sends. */
export const FIELD_MANAGER = 'ambient-mesh-operator';

/** Finalizer on each CR: uninstall what it owns before the CR goes away. */
export const FINALIZER = `${GROUP}/ambient-mesh-operator`;

/** Label naming the CR an object belongs to: `<kind>.<name>` (owner references cannot span namespaces' GC in every case). */
export const OWNER_LABEL = `${GROUP}/owner`;

export type SailKind = 'Istio' | 'IstioRevision' | 'IstioRevisionTag' | 'IstioCNI' | 'ZTunnel';

export const PLURAL: Readonly<Record<SailKind, string>> = {
  Istio: 'istios',
  IstioRevision: 'istiorevisions',
  IstioRevisionTag: 'istiorevisiontags',
  IstioCNI: 'istiocnis',
  ZTunnel: 'ztunnels',
};

/** The collection path of a kind (all are cluster-scoped). */
export function sailPath(kind: SailKind, name?: string): string {
  const base = `/apis/${API_VERSION}/${PLURAL[kind]}`;
  return name === undefined ? base : `${base}/${encodeURIComponent(name)}`;
}

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  deletionTimestamp?: string;
  ownerReferences?: OwnerReference[];
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface SailCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}

export interface SailStatus {
  observedGeneration?: number;
  conditions?: SailCondition[];
  state?: string;
  activeRevisionName?: string;
  revisions?: { total: number; ready: number; inUse: number };
}

export interface SailObject<Spec> {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: Spec;
  status?: SailStatus;
}

/** A controller owner reference to `owner` (which must carry a uid). */
export function ownerReference(owner: { metadata: ObjectMeta }, kind: SailKind): OwnerReference {
  return {
    apiVersion: API_VERSION,
    kind,
    name: owner.metadata.name,
    uid: owner.metadata.uid ?? '',
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** The owner label value for a CR. */
export function ownerLabel(kind: SailKind, name: string): string {
  return `${kind.toLowerCase()}.${name}`;
}
