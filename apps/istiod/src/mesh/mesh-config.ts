/**
 * MeshConfig, as istiod reads it from the `mesh` key (YAML) of the `istio` ConfigMap in its
 * namespace: the one source of mesh-wide settings. Pure parsing with upstream's defaults for the
 * fields istiod uses (`rootNamespace`, `trustDomain`, `discoverySelectors`); other fields are kept
 * as given (shown by `/debug/mesh`). Invalid YAML or types are a `MeshConfigError` value.
 */
import { parse } from 'yaml';
import { MeshConfigError } from '../errors.ts';
import type { LabelSelector } from '../kube/objects.ts';

/** The ConfigMap and key upstream's istiod chart writes. */
export const MESH_CONFIG_MAP = 'istio';

/** The mesh ConfigMap of a revision: `istio`, or `istio-<revision>` (upstream's chart names it so). */
export function meshConfigMapName(revision = 'default'): string {
  return revision === 'default' || revision === '' ? MESH_CONFIG_MAP : `${MESH_CONFIG_MAP}-${revision}`;
}
export const MESH_CONFIG_KEY = 'mesh';

export interface MeshConfig {
  readonly rootNamespace: string;
  readonly trustDomain: string;
  /** Empty: every namespace is discovered. */
  readonly discoverySelectors: readonly LabelSelector[];
  /** Every field as written, defaults filled in (for `/debug/mesh`). */
  readonly raw: Readonly<Record<string, unknown>>;
}

export interface MeshConfigDefaults {
  /** istiod's namespace (upstream's default root namespace). */
  readonly rootNamespace: string;
  readonly trustDomain: string;
}

export type MeshConfigResult = { ok: true; value: MeshConfig } | { ok: false; error: MeshConfigError };

export function defaultMeshConfig(defaults: MeshConfigDefaults): MeshConfig {
  return {
    rootNamespace: defaults.rootNamespace,
    trustDomain: defaults.trustDomain,
    discoverySelectors: [],
    raw: { rootNamespace: defaults.rootNamespace, trustDomain: defaults.trustDomain },
  };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseSelector(v: unknown, at: string): LabelSelector | string {
  if (!isRecord(v)) return `${at} must be a label selector`;
  const matchLabels = v['matchLabels'];
  if (matchLabels !== undefined && matchLabels !== null) {
    if (!isRecord(matchLabels) || Object.values(matchLabels).some(x => typeof x !== 'string'))
      return `${at}.matchLabels must map strings to strings`;
  }
  const exprs = v['matchExpressions'];
  const parsedExprs: { key: string; operator: string; values?: string[] }[] = [];
  if (exprs !== undefined && exprs !== null) {
    if (!Array.isArray(exprs)) return `${at}.matchExpressions must be a list`;
    for (const [i, e] of exprs.entries()) {
      const where = `${at}.matchExpressions[${i}]`;
      if (!isRecord(e) || typeof e['key'] !== 'string' || typeof e['operator'] !== 'string')
        return `${where} needs a string key and operator`;
      if (!['In', 'NotIn', 'Exists', 'DoesNotExist'].includes(e['operator']))
        return `${where}.operator must be In, NotIn, Exists or DoesNotExist`;
      const values = e['values'];
      if (values !== undefined && values !== null) {
        if (!Array.isArray(values) || values.some(x => typeof x !== 'string'))
          return `${where}.values must be a list of strings`;
        parsedExprs.push({ key: e['key'], operator: e['operator'], values: values as string[] });
      } else parsedExprs.push({ key: e['key'], operator: e['operator'] });
    }
  }
  return {
    ...(isRecord(matchLabels) ? { matchLabels: matchLabels as Record<string, string> } : {}),
    ...(parsedExprs.length > 0 ? { matchExpressions: parsedExprs } : {}),
  };
}

/** Parses the `mesh` key; `undefined` or empty text gives the defaults (upstream does the same). */
export function parseMeshConfig(text: string | undefined, defaults: MeshConfigDefaults): MeshConfigResult {
  if (text === undefined || text.trim() === '') return { ok: true, value: defaultMeshConfig(defaults) };
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    return { ok: false, error: new MeshConfigError('not YAML', err) };
  }
  if (doc === null || doc === undefined) return { ok: true, value: defaultMeshConfig(defaults) };
  if (!isRecord(doc)) return { ok: false, error: new MeshConfigError('the document must be a mapping') };
  const str = (key: string, fallback: string): string | MeshConfigError => {
    const v = doc[key];
    if (v === undefined || v === null || v === '') return fallback;
    return typeof v === 'string' ? v : new MeshConfigError(`${key} must be a string`);
  };
  const rootNamespace = str('rootNamespace', defaults.rootNamespace);
  if (rootNamespace instanceof MeshConfigError) return { ok: false, error: rootNamespace };
  const trustDomain = str('trustDomain', defaults.trustDomain);
  if (trustDomain instanceof MeshConfigError) return { ok: false, error: trustDomain };
  const rawSelectors = doc['discoverySelectors'];
  const discoverySelectors: LabelSelector[] = [];
  if (rawSelectors !== undefined && rawSelectors !== null) {
    if (!Array.isArray(rawSelectors))
      return { ok: false, error: new MeshConfigError('discoverySelectors must be a list') };
    for (const [i, s] of rawSelectors.entries()) {
      const parsed = parseSelector(s, `discoverySelectors[${i}]`);
      if (typeof parsed === 'string') return { ok: false, error: new MeshConfigError(parsed) };
      discoverySelectors.push(parsed);
    }
  }
  return {
    ok: true,
    value: { rootNamespace, trustDomain, discoverySelectors, raw: { ...doc, rootNamespace, trustDomain } },
  };
}
