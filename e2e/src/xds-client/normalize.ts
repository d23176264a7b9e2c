/**
 * Turns decoded WDS resources into stable, diffable JSON: keys sorted, proto3 defaults left out,
 * enums by name, byte fields as IP strings (`10.244.0.5`, CIDRs as `10.0.0.0/8`), set-like lists
 * sorted. Golden files and the differential check against upstream istiod compare this form.
 *
 * Pod IPs change from run to run; `ipAliases` replaces known IPs with stable labels
 * (e.g. `10.244.1.7` → `pod:demo/a`) so snapshots of two runs, or of two istiods, compare equal.
 */
import { security, workload } from '@ambient-mesh/xds-types';

export type NormalizedValue =
  string | number | boolean | NormalizedValue[] | { [key: string]: NormalizedValue };
export type NormalizedObject = Record<string, NormalizedValue>;

export interface NormalizedSnapshot {
  /** Address resources by resource name: `{ workload: {...} }` or `{ service: {...} }`. */
  readonly addresses: Record<string, NormalizedObject>;
  /** Authorization resources by resource name. */
  readonly authorizations: Record<string, NormalizedObject>;
}

export interface NormalizeOptions {
  /** IP string → stable label, applied to every IP the snapshot carries. */
  readonly ipAliases?: ReadonlyMap<string, string>;
  /** Replaces resource names (and Workload uids) too, e.g. to map cluster ids; applied after ipAliases. */
  readonly renameResource?: (name: string) => string;
}

/** Fields whose order carries no meaning; sorted so two istiods compare equal. */
const SET_LIKE_FIELDS = new Set(['authorizationPolicies', 'subjectAltNames']);

/** Formats a 4- or 16-byte address; anything else as `bytes:<hex>` so it still shows up in a diff. */
export function ipToString(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  if (bytes.length === 16) {
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
    // Compress the longest run of zero groups (RFC 5952).
    let best = -1;
    let bestLen = 1;
    for (let i = 0; i < 8; i++) {
      let j = i;
      while (j < 8 && groups[j] === '0') j++;
      if (j - i > bestLen) {
        best = i;
        bestLen = j - i;
      }
    }
    if (best < 0) return groups.join(':');
    return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
  }
  return `bytes:${Buffer.from(bytes).toString('hex')}`;
}

function enumName(values: Readonly<Record<string, number>>, value: number): string {
  for (const [name, v] of Object.entries(values)) if (v === value) return name;
  return `UNKNOWN(${value})`;
}

class Normalizer {
  readonly #options: NormalizeOptions;

  constructor(options: NormalizeOptions) {
    this.#options = options;
  }

  ip(bytes: Uint8Array): string {
    const text = ipToString(bytes);
    return this.#options.ipAliases?.get(text) ?? text;
  }

  name(name: string): string {
    return this.#options.renameResource?.(name) ?? name;
  }

  address(address: workload.Address): NormalizedObject {
    if (address.workload !== undefined) return { workload: this.workload(address.workload) };
    if (address.service !== undefined) return { service: this.service(address.service) };
    return {};
  }

  workload(w: workload.Workload): NormalizedObject {
    const services: Record<string, NormalizedValue> = {};
    for (const [key, list] of Object.entries(w.services))
      services[key] = list.ports.map(p => compact({ ...p }));
    return compact({
      ...w,
      uid: this.name(w.uid),
      addresses: w.addresses.map(a => this.ip(a)),
      tunnelProtocol: enumName(workload.TunnelProtocol, w.tunnelProtocol),
      status: enumName(workload.WorkloadStatus, w.status),
      workloadType: enumName(workload.WorkloadType, w.workloadType),
      networkMode: enumName(workload.NetworkMode, w.networkMode),
      waypoint: this.gateway(w.waypoint),
      networkGateway: this.gateway(w.networkGateway),
      applicationTunnel:
        w.applicationTunnel === null
          ? null
          : {
              protocol: enumName(workload.ApplicationTunnel_Protocol, w.applicationTunnel.protocol),
              port: w.applicationTunnel.port,
            },
      capacity: w.capacity === null ? null : w.capacity.value,
      services,
      extensions: w.extensions.map(e => e.name),
    });
  }

  service(s: workload.Service): NormalizedObject {
    return compact({
      ...s,
      addresses: s.addresses.map(a => this.networkAddress(a)),
      ports: s.ports.map(p => compact({ ...p })),
      waypoint: this.gateway(s.waypoint),
      ipFamilies: enumName(workload.IPFamilies, s.ipFamilies),
      loadBalancing:
        s.loadBalancing === null
          ? null
          : {
              routingPreference: s.loadBalancing.routingPreference.map(r =>
                enumName(workload.LoadBalancing_Scope, r),
              ),
              mode: enumName(workload.LoadBalancing_Mode, s.loadBalancing.mode),
              healthPolicy: enumName(workload.LoadBalancing_HealthPolicy, s.loadBalancing.healthPolicy),
            },
      extensions: s.extensions.map(e => e.name),
    });
  }

  networkAddress(a: workload.NetworkAddress): string {
    return a.network === '' ? this.ip(a.address) : `${a.network}/${this.ip(a.address)}`;
  }

  gateway(g: workload.GatewayAddress | null): NormalizedValue | null {
    if (g === null) return null;
    const destination =
      g.hostname !== undefined
        ? { hostname: `${g.hostname.namespace}/${g.hostname.hostname}` }
        : g.address !== undefined
          ? { address: this.networkAddress(g.address) }
          : {};
    return compact({ ...destination, hboneMtlsPort: g.hboneMtlsPort });
  }

  authorization(a: security.Authorization): NormalizedObject {
    return compact({
      name: a.name,
      namespace: a.namespace,
      scope: enumName(security.Scope, a.scope),
      action: enumName(security.Action, a.action),
      rules: a.rules.map(rule => ({
        clauses: rule.clauses.map(clause => ({ matches: clause.matches.map(m => this.match(m)) })),
      })),
    });
  }

  match(m: security.Match): NormalizedObject {
    const strings = (list: security.StringMatch[]): NormalizedValue[] => list.map(stringMatch);
    const cidrs = (list: security.Address[]): string[] => list.map(a => `${this.ip(a.address)}/${a.length}`);
    const accounts = (list: security.ServiceAccountMatch[]): string[] =>
      list.map(s => `${s.namespace}/${s.serviceAccount}`);
    return compact({
      namespaces: strings(m.namespaces),
      notNamespaces: strings(m.notNamespaces),
      principals: strings(m.principals),
      notPrincipals: strings(m.notPrincipals),
      sourceIps: cidrs(m.sourceIps),
      notSourceIps: cidrs(m.notSourceIps),
      destinationIps: cidrs(m.destinationIps),
      notDestinationIps: cidrs(m.notDestinationIps),
      destinationPorts: m.destinationPorts,
      notDestinationPorts: m.notDestinationPorts,
      serviceAccounts: accounts(m.serviceAccounts),
      notServiceAccounts: accounts(m.notServiceAccounts),
    });
  }
}

function stringMatch(s: security.StringMatch): NormalizedValue {
  if (s.exact !== undefined) return { exact: s.exact };
  if (s.prefix !== undefined) return { prefix: s.prefix };
  if (s.suffix !== undefined) return { suffix: s.suffix };
  if (s.presence !== undefined) return { presence: true };
  return {};
}

/** Drops proto3 defaults (empty string, 0, false, null, empty list/map), sorts keys and set-like lists. */
function compact(value: Record<string, unknown>): NormalizedObject {
  const out: NormalizedObject = {};
  for (const key of Object.keys(value).sort()) {
    // Virtual oneof discriminators of the decoded shape: the member itself says which is set.
    if (key === 'type' || key === 'destination' || key === 'matchType') continue;
    const v = compactValue(value[key]);
    if (v === undefined) continue;
    out[key] = SET_LIKE_FIELDS.has(key) && Array.isArray(v) ? [...v].sort(compareJson) : v;
  }
  return out;
}

function compactValue(value: unknown): NormalizedValue | undefined {
  if (value === null || value === undefined || value === '' || value === false || value === 0)
    return undefined;
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  if (value instanceof Uint8Array) return `bytes:${Buffer.from(value).toString('hex')}`;
  if (Array.isArray(value)) {
    if (value.length === 0) return undefined;
    // Keep positions: an element that compacts away is an explicit empty object.
    return value.map(v => compactValue(v) ?? {});
  }
  if (typeof value === 'object') {
    const obj = compact(value as Record<string, unknown>);
    return Object.keys(obj).length === 0 ? undefined : obj;
  }
  return typeof value === 'bigint' ? value.toString() : undefined;
}

function compareJson(a: NormalizedValue, b: NormalizedValue): number {
  const x = JSON.stringify(a);
  const y = JSON.stringify(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** The normalized form of a set of decoded Address and Authorization resources. */
export function normalizeSnapshot(
  snapshot: {
    readonly addresses: ReadonlyMap<string, workload.Address>;
    readonly authorizations: ReadonlyMap<string, security.Authorization>;
  },
  options: NormalizeOptions = {},
): NormalizedSnapshot {
  const n = new Normalizer(options);
  const addresses: Record<string, NormalizedObject> = {};
  for (const name of [...snapshot.addresses.keys()].map(k => [n.name(k), k] as const).sort(byFirst)) {
    const value = snapshot.addresses.get(name[1]);
    if (value !== undefined) addresses[name[0]] = n.address(value);
  }
  const authorizations: Record<string, NormalizedObject> = {};
  for (const name of [...snapshot.authorizations.keys()].map(k => [n.name(k), k] as const).sort(byFirst)) {
    const value = snapshot.authorizations.get(name[1]);
    if (value !== undefined) authorizations[name[0]] = n.authorization(value);
  }
  return { addresses, authorizations };
}

function byFirst(a: readonly [string, string], b: readonly [string, string]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}

/** Pretty JSON with a trailing newline: the golden-file format. */
export function snapshotToJson(snapshot: NormalizedSnapshot): string {
  return `${JSON.stringify(snapshot, null, 2)}\n`;
}

/** One difference between two normalized values. `left`/`right` are undefined where absent. */
export interface SnapshotDifference {
  /** JSON-pointer-like path, e.g. `addresses/Kubernetes//Pod/demo/a/workload/status`. */
  readonly path: string;
  readonly left: NormalizedValue | undefined;
  readonly right: NormalizedValue | undefined;
}

/**
 * Every leaf-level difference between two normalized snapshots (or sub-trees), in path order.
 * Lists are compared element by element; a length change shows as added/removed elements.
 */
export function diffNormalized(
  left: NormalizedValue | NormalizedSnapshot | undefined,
  right: NormalizedValue | NormalizedSnapshot | undefined,
  path = '',
): SnapshotDifference[] {
  const out: SnapshotDifference[] = [];
  walk(left as NormalizedValue | undefined, right as NormalizedValue | undefined, path, out);
  return out;
}

function walk(
  left: NormalizedValue | undefined,
  right: NormalizedValue | undefined,
  path: string,
  out: SnapshotDifference[],
): void {
  if (isObject(left) && isObject(right)) {
    const keys = [...new Set([...Object.keys(left), ...Object.keys(right)])].sort();
    for (const k of keys) walk(left[k], right[k], path === '' ? k : `${path}/${k}`, out);
    return;
  }
  if (Array.isArray(left) && Array.isArray(right)) {
    const n = Math.max(left.length, right.length);
    for (let i = 0; i < n; i++) walk(left[i], right[i], `${path}[${i}]`, out);
    return;
  }
  if (JSON.stringify(left) !== JSON.stringify(right)) out.push({ path, left, right });
}

function isObject(v: NormalizedValue | undefined): v is { [key: string]: NormalizedValue } {
  return typeof v === 'object' && !Array.isArray(v);
}
