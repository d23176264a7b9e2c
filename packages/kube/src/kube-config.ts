/**
 * The kubeconfig as KubeClient needs it: the current cluster's address and a way to put the
 * credentials (token, client certificate, CA) on an HTTPS request. `@kubernetes/client-node`'s
 * `KubeConfig` fits this shape; our public types name only this, so strict consumers do not compile
 * client-node's own typings.
 */
import type * as https from 'node:https';

/** The current cluster of a kubeconfig. */
export interface KubeCluster {
  readonly name: string;
  /** The apiserver URL. */
  readonly server: string;
  readonly skipTLSVerify?: boolean;
}

/** A loaded kubeconfig (a client-node `KubeConfig` satisfies it). */
export interface KubeConfigHandle {
  getCurrentCluster(): KubeCluster | null;
  /** Adds the credentials and TLS settings of the current context to `options`. */
  applyToHTTPSOptions(options: https.RequestOptions): Promise<void>;
}
