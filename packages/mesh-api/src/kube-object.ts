/**
 * The Kubernetes envelope of the generated CRD types: object metadata, spelled out here so the
 * published types need nothing from `@kubernetes/client-node`. The shapes match client-node's
 * `V1ObjectMeta`, `V1OwnerReference` and `V1ManagedFieldsEntry` field for field, so values flow
 * both ways (timestamps are `Date`s, as client-node deserializes them).
 */

/** An owner of a Kubernetes object (`metadata.ownerReferences[]`). */
export interface OwnerReference {
  apiVersion: string;
  blockOwnerDeletion?: boolean;
  controller?: boolean;
  kind: string;
  name: string;
  uid: string;
}

/** One manager's fields of a Kubernetes object (`metadata.managedFields[]`). */
export interface ManagedFieldsEntry {
  apiVersion?: string;
  fieldsType?: string;
  fieldsV1?: object;
  manager?: string;
  operation?: string;
  subresource?: string;
  time?: Date;
}

/**
 * `metadata` of a Kubernetes object as a plain object type: objects read from the API and object
 * literals in code and tests both fit it.
 */
export interface ObjectMeta {
  annotations?: { [key: string]: string };
  creationTimestamp?: Date;
  deletionGracePeriodSeconds?: number;
  deletionTimestamp?: Date;
  finalizers?: string[];
  generateName?: string;
  generation?: number;
  labels?: { [key: string]: string };
  managedFields?: ManagedFieldsEntry[];
  name?: string;
  namespace?: string;
  ownerReferences?: OwnerReference[];
  resourceVersion?: string;
  selfLink?: string;
  uid?: string;
}
