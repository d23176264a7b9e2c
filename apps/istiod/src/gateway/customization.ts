/**
 * ConfigMap customisation of the objects the deployment controller generates, as upstream
 * (Istio 1.27 `deploymentcontroller.go`, "GatewayClass defaults" and `infrastructure.parametersRef`):
 *
 * - class defaults: a ConfigMap in istiod's namespace labelled
 *   `gateway.istio.io/defaults-for-class=<class>` (any name; the oldest wins when several are);
 * - per Gateway: `spec.infrastructure.parametersRef` to a ConfigMap (`group: ""`,
 *   `kind: ConfigMap`) in the Gateway's namespace, applied after the class defaults.
 *
 * Each ConfigMap's `deployment`, `service` and `serviceAccount` keys hold a YAML patch applied as
 * a Kubernetes strategic merge patch to the generated object: maps merge, `null` deletes a key,
 * lists of named things merge by their key (containers, volumes, env, volume mounts by `name`;
 * container ports by `containerPort`, Service ports by `port`), other lists are replaced.
 * `horizontalPodAutoscaler` and `podDisruptionBudget` are read but not generated (reported).
 * Pure: the controller passes the ConfigMaps it watches.
 */
import { parse } from 'yaml';
import type { KubeObject } from '../kube/objects.ts';
import type { RenderedGateway, RenderedObject } from './render.ts';

export const CLASS_DEFAULTS_LABEL = 'gateway.istio.io/defaults-for-class';

/** The ConfigMap keys upstream reads; the first three are applied. */
export const CUSTOMIZATION_KEYS = [
  'deployment',
  'service',
  'serviceAccount',
  'horizontalPodAutoscaler',
  'podDisruptionBudget',
] as const;
type AppliedKey = 'deployment' | 'service' | 'serviceAccount';
const APPLIED: readonly AppliedKey[] = ['deployment', 'service', 'serviceAccount'];

export interface Customization {
  /** `namespace/name` of the ConfigMap, for logs. */
  readonly source: string;
  readonly patches: Partial<Record<AppliedKey, Record<string, unknown>>>;
  /** Keys present that we do not generate objects for. */
  readonly unsupported: readonly string[];
}

export type ParsedCustomization =
  | { readonly ok: true; readonly value: Customization }
  | { readonly ok: false; readonly errors: readonly string[] };

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A ConfigMap's customisation, or the keys whose YAML is not a map. */
export function parseCustomization(cm: KubeObject): ParsedCustomization {
  const source = `${cm.metadata?.namespace ?? ''}/${cm.metadata?.name ?? ''}`;
  const data = (cm as { data?: Record<string, unknown> }).data ?? {};
  const patches: Partial<Record<AppliedKey, Record<string, unknown>>> = {};
  const errors: string[] = [];
  const unsupported: string[] = [];
  for (const key of CUSTOMIZATION_KEYS) {
    const text = data[key];
    if (typeof text !== 'string' || text.trim() === '') continue;
    if (!(APPLIED as readonly string[]).includes(key)) {
      unsupported.push(key);
      continue;
    }
    let doc: unknown;
    try {
      doc = parse(text);
    } catch (err) {
      errors.push(
        `data.${key}: not YAML (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`,
      );
      continue;
    }
    if (!isRecord(doc)) errors.push(`data.${key}: must be a YAML map (a patch of the generated object)`);
    else patches[key as AppliedKey] = doc;
  }
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, value: { source, patches, unsupported } };
}

/** Merge keys of the lists a strategic merge patch merges instead of replacing, by field name. */
const MERGE_KEYS: Readonly<Record<string, string>> = {
  containers: 'name',
  initContainers: 'name',
  volumes: 'name',
  env: 'name',
  volumeMounts: 'mountPath',
  imagePullSecrets: 'name',
};

function mergeKeyOf(field: string, path: readonly string[]): string | undefined {
  if (field === 'ports')
    return path.includes('containers') || path.includes('initContainers') ? 'containerPort' : 'port';
  return MERGE_KEYS[field];
}

function mergeList(
  base: readonly unknown[],
  patch: readonly unknown[],
  key: string,
  path: readonly string[],
): unknown[] {
  const out = [...base];
  for (const item of patch) {
    if (!isRecord(item) || item[key] === undefined) {
      out.push(item);
      continue;
    }
    const i = out.findIndex(b => isRecord(b) && b[key] === item[key]);
    if (i === -1) out.push(item);
    else out[i] = mergeValue(out[i], item, path);
  }
  return out;
}

function mergeValue(base: unknown, patch: unknown, path: readonly string[]): unknown {
  if (!isRecord(base) || !isRecord(patch)) return patch;
  const deleted = new Set(
    Object.entries(patch)
      .filter(([, v]) => v === null)
      .map(([k]) => k),
  );
  const out: Record<string, unknown> = Object.fromEntries(
    Object.entries(base).filter(([k]) => !deleted.has(k)),
  );
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) continue;
    const key = mergeKeyOf(k, path);
    const b = out[k];
    if (key !== undefined && Array.isArray(b) && Array.isArray(v))
      out[k] = mergeList(b, v, key, [...path, k]);
    else out[k] = mergeValue(b, v, [...path, k]);
  }
  return out;
}

/** A strategic merge patch of one generated object (pure; the input is not changed). */
export function strategicMerge<T extends Record<string, unknown>>(
  base: T,
  patch: Record<string, unknown>,
): T {
  return mergeValue(base, patch, []) as T;
}

/**
 * The generated objects with the customisations applied in order (class defaults first, then the
 * Gateway's own). The name, namespace and owner of each object are kept as generated.
 */
export function applyCustomizations(
  rendered: RenderedGateway,
  layers: readonly Customization[],
): RenderedGateway {
  const apply = (obj: RenderedObject, key: AppliedKey): RenderedObject => {
    let out: RenderedObject = obj;
    for (const layer of layers) {
      const patch = layer.patches[key];
      if (patch !== undefined) out = strategicMerge(out, patch);
    }
    if (out === obj) return obj;
    return {
      ...out,
      apiVersion: obj.apiVersion,
      kind: obj.kind,
      metadata: {
        ...out.metadata,
        name: obj.metadata.name,
        namespace: obj.metadata.namespace,
        ownerReferences: obj.metadata.ownerReferences,
      },
    };
  };
  return {
    serviceAccount: apply(rendered.serviceAccount, 'serviceAccount'),
    deployment: apply(rendered.deployment, 'deployment'),
    service: apply(rendered.service, 'service'),
  };
}

/** The class-defaults ConfigMap for a class among istiod's namespace's ConfigMaps: the oldest labelled one. */
export function classDefaultsFor(
  className: string,
  configMaps: Iterable<KubeObject>,
  systemNamespace: string,
): KubeObject | undefined {
  let best: KubeObject | undefined;
  for (const cm of configMaps) {
    if (cm.metadata?.namespace !== systemNamespace) continue;
    if (cm.metadata.labels?.[CLASS_DEFAULTS_LABEL] !== className) continue;
    const created = String(cm.metadata.creationTimestamp ?? '');
    const bestCreated = String(best?.metadata?.creationTimestamp ?? '');
    if (
      best === undefined ||
      created < bestCreated ||
      (created === bestCreated && (cm.metadata.name ?? '') < (best.metadata?.name ?? ''))
    )
      best = cm;
  }
  return best;
}

/** A Gateway's `spec.infrastructure.parametersRef`, as the model holds it. */
export interface ParametersRef {
  readonly group: string;
  readonly kind: string;
  readonly name: string;
}

/**
 * Why a Gateway's `parametersRef` cannot be used (the message of its `Accepted=False`
 * `InvalidParameters` condition), or undefined when it resolves. A ConfigMap that exists but
 * holds none of the customisation keys is valid (nothing to apply).
 */
export function parametersRefProblem(
  gatewayNamespace: string,
  ref: ParametersRef,
  configMap: KubeObject | undefined,
  exists: boolean,
): string | undefined {
  const what = `spec.infrastructure.parametersRef ${ref.group === '' ? 'core' : ref.group}/${ref.kind} ${gatewayNamespace}/${ref.name}`;
  if (ref.group !== '' || ref.kind !== 'ConfigMap')
    return `${what}: unsupported kind (only a ConfigMap, group "", in the Gateway's namespace)`;
  if (!exists) return `${what}: not found`;
  if (configMap === undefined) return undefined;
  const parsed = parseCustomization(configMap);
  return parsed.ok ? undefined : `${what}: invalid: ${parsed.errors.join('; ')}`;
}
