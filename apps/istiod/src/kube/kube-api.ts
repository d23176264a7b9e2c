/**
 * Adapters from `@kubernetes/client-node` to the narrow capabilities istiod's modules take:
 * TokenReview, Secret and ConfigMap stores. Everything else in istiod depends on those
 * interfaces, never on the client, so tests use in-memory fakes.
 */
/* eslint-disable @typescript-eslint/no-unsafe-class-instance-assignment -- client-node models are generated classes that its API documents as plain object literals (the serializer reads fields, never the prototype). */
import {
  ApiException,
  AuthenticationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1ConfigMap,
} from '@kubernetes/client-node';
import type { TokenReviewer } from '../auth/token-review.ts';
import type { SecretStore } from '../ca/ca-bootstrap.ts';
import type { ConfigMapStore } from '../ca/root-cert-publisher.ts';
import type { StatusPatcher } from './policy-status.ts';

/** A KubeConfig from a kubeconfig file, else `$KUBECONFIG`/in-cluster defaults. */
export function loadKubeConfig(path: string): KubeConfig {
  const kc = new KubeConfig();
  if (path !== '') kc.loadFromFile(path);
  else kc.loadFromDefault();
  return kc;
}

function isNotFound(err: unknown): boolean {
  return err instanceof ApiException && err.code === 404;
}

function isConflict(err: unknown): boolean {
  return err instanceof ApiException && err.code === 409;
}

export function kubeTokenReviewer(kc: KubeConfig): TokenReviewer {
  const api = kc.makeApiClient(AuthenticationV1Api);
  return async (token, audiences) => {
    const review = await api.createTokenReview({
      body: {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenReview',
        spec: { token, audiences: [...audiences] },
      },
    });
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

export function kubeSecretStore(kc: KubeConfig): SecretStore {
  const core = kc.makeApiClient(CoreV1Api);
  return {
    async read(namespace, name) {
      try {
        const secret = await core.readNamespacedSecret({ name, namespace });
        const out: Record<string, string> = {};
        for (const [k, v] of Object.entries(secret.data ?? {}))
          out[k] = Buffer.from(v, 'base64').toString('utf8');
        return out;
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },
    async create(namespace, name, type, data) {
      try {
        await core.createNamespacedSecret({
          namespace,
          body: { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace }, type, stringData: data },
        });
        return true;
      } catch (err) {
        if (isConflict(err)) return false;
        throw err;
      }
    },
  };
}

export function kubeConfigMapStore(kc: KubeConfig): ConfigMapStore {
  const core = kc.makeApiClient(CoreV1Api);
  const body = (
    namespace: string,
    name: string,
    data: Record<string, string>,
    labels: Record<string, string>,
  ): V1ConfigMap => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, namespace, labels },
    data,
  });
  return {
    async read(namespace, name) {
      try {
        return (await core.readNamespacedConfigMap({ name, namespace })).data ?? {};
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },
    async create(namespace, name, data, labels) {
      await core.createNamespacedConfigMap({ namespace, body: body(namespace, name, data, labels) });
    },
    async replace(namespace, name, data, labels) {
      await core.replaceNamespacedConfigMap({ name, namespace, body: body(namespace, name, data, labels) });
    },
  };
}

export function kubeStatusPatcher(kc: KubeConfig): StatusPatcher {
  const custom = kc.makeApiClient(CustomObjectsApi);
  return async (plural, namespace, name, status) => {
    await custom.patchNamespacedCustomObjectStatus(
      { group: 'security.istio.io', version: 'v1', plural, namespace, name, body: { status } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  };
}
