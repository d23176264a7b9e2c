/**
 * The waypoint side of the differential check (issue 18): a delta-xDS capture of what an istiod
 * sends a waypoint proxy (LDS and CDS wildcard, RDS for every name a listener refers to), and a
 * *semantic* projection of it — per Service chain: route order, matches, weights, timeouts,
 * retry policy; per cluster: LB policy, connect timeout, circuit-breaker thresholds, outlier
 * detection, HTTP protocol options; and the chain's RBAC rules. Names of filters, stat prefixes,
 * metadata and transport sockets are left out: they are how a proxy is wired, not what it does.
 * Also the Kubernetes side: status conditions and the generated Deployment/Service shape.
 */
import { decodeEnvoy, EnvoyType } from '@ambient-mesh/waypoint';
import { EnvoyTypeUrls } from '@ambient-mesh/istiod';
import type { DeltaTestClient } from '@ambient-mesh/istiod/testing';
import type { core } from '@ambient-mesh/xds-types';
import type { NormalizedObject, NormalizedValue } from '../xds-client/normalize.ts';

type Obj = Record<string, unknown>;

/** What a waypoint client holds: resources by type URL and name, as received (bytes). */
export interface WaypointCapture {
  readonly raw: Map<string, Map<string, Uint8Array>>;
}

export function decoded(capture: WaypointCapture, typeUrl: string, typeName: string): Map<string, Obj> {
  const out = new Map<string, Obj>();
  for (const [name, bytes] of capture.raw.get(typeUrl) ?? new Map<string, Uint8Array>())
    out.set(name, decodeEnvoy(typeName, bytes));
  return out;
}

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** Every HCM in the capture's listeners: the chain name with its HCM config. */
export function httpChains(capture: WaypointCapture): Map<string, Obj> {
  const out = new Map<string, Obj>();
  for (const l of decoded(capture, EnvoyTypeUrls.listener, EnvoyType.listener).values()) {
    for (const chain of arr(l.filter_chains)) {
      if (!isObj(chain)) continue;
      for (const f of arr(chain.filters)) {
        if (!isObj(f) || !isObj(f.typed_config)) continue;
        if (f.typed_config['@type'] !== `type.googleapis.com/${EnvoyType.httpConnectionManager}`) continue;
        out.set(typeof chain.name === 'string' ? chain.name : '', f.typed_config);
      }
    }
  }
  return out;
}

/** The RDS names the capture's HCMs refer to. */
export function rdsNames(capture: WaypointCapture): string[] {
  const names = new Set<string>();
  for (const hcm of httpChains(capture).values()) {
    const rds = hcm.rds;
    if (isObj(rds) && typeof rds.route_config_name === 'string') names.add(rds.route_config_name);
  }
  return [...names].sort();
}

/** The RouteConfiguration an HCM uses: inline (upstream's waypoint) or over RDS (ours). */
export function routeConfigOf(capture: WaypointCapture, hcm: Obj): Obj | undefined {
  if (isObj(hcm.route_config)) return hcm.route_config;
  const rds = hcm.rds;
  if (!isObj(rds) || typeof rds.route_config_name !== 'string') return undefined;
  return decoded(capture, EnvoyTypeUrls.routeConfiguration, EnvoyType.routeConfiguration).get(
    rds.route_config_name,
  );
}

function store(
  byName: Map<string, Uint8Array>,
  resp: {
    resources: readonly { name: string; resource?: { value: Uint8Array } | null }[];
    removedResources: readonly string[];
  },
): void {
  for (const r of resp.resources)
    if (r.resource !== undefined && r.resource !== null) byName.set(r.name, r.resource.value);
  for (const name of resp.removedResources) byName.delete(name);
}

/** Reads delta responses (ACKing each, subscribing RDS names as listeners name them) until `done` holds. */
export async function captureWaypointXds(
  client: DeltaTestClient,
  node: core.NodeInit,
  done: (c: WaypointCapture) => boolean,
  options: { readonly timeoutMs?: number; readonly what: string },
): Promise<WaypointCapture> {
  const capture: WaypointCapture = { raw: new Map() };
  client.send({ node, typeUrl: EnvoyTypeUrls.cluster, resourceNamesSubscribe: ['*'] });
  client.send({ node, typeUrl: EnvoyTypeUrls.listener, resourceNamesSubscribe: ['*'] });
  const subscribed = new Set<string>();
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  for (let i = 0; i < 500; i++) {
    if (done(capture)) return capture;
    const left = deadline - Date.now();
    if (left <= 0) break;
    const resp = await client.next(left);
    client.ack(resp);
    const byName = capture.raw.get(resp.typeUrl) ?? new Map<string, Uint8Array>();
    capture.raw.set(resp.typeUrl, byName);
    store(byName, resp);
    const wanted = rdsNames(capture).filter(n => !subscribed.has(n));
    if (wanted.length > 0) {
      for (const n of wanted) subscribed.add(n);
      client.send({ typeUrl: EnvoyTypeUrls.routeConfiguration, resourceNamesSubscribe: wanted });
    }
  }
  throw new Error(`${options.what}: the waypoint capture did not reach the expected state in time`);
}

/** Reads (and ACKs) whatever else the server sends until it is quiet for `quietMs`. */
export async function drain(
  client: DeltaTestClient,
  capture: WaypointCapture,
  quietMs = 3000,
): Promise<void> {
  for (let i = 0; i < 200; i++) {
    let resp;
    try {
      resp = await client.next(quietMs);
    } catch {
      return;
    }
    client.ack(resp);
    const byName = capture.raw.get(resp.typeUrl) ?? new Map<string, Uint8Array>();
    capture.raw.set(resp.typeUrl, byName);
    store(byName, resp);
  }
}

// ---- canonical values ----

/** A duration as milliseconds. */
function ms(d: unknown): number | undefined {
  if (!isObj(d)) return undefined;
  return Number(d.seconds ?? 0) * 1000 + Math.round(Number(d.nanos ?? 0) / 1e6);
}

/** Wrappers (`{value}`) unwrapped, durations as `<n>ms`, keys sorted, empty values dropped. */
export function canonical(v: unknown): NormalizedValue | undefined {
  if (v === null || v === undefined) return undefined;
  if (Array.isArray(v)) {
    const items = v.map(canonical).filter((x): x is NormalizedValue => x !== undefined);
    return items.length === 0 ? undefined : items;
  }
  if (isObj(v)) {
    const keys = Object.keys(v);
    if (keys.length === 1 && keys[0] === 'value' && typeof v.value !== 'object') return canonical(v.value);
    if (keys.every(k => k === 'seconds' || k === 'nanos') && keys.length > 0) return `${ms(v)}ms`;
    const out: NormalizedObject = {};
    for (const k of keys.sort()) {
      const c = canonical(v[k]);
      if (c !== undefined) out[k] = c;
    }
    return Object.keys(out).length === 0 ? undefined : out;
  }
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
  return typeof v === 'bigint' ? v.toString() : undefined;
}

const pick = (o: Obj, keys: readonly string[]): Obj =>
  Object.fromEntries(keys.filter(k => o[k] !== undefined).map(k => [k, o[k]]));

// ---- routes ----

function projectRetry(r: Obj): Obj {
  return {
    retry_on: typeof r.retry_on === 'string' ? r.retry_on.split(',').sort().join(',') : undefined,
    num_retries: r.num_retries,
    per_try_timeout: r.per_try_timeout,
    retriable_status_codes: arr(r.retriable_status_codes)
      .map(Number)
      .sort((a, b) => a - b),
    retry_back_off: r.retry_back_off,
    retry_host_predicate: arr(r.retry_host_predicate).map(p => (isObj(p) ? p.name : p)),
    host_selection_retry_max_attempts: r.host_selection_retry_max_attempts,
  };
}

/** A route match with Envoy's default made explicit (`case_sensitive` is true unless set false). */
function projectMatch(m: unknown): unknown {
  if (!isObj(m)) return m;
  const cs = isObj(m.case_sensitive) ? m.case_sensitive.value : m.case_sensitive;
  return { ...m, case_sensitive: cs === false ? false : undefined };
}

function projectRoute(route: Obj): Obj {
  const a = isObj(route.route) ? route.route : undefined;
  return {
    name: route.name,
    match: projectMatch(route.match),
    ...(a === undefined
      ? pick(route, ['redirect', 'direct_response'])
      : {
          cluster: a.cluster,
          weighted_clusters: isObj(a.weighted_clusters)
            ? arr(a.weighted_clusters.clusters).map(c => (isObj(c) ? pick(c, ['name', 'weight']) : c))
            : undefined,
          timeout: a.timeout ?? { seconds: 15 }, // Envoy's default when unset
          idle_timeout: a.idle_timeout,
          max_stream_duration: a.max_stream_duration,
          retry_policy: isObj(a.retry_policy) ? projectRetry(a.retry_policy) : undefined,
          hash_policy: a.hash_policy,
        }),
    per_filter: Object.keys(isObj(route.typed_per_filter_config) ? route.typed_per_filter_config : {}).sort(),
  };
}

/** The route semantics of one RouteConfiguration: virtual hosts (domains sorted) with their routes in order. */
export function projectRouteConfiguration(rc: Obj): NormalizedValue | undefined {
  return canonical({
    virtual_hosts: arr(rc.virtual_hosts).map(vh =>
      isObj(vh)
        ? {
            domains: arr(vh.domains).map(String).sort(),
            routes: arr(vh.routes).map(r => (isObj(r) ? projectRoute(r) : r)),
            retry_policy: isObj(vh.retry_policy) ? projectRetry(vh.retry_policy) : undefined,
          }
        : vh,
    ),
  });
}

// ---- clusters ----

const HTTP_OPTIONS = `type.googleapis.com/${EnvoyType.httpProtocolOptions}`;

/** A cluster's semantics: discovery type, LB policy, timeouts, circuit breakers, outlier detection, HTTP options. */
export function projectCluster(c: Obj): NormalizedValue | undefined {
  const opts = isObj(c.typed_extension_protocol_options) ? c.typed_extension_protocol_options : {};
  const http = Object.values(opts).find(o => isObj(o) && o['@type'] === HTTP_OPTIONS) as Obj | undefined;
  return canonical({
    type: c.type ?? 'STATIC',
    lb_policy: c.lb_policy ?? 'ROUND_ROBIN',
    least_request_lb_config: c.least_request_lb_config,
    connect_timeout: c.connect_timeout,
    circuit_breakers: isObj(c.circuit_breakers)
      ? {
          thresholds: arr(c.circuit_breakers.thresholds).map(t =>
            isObj(t)
              ? pick(t, [
                  'priority',
                  'max_connections',
                  'max_pending_requests',
                  'max_requests',
                  'max_retries',
                  'max_connection_pools',
                ])
              : t,
          ),
        }
      : undefined,
    outlier_detection: c.outlier_detection,
    common_http_protocol_options:
      http === undefined ? c.common_http_protocol_options : http.common_http_protocol_options,
    max_requests_per_connection: c.max_requests_per_connection,
    upstream_protocol: upstreamProtocol(http),
  });
}

/** HTTP/1.1 (Envoy's default without options), HTTP/2, or the downstream's protocol. */
function upstreamProtocol(http: Obj | undefined): string {
  if (http === undefined) return 'http1';
  if (http.use_downstream_protocol_config !== undefined) return 'downstream';
  if (http.auto_config !== undefined) return 'auto';
  const explicit = isObj(http.explicit_http_config) ? http.explicit_http_config : {};
  return explicit.http2_protocol_options !== undefined ? 'http2' : 'http1';
}

// ---- RBAC ----

const SET_OPS = ['and_rules', 'or_rules', 'and_ids', 'or_ids'] as const;

/**
 * An RBAC permission or principal with one-element `and_*`/`or_*` sets replaced by their element
 * (the same match either way), recursively.
 */
function flattenRbac(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(flattenRbac);
  if (!isObj(v)) return v;
  const keys = Object.keys(v);
  if (keys.length === 1) {
    const k = keys[0]!;
    const inner = v[k];
    if ((SET_OPS as readonly string[]).includes(k) && isObj(inner)) {
      const items = arr(inner.rules ?? inner.ids);
      if (items.length === 1) return flattenRbac(items[0]);
    }
  }
  return Object.fromEntries(keys.map(k => [k, flattenRbac(v[k])]));
}

/** The chain's RBAC filters (in order): action and policies (sorted by name), shadow rules apart. */
export function projectRbac(hcm: Obj): NormalizedValue | undefined {
  const rbac = `type.googleapis.com/${EnvoyType.httpRbac}`;
  return canonical(
    arr(hcm.http_filters)
      .filter(f => isObj(f) && isObj(f.typed_config) && f.typed_config['@type'] === rbac)
      .map(f => {
        const tc = (f as Obj).typed_config as Obj;
        const rules = (r: unknown): Obj | undefined =>
          isObj(r) ? { action: r.action ?? 'ALLOW', policies: flattenRbac(r.policies) } : undefined;
        return { rules: rules(tc.rules), shadow_rules: rules(tc.shadow_rules) };
      }),
  );
}

// ---- Kubernetes ----

interface Condition {
  readonly type: string;
  readonly status: string;
  readonly reason?: string;
}

const conditions = (cs: unknown): NormalizedValue | undefined =>
  canonical(
    Object.fromEntries(
      arr(cs)
        .filter(isObj)
        .map(c => c as unknown as Condition)
        .map(c => [c.type, { status: c.status, reason: c.reason }]),
    ),
  );

/** Gateway conditions, listener conditions and attached routes. */
export function projectGatewayStatus(gw: Obj): NormalizedValue | undefined {
  const st = isObj(gw.status) ? gw.status : {};
  return canonical({
    conditions: conditions(st.conditions),
    addresses: arr(st.addresses).map(a => (isObj(a) ? a.type : a)),
    listeners: Object.fromEntries(
      arr(st.listeners)
        .filter(isObj)
        .map((l): [string, unknown] => [
          str(l.name, ''),
          { conditions: conditions(l.conditions), attachedRoutes: l.attachedRoutes },
        ]),
    ),
  });
}

const str = (v: unknown, dflt: string): string =>
  typeof v === 'string' || typeof v === 'number' ? String(v) : dflt;

/** Route status: per parent (kind/name/port) the controller and conditions. */
export function projectRouteStatus(route: Obj): NormalizedValue | undefined {
  const st = isObj(route.status) ? route.status : {};
  return canonical({
    parents: Object.fromEntries(
      arr(st.parents)
        .filter(isObj)
        .map(p => {
          const ref = isObj(p.parentRef) ? p.parentRef : {};
          return [
            `${str(ref.kind, 'Gateway')}:${str(ref.name, '')}:${str(ref.port, '')}`,
            { controllerName: p.controllerName, conditions: conditions(p.conditions) },
          ];
        }),
    ),
  });
}

/** Policy status: its conditions (type, status, reason). */
export function projectPolicyStatus(policy: Obj): NormalizedValue | undefined {
  const st = isObj(policy.status) ? policy.status : {};
  return canonical({ conditions: conditions(st.conditions) });
}

const labelsOf = (o: Obj): Obj => (isObj(o.metadata) && isObj(o.metadata.labels) ? o.metadata.labels : {});
const owners = (o: Obj): unknown[] =>
  isObj(o.metadata)
    ? arr(o.metadata.ownerReferences).map(r => (isObj(r) ? `${String(r.kind)}/${String(r.name)}` : r))
    : [];

/** The generated Deployment's shape: labels, selector, pod labels, SA, containers with their ports. */
export function projectDeployment(d: Obj): NormalizedValue | undefined {
  const spec = isObj(d.spec) ? d.spec : {};
  const tpl = isObj(spec.template) ? spec.template : {};
  const pod = isObj(tpl.spec) ? tpl.spec : {};
  const names = (list: unknown, key: string): string[] =>
    arr(list)
      .filter(isObj)
      .map(x => str(x[key], ''))
      .sort();
  const probe = (p: unknown): unknown =>
    isObj(p)
      ? Object.fromEntries(
          Object.entries(p).filter(([k]) => ['httpGet', 'tcpSocket', 'grpc', 'exec'].includes(k)),
        )
      : undefined;
  return canonical({
    labels: labelsOf(d),
    owners: owners(d),
    replicas: spec.replicas,
    selector: isObj(spec.selector) ? spec.selector.matchLabels : undefined,
    podLabels: labelsOf(tpl),
    podAnnotations: Object.keys(
      isObj(tpl.metadata) && isObj(tpl.metadata.annotations) ? tpl.metadata.annotations : {},
    ).sort(),
    serviceAccountName: pod.serviceAccountName,
    terminationGracePeriodSeconds: pod.terminationGracePeriodSeconds,
    volumes: names(pod.volumes, 'name'),
    initContainers: names(pod.initContainers, 'name'),
    containers: Object.fromEntries(
      arr(pod.containers)
        .filter(isObj)
        .map((c): [string, unknown] => [
          str(c.name, ''),
          {
            args: c.args,
            ports: arr(c.ports)
              .filter(isObj)
              .map(p => pick(p, ['name', 'containerPort', 'protocol'])),
            env: names(c.env, 'name'),
            volumeMounts: names(c.volumeMounts, 'mountPath'),
            readinessProbe: probe(c.readinessProbe),
            startupProbe: probe(c.startupProbe),
            livenessProbe: probe(c.livenessProbe),
          },
        ]),
    ),
  });
}

/** The generated Service's shape: labels, type, selector and ports. */
export function projectService(s: Obj): NormalizedValue | undefined {
  const spec = isObj(s.spec) ? s.spec : {};
  return canonical({
    labels: labelsOf(s),
    owners: owners(s),
    type: spec.type,
    selector: spec.selector,
    ports: arr(spec.ports)
      .filter(isObj)
      .map(p => pick(p, ['name', 'port', 'targetPort', 'protocol', 'appProtocol'])),
  });
}
