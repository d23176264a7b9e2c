/**
 * The Kubernetes envelope of the generated CRD types: object metadata from `@kubernetes/client-node`.
 */
import type { V1ObjectMeta } from '@kubernetes/client-node';

/**
 * `metadata` of a Kubernetes object: client-node's `V1ObjectMeta` as a plain object type. It is a
 * class there, while objects read from the API (and written as literals in code and tests) are plain
 * objects; both fit this type.
 */
export type ObjectMeta = { [K in keyof V1ObjectMeta]: V1ObjectMeta[K] };
