/**
 * EnvoyFilter (`networking.istio.io/v1alpha3`) for waypoints: the subset Istio documents for
 * local rate limiting.
 *
 * - Selection: `targetRefs` to the waypoint's Gateway (same namespace); else `workloadSelector`
 *   against the waypoint pods' labels (`gateway.networking.k8s.io/gateway-name` and the Gateway's
 *   `spec.infrastructure.labels`); else every waypoint of the namespace (the root namespace: all).
 * - `applyTo: HTTP_FILTER` (context `SIDECAR_INBOUND`, `GATEWAY` or `ANY`; listener filter
 *   `envoy.filters.network.http_connection_manager`; optional `portNumber`, `filterChain.name`):
 *   `INSERT_BEFORE` / `INSERT_AFTER` / `REPLACE` / `REMOVE` relative to `subFilter.name` (no
 *   subfilter: first / last), `INSERT_FIRST`, `ADD` — applied to every HTTP filter chain of the
 *   waypoint.
 * - `applyTo: HTTP_ROUTE` with `MERGE` of `typed_per_filter_config` (optionally matched on
 *   `routeConfiguration.portNumber`, `vhost.name`, `vhost.route.name`).
 *
 * Patch values are proto JSON (snake_case or camelCase, durations as `"60s"`, `typed_config`
 * with `@type`, or a `udpa.type.v1.TypedStruct` / `xds.type.v3.TypedStruct` as Istio's docs
 * write it); they are encoded once, at validation, with the protos istiod loads. A patch that
 * cannot be encoded (unknown type, bad value) or is outside the subset is skipped and reported;
 * the other patches of the EnvoyFilter still apply. A patch whose result would leave the router
 * not last is skipped when applied. Patches apply in Istio's order: root namespace first, then
 * `priority`, creation time, name.
 */
import protobuf from 'protobufjs';
import { encodeEnvoy, envoyRoot } from './envoy-protos.ts';
import type { FieldIssue } from './types.ts';
import { Issues, arr, int, isRec, readMeta, rec, str } from './validate-support.ts';
import type { Meta, Rec } from './validate-support.ts';

export const HCM_FILTER = 'envoy.filters.network.http_connection_manager';
export const ROUTER_FILTER = 'envoy.filters.http.router';
const TYPED_STRUCTS = new Set(['udpa.type.v1.TypedStruct', 'xds.type.v3.TypedStruct']);
const CONTEXTS = new Set(['ANY', 'SIDECAR_INBOUND', 'GATEWAY']);

/** An `Any` as istiod's translators write it (protobufjs' `type_url` + bytes). */
export interface EncodedAny {
  readonly type_url: string;
  readonly value: Uint8Array;
}

/** An HTTP filter as the HCM's `httpFilters` holds it. */
export interface HttpFilterValue {
  readonly name: string;
  readonly typedConfig?: EncodedAny;
}

export type HttpFilterOperation =
  'INSERT_BEFORE' | 'INSERT_AFTER' | 'INSERT_FIRST' | 'ADD' | 'REPLACE' | 'REMOVE';

export interface HttpFilterPatch {
  readonly kind: 'http-filter';
  /** `<namespace>/<name>` of the EnvoyFilter and the patch's index, for logs. */
  readonly source: string;
  readonly operation: HttpFilterOperation;
  readonly subFilter: string | undefined;
  readonly portNumber: number | undefined;
  readonly filterChain: string | undefined;
  readonly value: HttpFilterValue | undefined;
}

export interface RoutePatch {
  readonly kind: 'route';
  readonly source: string;
  readonly portNumber: number | undefined;
  readonly vhost: string | undefined;
  readonly route: string | undefined;
  readonly typedPerFilterConfig: Readonly<Record<string, EncodedAny>>;
}

export type EnvoyFilterPatch = HttpFilterPatch | RoutePatch;

export interface ValidEnvoyFilter {
  readonly meta: Meta;
  readonly priority: number;
  /** Gateway names (in the filter's namespace) from `targetRefs`. */
  readonly gateways: readonly string[];
  /** Whether it has `targetRefs` at all (then only those Gateways are selected, maybe none). */
  readonly targeted: boolean;
  readonly workloadSelector: Readonly<Record<string, string>> | undefined;
  readonly patches: readonly EnvoyFilterPatch[];
}

function camel(key: string): string {
  return key.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

/** A proto3 JSON duration (`"1.5s"`) as `{seconds, nanos}`. */
function jsonDuration(v: string, path: string): { seconds: number; nanos: number } {
  const m = /^(-?\d+)(?:\.(\d{1,9}))?s$/.exec(v);
  if (m === null) throw new Error(`${path}: ${JSON.stringify(v)} is not a duration like "60s"`);
  return { seconds: Number(m[1]), nanos: Number((m[2] ?? '').padEnd(9, '0')) };
}

/**
 * Proto3 JSON (either field spelling) → the plain object `encodeEnvoy` takes, checked against
 * `type`: unknown fields throw; durations, wrappers and nested `Any`s are converted.
 */
function fromProtoJson(type: protobuf.Type, json: unknown, path: string): Record<string, unknown> {
  if (!isRec(json)) throw new Error(`${path}: must be an object`);
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(json)) {
    if (key === '@type') continue;
    const field = type.fields[camel(key)] ?? type.fields[key];
    if (field === undefined) throw new Error(`${path}.${key}: no such field in ${type.fullName.slice(1)}`);
    const fp = `${path}.${key}`;
    const one = (x: unknown, p: string): unknown => {
      const t = field.resolvedType;
      if (!(t instanceof protobuf.Type)) return x;
      if (t.fullName === '.google.protobuf.Duration' && typeof x === 'string') return jsonDuration(x, p);
      if (t.fullName === '.google.protobuf.Any') return encodeAny(x, p);
      if (t.fullName.startsWith('.google.protobuf.') && t.fullName.endsWith('Value') && !isRec(x))
        return { value: x };
      if (t.fullName === '.google.protobuf.Struct') return x;
      return fromProtoJson(t, x, p);
    };
    if (field.map)
      out[field.name] = Object.fromEntries(Object.entries(rec(v)).map(([k, x]) => [k, one(x, `${fp}.${k}`)]));
    else if (field.repeated) out[field.name] = arr(v).map((x, i) => one(x, `${fp}[${i}]`));
    else out[field.name] = one(v, fp);
  }
  return out;
}

/** A proto JSON `Any` (`@type`, or a TypedStruct's `type_url` + `value`) encoded. */
export function encodeAny(json: unknown, path: string): EncodedAny {
  const o = rec(json);
  const url = str(o['@type']) ?? '';
  let name = url.slice(url.lastIndexOf('/') + 1);
  let value: unknown = o;
  if (TYPED_STRUCTS.has(name)) {
    const inner = str(o.type_url) ?? str(o.typeUrl) ?? '';
    name = inner.slice(inner.lastIndexOf('/') + 1);
    value = o.value ?? {};
  }
  if (name === '') throw new Error(`${path}: needs "@type"`);
  let type: protobuf.Type;
  try {
    type = envoyRoot().lookupType(name);
  } catch {
    throw new Error(`${path}: type ${name} is not known to istiod`);
  }
  return {
    type_url: `type.googleapis.com/${name}`,
    value: encodeEnvoy(name, fromProtoJson(type, value, path)),
  };
}

const OPERATIONS = new Set<string>([
  'INSERT_BEFORE',
  'INSERT_AFTER',
  'INSERT_FIRST',
  'ADD',
  'REPLACE',
  'REMOVE',
]);

function readPatch(p: Rec, source: string, path: string, issues: Issues): EnvoyFilterPatch | undefined {
  const applyTo = str(p.applyTo) ?? '';
  const match = rec(p.match);
  const context = str(match.context) ?? 'ANY';
  const patch = rec(p.patch);
  const operation = str(patch.operation) ?? '';
  if (!CONTEXTS.has(context)) {
    // A SIDECAR_OUTBOUND patch is not for waypoints: not an error, just not applied.
    if (context !== 'SIDECAR_OUTBOUND') issues.add(`${path}.match.context`, `${context} is not supported`);
    return undefined;
  }
  if (applyTo === 'HTTP_FILTER') {
    const listener = rec(match.listener);
    const chain = rec(listener.filterChain);
    const filter = rec(chain.filter);
    const filterName = str(filter.name);
    if (filterName !== undefined && filterName !== HCM_FILTER) {
      issues.add(`${path}.match.listener.filterChain.filter.name`, `must be ${HCM_FILTER}`);
      return undefined;
    }
    if (!OPERATIONS.has(operation)) {
      issues.add(`${path}.patch.operation`, `${operation || '(none)'} is not supported for HTTP_FILTER`);
      return undefined;
    }
    const subFilter = str(rec(filter.subFilter).name);
    if ((operation === 'REPLACE' || operation === 'REMOVE') && subFilter === undefined) {
      issues.add(`${path}.match.listener.filterChain.filter.subFilter.name`, `is required for ${operation}`);
      return undefined;
    }
    let value: HttpFilterValue | undefined;
    if (operation !== 'REMOVE') {
      const v = rec(patch.value);
      const name = str(v.name) ?? '';
      if (name === '') {
        issues.add(`${path}.patch.value.name`, 'is required');
        return undefined;
      }
      const typed = v.typed_config ?? v.typedConfig;
      try {
        value =
          typed === undefined
            ? { name }
            : { name, typedConfig: encodeAny(typed, `${path}.patch.value.typed_config`) };
      } catch (err) {
        issues.add(`${path}.patch.value`, err instanceof Error ? err.message : String(err));
        return undefined;
      }
    }
    return {
      kind: 'http-filter',
      source,
      operation: operation as HttpFilterOperation,
      subFilter,
      portNumber: int(listener.portNumber),
      filterChain: str(chain.name),
      value,
    };
  }
  if (applyTo === 'HTTP_ROUTE') {
    if (operation !== 'MERGE') {
      issues.add(
        `${path}.patch.operation`,
        `${operation || '(none)'} is not supported for HTTP_ROUTE (MERGE only)`,
      );
      return undefined;
    }
    const v = rec(patch.value);
    const keys = Object.keys(v).filter(k => k !== 'typed_per_filter_config' && k !== 'typedPerFilterConfig');
    if (keys.length > 0) {
      issues.add(`${path}.patch.value`, `only typed_per_filter_config can be merged, not ${keys.join(', ')}`);
      return undefined;
    }
    const configs: Record<string, EncodedAny> = {};
    try {
      for (const [name, any] of Object.entries(rec(v.typed_per_filter_config ?? v.typedPerFilterConfig)))
        configs[name] = encodeAny(any, `${path}.patch.value.typed_per_filter_config.${name}`);
    } catch (err) {
      issues.add(`${path}.patch.value`, err instanceof Error ? err.message : String(err));
      return undefined;
    }
    const rc = rec(match.routeConfiguration);
    const vhost = rec(rc.vhost);
    return {
      kind: 'route',
      source,
      portNumber: int(rc.portNumber),
      vhost: str(vhost.name),
      route: str(rec(vhost.route).name),
      typedPerFilterConfig: configs,
    };
  }
  issues.add(
    `${path}.applyTo`,
    `${applyTo || '(none)'} is not supported for waypoints (HTTP_FILTER, HTTP_ROUTE)`,
  );
  return undefined;
}

/**
 * Validates an EnvoyFilter. `ok: false` only when nothing of it can apply (no metadata); the
 * issues of skipped patches come with a valid result too.
 */
export function validateEnvoyFilter(obj: unknown): {
  readonly value: ValidEnvoyFilter | undefined;
  readonly issues: readonly FieldIssue[];
} {
  const issues = new Issues();
  const meta = readMeta(obj, issues);
  if (meta === undefined) return { value: undefined, issues: issues.list };
  const spec = rec(rec(obj).spec);
  const gateways: string[] = [];
  const refs = [...arr(spec.targetRefs), ...(spec.targetRef !== undefined ? [spec.targetRef] : [])];
  for (const [i, t] of refs.entries()) {
    const r = rec(t);
    if (str(r.kind) === 'Gateway' && str(r.name) !== undefined) gateways.push(str(r.name)!);
    else issues.add(`spec.targetRefs[${i}]`, 'only Gateway targets (waypoints) are supported');
  }
  const selector = rec(spec.workloadSelector).labels;
  const workloadSelector = isRec(selector)
    ? Object.fromEntries(Object.entries(selector).map(([k, v]) => [k, String(v)]))
    : undefined;
  const source = `${meta.namespace}/${meta.name}`;
  const patches = arr(spec.configPatches).flatMap((p, i) => {
    const patch = readPatch(rec(p), `${source}#${i}`, `spec.configPatches[${i}]`, issues);
    return patch === undefined ? [] : [patch];
  });
  return {
    value: {
      meta,
      priority: int(spec.priority) ?? 0,
      gateways,
      targeted: refs.length > 0,
      workloadSelector,
      patches,
    },
    issues: issues.list,
  };
}

/** Whether `filter` applies to the waypoint `namespace/name` whose pods carry `podLabels`. */
export function envoyFilterSelects(
  filter: ValidEnvoyFilter,
  waypoint: {
    readonly namespace: string;
    readonly name: string;
    readonly podLabels: Readonly<Record<string, string>>;
  },
  rootNamespace: string,
): boolean {
  const ns = filter.meta.namespace;
  if (filter.targeted) return ns === waypoint.namespace && filter.gateways.includes(waypoint.name);
  if (ns !== rootNamespace && ns !== waypoint.namespace) return false;
  if (filter.workloadSelector === undefined) return true;
  return Object.entries(filter.workloadSelector).every(([k, v]) => waypoint.podLabels[k] === v);
}

/** Istio's application order: root namespace first, then priority, creation time, name. */
export function orderEnvoyFilters(
  filters: readonly ValidEnvoyFilter[],
  rootNamespace: string,
): ValidEnvoyFilter[] {
  const key = (f: ValidEnvoyFilter): [number, number, string, string] => [
    f.meta.namespace === rootNamespace ? 0 : 1,
    f.priority,
    f.meta.creationTimestamp,
    `${f.meta.namespace}/${f.meta.name}`,
  ];
  return [...filters].sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    for (let i = 0; i < ka.length; i++) {
      if (ka[i]! < kb[i]!) return -1;
      if (ka[i]! > kb[i]!) return 1;
    }
    return 0;
  });
}

/** A patch that could not be applied to one chain (logged; the chain keeps its other filters). */
export interface SkippedPatch {
  readonly source: string;
  readonly chain: string;
  readonly reason: string;
}

/**
 * Applies the HTTP_FILTER patches to one HTTP filter chain's filters (`name`, `port`); a patch
 * whose result would not end with the router is skipped.
 */
export function applyHttpFilterPatches(
  filters: readonly HttpFilterValue[],
  patches: readonly EnvoyFilterPatch[],
  chain: { readonly name: string; readonly port: number },
  skipped?: (s: SkippedPatch) => void,
): HttpFilterValue[] {
  let out = [...filters];
  for (const p of patches) {
    if (p.kind !== 'http-filter') continue;
    if (p.portNumber !== undefined && p.portNumber !== chain.port) continue;
    if (p.filterChain !== undefined && p.filterChain !== chain.name) continue;
    const at = p.subFilter === undefined ? -1 : out.findIndex(f => f.name === p.subFilter);
    // Istio: a subfilter that is not there means the patch does not apply.
    if (p.subFilter !== undefined && at < 0 && p.operation !== 'INSERT_FIRST' && p.operation !== 'ADD')
      continue;
    const next = [...out];
    const v = p.value!;
    switch (p.operation) {
      case 'INSERT_FIRST':
        next.unshift(v);
        break;
      case 'ADD':
        next.push(v);
        break;
      case 'INSERT_BEFORE':
        next.splice(at < 0 ? 0 : at, 0, v);
        break;
      case 'INSERT_AFTER':
        next.splice(at < 0 ? next.length : at + 1, 0, v);
        break;
      case 'REPLACE':
        next.splice(at, 1, v);
        break;
      case 'REMOVE':
        next.splice(at, 1);
        break;
    }
    if (next.at(-1)?.name !== ROUTER_FILTER || next.filter(f => f.name === ROUTER_FILTER).length !== 1) {
      skipped?.({
        source: p.source,
        chain: chain.name,
        reason: 'the router would not be the last HTTP filter',
      });
      continue;
    }
    out = next;
  }
  return out;
}

/**
 * Merges the HTTP_ROUTE patches' `typed_per_filter_config` into a RouteConfiguration (in the
 * translators' camelCase shape; `port` is the chain's service port). Returns a new object.
 */
export function applyRoutePatches(
  routeConfig: object,
  patches: readonly EnvoyFilterPatch[],
  port: number,
): object {
  const routePatches = patches.filter(
    (p): p is RoutePatch => p.kind === 'route' && (p.portNumber === undefined || p.portNumber === port),
  );
  if (routePatches.length === 0) return routeConfig;
  const rc = routeConfig as {
    virtualHosts?: {
      name?: string;
      routes?: { name?: string; typedPerFilterConfig?: Record<string, unknown> }[];
    }[];
  };
  return {
    ...rc,
    virtualHosts: (rc.virtualHosts ?? []).map(vh => ({
      ...vh,
      routes: (vh.routes ?? []).map(route => {
        let merged = route;
        for (const p of routePatches) {
          if (p.vhost !== undefined && p.vhost !== vh.name) continue;
          if (p.route !== undefined && p.route !== route.name) continue;
          merged = {
            ...merged,
            typedPerFilterConfig: { ...merged.typedPerFilterConfig, ...p.typedPerFilterConfig },
          };
        }
        return merged;
      }),
    })),
  };
}
