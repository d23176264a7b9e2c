/**
 * Field-path bookkeeping shared by the validators: every problem is collected, none throws.
 */
import { CrdResource } from '@ambient-mesh/mesh-api';
import type { FieldError } from './errors.ts';
import type { ObjectMeta, WorkloadSelector } from './policy-types.ts';

/** The outcome of validating unknown input: the typed value, or every error found. */
export type ValidationResult<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly errors: readonly FieldError[] };

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Collects errors under field paths. */
export class Issues {
  readonly list: FieldError[] = [];

  add(path: string, message: string): void {
    this.list.push({ path, message });
  }

  /** Reports keys of `obj` outside `known`. */
  unknownKeys(obj: Record<string, unknown>, known: readonly string[], path: string): void {
    for (const key of Object.keys(obj)) {
      if (!known.includes(key)) {
        this.add(join(path, key), `unknown field; expected one of ${known.join(', ')}`);
      }
    }
  }

  /** Reads an optional object field; reports a wrong type. */
  object(obj: Record<string, unknown>, key: string, path: string): Record<string, unknown> | undefined {
    const v = obj[key];
    if (v === undefined || v === null) return undefined;
    if (!isRecord(v)) {
      this.add(join(path, key), 'must be an object');
      return undefined;
    }
    return v;
  }

  /** Reads an optional string field; reports a wrong type or (unless allowed) an empty string. */
  string(obj: Record<string, unknown>, key: string, path: string, allowEmpty = false): string | undefined {
    const v = obj[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') {
      this.add(join(path, key), 'must be a string');
      return undefined;
    }
    if (!allowEmpty && v === '') {
      this.add(join(path, key), 'must not be empty');
      return undefined;
    }
    return v;
  }

  /** Reads an optional array field; reports a wrong type. */
  array(obj: Record<string, unknown>, key: string, path: string): unknown[] | undefined {
    const v = obj[key];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v)) {
      this.add(join(path, key), 'must be a list');
      return undefined;
    }
    return v as unknown[];
  }

  /**
   * Reads an optional list of strings, checking each with `check` (which returns a message for a
   * bad value). Returns undefined for an absent or empty list.
   */
  stringList(
    obj: Record<string, unknown>,
    key: string,
    path: string,
    check?: (value: string) => string | undefined,
  ): string[] | undefined {
    const list = this.array(obj, key, path);
    if (list === undefined) return undefined;
    const out: string[] = [];
    list.forEach((item, i) => {
      const at = `${join(path, key)}[${i}]`;
      if (typeof item !== 'string') {
        this.add(at, 'must be a string');
        return;
      }
      if (item === '') {
        this.add(at, 'must not be empty');
        return;
      }
      const problem = check?.(item);
      if (problem !== undefined) this.add(at, problem);
      else out.push(item);
    });
    return out.length > 0 ? out : undefined;
  }

  /** Reads an optional `map<string, string>`. */
  stringMap(obj: Record<string, unknown>, key: string, path: string): Record<string, string> | undefined {
    const m = this.object(obj, key, path);
    if (m === undefined) return undefined;
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(m)) {
      if (k === '') this.add(join(path, key), 'keys must not be empty');
      else if (typeof v !== 'string') this.add(join(join(path, key), k), 'must be a string');
      else out[k] = v;
    }
    return out;
  }
}

/** `a.b`, quoting keys that are not plain identifiers: `a["x/y"]`. */
export function join(path: string, key: string): string {
  let plain = key.length > 0;
  for (let i = 0; i < key.length && plain; i++) {
    const c = key.charCodeAt(i);
    plain =
      (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57 && i > 0) || c === 95 || c === 36;
  }
  const part = plain ? key : `[${JSON.stringify(key)}]`;
  if (path === '') return part;
  return plain ? `${path}.${part}` : `${path}${part}`;
}

const DNS_LABEL_MAX = 63;

/** RFC 1123 label: lower-case alphanumerics and `-`, starting and ending alphanumeric. */
export function isDnsLabel(s: string): boolean {
  if (s.length === 0 || s.length > DNS_LABEL_MAX) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const alnum = (c >= 97 && c <= 122) || (c >= 48 && c <= 57);
    if (!alnum && !(c === 45 && i > 0 && i < s.length - 1)) return false;
  }
  return true;
}

/** RFC 1123 subdomain: dot-separated labels, at most 253 characters. */
export function isDnsSubdomain(s: string): boolean {
  return s.length > 0 && s.length <= 253 && s.split('.').every(isDnsLabel);
}

/** Validates `metadata` (name and namespace required). */
export function readMetadata(root: Record<string, unknown>, issues: Issues): ObjectMeta | undefined {
  const meta = root['metadata'];
  if (!isRecord(meta)) {
    issues.add('metadata', 'is required: set metadata.name and metadata.namespace');
    return undefined;
  }
  const name = issues.string(meta, 'name', 'metadata');
  const namespace = issues.string(meta, 'namespace', 'metadata');
  if (meta['name'] === undefined) issues.add('metadata.name', 'is required');
  if (meta['namespace'] === undefined) issues.add('metadata.namespace', 'is required');
  if (namespace !== undefined && !isDnsLabel(namespace)) {
    issues.add('metadata.namespace', 'must be a DNS label (lower-case letters, digits and -)');
  }
  const annotations = issues.stringMap(meta, 'annotations', 'metadata');
  const labels = issues.stringMap(meta, 'labels', 'metadata');
  // client-node deserializes timestamps into Dates (V1ObjectMeta); raw JSON has RFC 3339 strings.
  const rawTimestamp = meta['creationTimestamp'];
  const creationTimestamp =
    rawTimestamp instanceof Date && !Number.isNaN(rawTimestamp.getTime())
      ? rawTimestamp.toISOString()
      : issues.string(meta, 'creationTimestamp', 'metadata');
  if (creationTimestamp !== undefined && Number.isNaN(Date.parse(creationTimestamp))) {
    issues.add('metadata.creationTimestamp', 'must be an RFC 3339 timestamp');
  }
  const generation = meta['generation'];
  if (generation !== undefined && !Number.isSafeInteger(generation)) {
    issues.add('metadata.generation', 'must be an integer');
  }
  if (name === undefined || namespace === undefined) return undefined;
  const out: ObjectMeta = { name, namespace };
  if (annotations !== undefined) out.annotations = annotations;
  if (labels !== undefined) out.labels = labels;
  if (creationTimestamp !== undefined) out.creationTimestamp = creationTimestamp;
  if (typeof generation === 'number') out.generation = generation;
  return out;
}

/** Validates a `selector` object. */
export function readSelector(
  spec: Record<string, unknown>,
  path: string,
  issues: Issues,
): WorkloadSelector | undefined {
  const sel = issues.object(spec, 'selector', path);
  if (sel === undefined) return undefined;
  const at = join(path, 'selector');
  issues.unknownKeys(sel, ['matchLabels'], at);
  const matchLabels = issues.stringMap(sel, 'matchLabels', at);
  return matchLabels === undefined ? {} : { matchLabels };
}

/** Checks `apiVersion` (a version the CRD serves) and `kind` when present. */
export function checkTypeMeta(
  root: Record<string, unknown>,
  kind: 'AuthorizationPolicy' | 'PeerAuthentication',
  issues: Issues,
): void {
  const { group, version, versions } = CrdResource[kind];
  const apiVersion = root['apiVersion'];
  if (apiVersion !== undefined && !versions.some(v => apiVersion === `${group}/${v}`)) {
    const others = versions.filter(v => v !== version).join(', ');
    issues.add('apiVersion', `must be ${group}/${version} (or ${others})`);
  }
  if (root['kind'] !== undefined && root['kind'] !== kind) issues.add('kind', `must be ${kind}`);
}
