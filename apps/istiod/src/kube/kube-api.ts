/**
 * Adapters from `@ambient-mesh/kube` to the narrow capabilities istiod's modules take:
 * TokenReview, Secret and ConfigMap stores, and the AuthorizationPolicy status patcher.
 * Everything else in istiod depends on those interfaces, never on the client, so tests use
 * in-memory fakes.
 */
import {
  KubeClient,
  MergePatch,
  isAlreadyExists,
  isConflict,
  loadKubeConfig as loadConfig,
  mergeConditions,
  ownedConditionsEqual,
  patchStatusConditions,
  resourcePath,
  type Condition,
} from '@ambient-mesh/kube';
import type { KubeConfigHandle as KubeConfig } from '@ambient-mesh/kube';
import type { TokenReviewer } from '../auth/token-review.ts';
import type { SecretStore } from '../ca/ca-bootstrap.ts';
import type { ConfigMapStore } from '../ca/root-cert-publisher.ts';
import { CSR_API_PATH, csrOutcome, type CsrApi, type CsrObject } from '../ca/kube-csr-signer.ts';
import type { StatusPatcher } from './policy-status.ts';
import { POLICY_CONDITION_TYPES, ZTUNNEL_ACCEPTED } from './policy-status.ts';
import type { SourceStatusPatcher } from './source-status.ts';
import type { NodeTaintPatcher } from './node-untaint.ts';

/** A KubeConfig from a kubeconfig file, else `$KUBECONFIG`/in-cluster defaults. */
export function loadKubeConfig(path: string): KubeConfig {
  return loadConfig({ file: path });
}

interface TokenReviewStatus {
  readonly authenticated?: boolean;
  readonly user?: { readonly username?: string; readonly extra?: Record<string, string[]> };
  readonly audiences?: string[];
  readonly error?: string;
}

export function kubeTokenReviewer(kc: KubeConfig): TokenReviewer {
  const client = new KubeClient(kc);
  return async (token, audiences) => {
    const review = await client.create<{ status?: TokenReviewStatus }>(
      '/apis/authentication.k8s.io/v1/tokenreviews',
      {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenReview',
        spec: { token, audiences: [...audiences] },
      },
    );
    const s = review.status ?? {};
    return {
      authenticated: s.authenticated === true,
      ...(s.user?.username !== undefined ? { username: s.user.username } : {}),
      ...(s.user?.extra !== undefined ? { extra: s.user.extra } : {}),
      ...(s.audiences !== undefined ? { audiences: s.audiences } : {}),
      ...(s.error !== undefined ? { error: s.error } : {}),
    };
  };
}

const secrets = { apiVersion: 'v1', plural: 'secrets', namespaced: true } as const;
const configMaps = { apiVersion: 'v1', plural: 'configmaps', namespaced: true } as const;

export function kubeSecretStore(kc: KubeConfig): SecretStore {
  const client = new KubeClient(kc);
  return {
    async read(namespace, name) {
      const secret = await client.find<{ data?: Record<string, string> }>(
        resourcePath(secrets, { namespace, name }),
      );
      if (secret === undefined) return undefined;
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(secret.data ?? {}))
        out[k] = Buffer.from(v, 'base64').toString('utf8');
      return out;
    },
    async create(namespace, name, type, data) {
      try {
        await client.create(resourcePath(secrets, { namespace }), {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name, namespace },
          type,
          stringData: data,
        });
        return true;
      } catch (err) {
        if (isAlreadyExists(err)) return false;
        throw err;
      }
    },
  };
}

export function kubeConfigMapStore(kc: KubeConfig): ConfigMapStore {
  const client = new KubeClient(kc);
  const body = (
    namespace: string,
    name: string,
    data: Record<string, string>,
    labels: Record<string, string>,
  ): unknown => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace, labels }, data });
  return {
    async read(namespace, name) {
      const cm = await client.find<{ data?: Record<string, string> }>(
        resourcePath(configMaps, { namespace, name }),
      );
      return cm === undefined ? undefined : (cm.data ?? {});
    },
    async create(namespace, name, data, labels) {
      await client.create(resourcePath(configMaps, { namespace }), body(namespace, name, data, labels));
    },
    async replace(namespace, name, data, labels) {
      await client.put(resourcePath(configMaps, { namespace, name }), body(namespace, name, data, labels));
    },
  };
}

/**
 * Writes istiod's conditions into a security.istio.io/v1 object's status, keeping the conditions
 * other controllers wrote there (only `ZtunnelAccepted` is istiod's).
 */
/**
 * Replaces a node's taints with a JSON merge patch that carries the read `resourceVersion`, so
 * the apiserver answers 409 Conflict when the node changed since (upstream updates the node the
 * same way, conditionally). The controller decides again from its informer and retries.
 */
export function kubeNodeTaintPatcher(kc: KubeConfig): NodeTaintPatcher {
  const client = new KubeClient(kc);
  return async (node, resourceVersion, taints) => {
    await client.mergePatch(`/api/v1/nodes/${encodeURIComponent(node)}`, {
      metadata: { resourceVersion },
      spec: { taints: taints.length === 0 ? null : taints },
    });
  };
}

export function kubeStatusPatcher(kc: KubeConfig): StatusPatcher {
  const client = new KubeClient(kc);
  return async (plural, namespace, name, status) => {
    await patchStatusConditions(
      client,
      resourcePath({ apiVersion: 'security.istio.io/v1', plural, namespaced: true }, { namespace, name }),
      { conditions: status.conditions, ownedTypes: POLICY_CONDITION_TYPES },
    );
  };
}

interface WithSourceStatus {
  readonly metadata?: { readonly resourceVersion?: string };
  readonly status?: { readonly conditions?: Condition[]; readonly addresses?: unknown };
}

/**
 * Writes istiod's condition and, when given, `status.addresses` into a networking.istio.io/v1
 * object's status, keeping other controllers' conditions; conditional on the read
 * resourceVersion, re-reading on a conflict.
 */
export function kubeSourceStatusPatcher(kc: KubeConfig): SourceStatusPatcher {
  const client = new KubeClient(kc);
  return async (plural, namespace, name, status) => {
    const path = resourcePath(
      { apiVersion: 'networking.istio.io/v1', plural, namespaced: true },
      { namespace, name },
    );
    for (let attempt = 1; ; attempt++) {
      const live = await client.get<WithSourceStatus>(path);
      const current = live.status?.conditions;
      const sameConditions = ownedConditionsEqual(current, status.conditions, [ZTUNNEL_ACCEPTED]);
      const addresses = status.addresses?.map(a => ({ host: a.host, value: a.value }));
      const sameAddresses =
        addresses === undefined || JSON.stringify(live.status?.addresses ?? []) === JSON.stringify(addresses);
      if (sameConditions && sameAddresses) return false;
      const body: Record<string, unknown> = {
        conditions: mergeConditions(current, status.conditions, {
          ownedTypes: [ZTUNNEL_ACCEPTED],
          now: () => new Date(),
        }),
      };
      if (addresses !== undefined) body.addresses = addresses;
      try {
        await client.request('PATCH', `${path}/status`, {
          body: { metadata: { resourceVersion: live.metadata?.resourceVersion }, status: body },
          contentType: MergePatch,
        });
        return true;
      } catch (err) {
        if (!isConflict(err) || attempt >= 5) throw err;
      }
    }
  };
}

/**
 * CertificateSigningRequests (`certificates.k8s.io/v1`) for the Kubernetes CSR path: create,
 * approve through the approval subresource, poll for the certificate, delete.
 */
export function kubeCsrApi(kc: KubeConfig, timers: CsrPollTimers = defaultPollTimers): CsrApi {
  const client = new KubeClient(kc);
  const path = (name: string): string => `${CSR_API_PATH}/${encodeURIComponent(name)}`;
  return {
    async create(spec) {
      const created = await client.create<CsrObject>(CSR_API_PATH, {
        apiVersion: 'certificates.k8s.io/v1',
        kind: 'CertificateSigningRequest',
        metadata: { generateName: spec.generateName, labels: spec.labels },
        spec: {
          request: Buffer.from(spec.requestPem).toString('base64'),
          signerName: spec.signerName,
          expirationSeconds: spec.expirationSeconds,
          usages: [...spec.usages],
        },
      });
      const name = created.metadata?.name;
      if (name === undefined)
        throw new Error('the API server returned a CertificateSigningRequest without a name');
      return name;
    },
    async approve(name, reason, message) {
      const current = await client.get<CsrObject & Record<string, unknown>>(path(name));
      const conditions = [
        ...(current.status?.conditions ?? []),
        { type: 'Approved', status: 'True', reason, message, lastUpdateTime: new Date().toISOString() },
      ];
      await client.put(`${path(name)}/approval`, { ...current, status: { ...current.status, conditions } });
    },
    async waitForCertificate(name, timeoutMs) {
      const deadline = timers.now() + timeoutMs;
      let delay = 100;
      for (;;) {
        const outcome = csrOutcome(await client.get<CsrObject>(path(name)));
        if (outcome !== undefined) return outcome;
        if (timers.now() + delay > deadline) {
          return {
            ok: false,
            reason: `no certificate within ${Math.round(timeoutMs / 1000)}s; is the signer running?`,
          };
        }
        await timers.sleep(delay);
        delay = Math.min(delay * 2, 1000);
      }
    },
    async delete(name) {
      await client.delete(path(name));
    },
  };
}

export interface CsrPollTimers {
  now(): number;
  sleep(ms: number): Promise<void>;
}

const defaultPollTimers: CsrPollTimers = {
  now: () => Date.now(),
  sleep: ms => new Promise(resolve => setTimeout(resolve, ms)),
};
