// The pod's service-account credentials, kept in memory: the CA and token are read at start and
// re-read at most once a minute, and the last good copy is kept when the files cannot be read
// (a projected volume being swapped, or its bind mount gone). client-node's in-cluster config
// reads both files on every request, so one missing moment fails every reconcile.
import { readFileSync } from 'node:fs';
import type * as https from 'node:https';
import { join } from 'node:path';
import type { KubeCluster, KubeConfigHandle } from '@ambient-mesh/kube';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface InClusterOptions {
  /** `https://host:port` of the apiserver (from KUBERNETES_SERVICE_HOST/PORT). */
  readonly server: string;
  readonly dir?: string;
  readonly refreshMs?: number;
  readonly now?: () => number;
  readonly read?: (path: string) => string;
}

export class InClusterCredentials implements KubeConfigHandle {
  readonly #cluster: KubeCluster;
  readonly #dir: string;
  readonly #refreshMs: number;
  readonly #now: () => number;
  readonly #read: (path: string) => string;
  #ca: string;
  #token: string;
  #readAt: number;

  constructor(options: InClusterOptions) {
    this.#cluster = { name: 'in-cluster', server: options.server };
    this.#dir = options.dir ?? SERVICE_ACCOUNT_DIR;
    this.#refreshMs = options.refreshMs ?? 60_000;
    this.#now = options.now ?? Date.now;
    this.#read = options.read ?? (p => readFileSync(p, 'utf8'));
    // At start the files must be there: without them there is nothing to fall back on.
    this.#ca = this.#read(join(this.#dir, 'ca.crt'));
    this.#token = this.#read(join(this.#dir, 'token')).trim();
    this.#readAt = this.#now();
  }

  getCurrentCluster(): KubeCluster {
    return this.#cluster;
  }

  /** The token in use (tests). */
  get token(): string {
    return this.#token;
  }

  #refresh(): void {
    if (this.#now() - this.#readAt < this.#refreshMs) return;
    this.#readAt = this.#now();
    try {
      this.#ca = this.#read(join(this.#dir, 'ca.crt'));
      this.#token = this.#read(join(this.#dir, 'token')).trim();
    } catch {
      // Keep the last good credentials; the next refresh tries again.
    }
  }

  applyToHTTPSOptions(options: https.RequestOptions): Promise<void> {
    this.#refresh();
    options.ca = this.#ca;
    const headers: Record<string, unknown> = {};
    if (options.headers !== undefined && !Array.isArray(options.headers))
      Object.assign(headers, options.headers);
    headers.authorization = `Bearer ${this.#token}`;
    options.headers = headers as https.RequestOptions['headers'];
    return Promise.resolve();
  }
}
