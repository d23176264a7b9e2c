import { MeshError, type MeshErrorOptions } from '@ambient-mesh/errors';

/** Stable codes of the local cluster harness. */
export const ClusterErrorCode = {
  /** A Kubernetes or etcd binary is missing and could not be built. */
  BinaryMissing: 'CLUSTER_BINARY_MISSING',
  /** An external command (ip, nft, a CNI plugin, openssl) exited non-zero. */
  CommandFailed: 'CLUSTER_COMMAND_FAILED',
  /** A component did not become ready before its deadline. */
  Timeout: 'CLUSTER_TIMEOUT',
  /** The apiserver answered a request with an error status. */
  ApiError: 'CLUSTER_API_ERROR',
  /** A CNI plugin returned an error result. */
  CniFailed: 'CLUSTER_CNI_FAILED',
  /** A pod asks for something the local runtime cannot provide (unknown image, volume kind). */
  Unsupported: 'CLUSTER_UNSUPPORTED',
  /** The machine lacks a prerequisite (root, a Debian package, Docker for kind). */
  Prerequisite: 'CLUSTER_PREREQUISITE',
  /** A cluster with this name is already running. */
  AlreadyRunning: 'CLUSTER_ALREADY_RUNNING',
} as const;
export type ClusterErrorCode = (typeof ClusterErrorCode)[keyof typeof ClusterErrorCode];

/** Every error the harness raises. `code` is one of {@link ClusterErrorCode}. */
export class ClusterError extends MeshError {
  declare readonly code: ClusterErrorCode;

  constructor(code: ClusterErrorCode, message: string, options: MeshErrorOptions = {}) {
    super(code, message, options);
  }
}
