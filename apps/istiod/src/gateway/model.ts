/**
 * Gateway API objects as the gateway controller uses them: `GatewayClass` and `Gateway` from the
 * informers are validated into these domain types before anything stores them. A Gateway that
 * fails validation is reported (and gets `Accepted=False` when its class is ours), never stored.
 */
import type { KubeObject, LabelSelector } from '../kube/objects.ts';

export type FromNamespaces = 'Same' | 'All' | 'Selector';

/** One `tls.certificateRefs[]` entry (group and kind defaulted: core `Secret`; namespace: the Gateway's). */
export interface CertificateRef {
  readonly group: string;
  readonly kind: string;
  readonly name: string;
  readonly namespace: string;
}

export interface GatewayListener {
  readonly name: string;
  readonly port: number;
  readonly protocol: string;
  /** `hostname`; undefined matches every host. */
  readonly hostname?: string;
  readonly allowedFrom: FromNamespaces;
  readonly allowedSelector?: LabelSelector;
  /** `allowedRoutes.kinds` as written (group defaulted); undefined: the protocol's kinds. */
  readonly allowedKinds?: readonly RouteGroupKind[];
  /** `tls` (mode defaulted to `Terminate`). */
  readonly tls?: {
    readonly mode: string;
    readonly certificateRefs: readonly CertificateRef[];
    /** `options["gateway.istio.io/tls-terminate-mode"]: MUTUAL`: client certificates required. */
    readonly mutual?: boolean;
  };
}

/** A validated Gateway (`gateway.networking.k8s.io/v1`). */
export interface GatewayModel {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly generation: number;
  readonly className: string;
  readonly listeners: readonly GatewayListener[];
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  /** `spec.infrastructure`: labels/annotations for the generated objects (undefined: none given). */
  readonly infrastructure?: {
    readonly labels?: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
    /** `parametersRef`: a ConfigMap of the Gateway's namespace customising the generated objects. */
    readonly parametersRef?: { readonly group: string; readonly kind: string; readonly name: string };
  };
  /** `status.conditions` and `status.addresses` as last read (for "write only on change"). */
  readonly status: GatewayStatusView;
}

export interface GatewayStatusAddress {
  readonly type: 'IPAddress' | 'Hostname';
  readonly value: string;
}

export interface GatewayStatusCondition {
  readonly type: string;
  readonly status: string;
  readonly reason?: string;
  readonly message?: string;
  readonly observedGeneration?: number;
}

export interface RouteGroupKind {
  readonly group: string;
  readonly kind: string;
}

/** One `status.listeners[]` entry. */
export interface GatewayListenerStatus {
  readonly name: string;
  readonly attachedRoutes: number;
  readonly supportedKinds: readonly RouteGroupKind[];
  readonly conditions: readonly GatewayStatusCondition[];
}

export interface GatewayStatusView {
  readonly conditions: readonly GatewayStatusCondition[];
  readonly addresses: readonly GatewayStatusAddress[];
  readonly listeners: readonly GatewayListenerStatus[];
}

/** A validated GatewayClass. */
export interface GatewayClassModel {
  readonly name: string;
  readonly generation: number;
  readonly controllerName: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly conditions: readonly GatewayStatusCondition[];
}

export type Validated<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly errors: readonly string[] };

type Loose = Record<string, unknown>;

function isRecord(v: unknown): v is Loose {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function stringMap(v: unknown, path: string, errors: string[]): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (!isRecord(v)) {
    errors.push(`${path}: must be a map of strings`);
    return {};
  }
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    if (typeof val === 'string') out[k] = val;
    else errors.push(`${path}.${k}: must be a string`);
  }
  return out;
}

function conditionsOf(status: unknown): GatewayStatusCondition[] {
  const raw = isRecord(status) ? status['conditions'] : undefined;
  if (!Array.isArray(raw)) return [];
  return raw.filter(
    (c): c is GatewayStatusCondition =>
      isRecord(c) && typeof c['type'] === 'string' && typeof c['status'] === 'string',
  );
}

function addressesOf(status: unknown): GatewayStatusAddress[] {
  const raw = isRecord(status) ? status['addresses'] : undefined;
  if (!Array.isArray(raw)) return [];
  const out: GatewayStatusAddress[] = [];
  for (const a of raw) {
    if (!isRecord(a) || typeof a['value'] !== 'string') continue;
    out.push({ type: a['type'] === 'Hostname' ? 'Hostname' : 'IPAddress', value: a['value'] });
  }
  return out;
}

function allowedKindsOf(allowedRoutes: unknown): RouteGroupKind[] | undefined {
  const raw = isRecord(allowedRoutes) ? allowedRoutes['kinds'] : undefined;
  if (!Array.isArray(raw)) return undefined;
  return raw.filter(isRecord).map(k => ({
    group: typeof k['group'] === 'string' ? k['group'] : 'gateway.networking.k8s.io',
    kind: typeof k['kind'] === 'string' ? k['kind'] : '',
  }));
}

function tlsOf(v: unknown, gatewayNamespace: string): GatewayListener['tls'] {
  if (!isRecord(v)) return undefined;
  const refs = Array.isArray(v['certificateRefs']) ? v['certificateRefs'] : [];
  const options = isRecord(v['options']) ? v['options'] : {};
  return {
    mode: typeof v['mode'] === 'string' ? v['mode'] : 'Terminate',
    ...(options['gateway.istio.io/tls-terminate-mode'] === 'MUTUAL' ? { mutual: true } : {}),
    certificateRefs: refs.filter(isRecord).map(r => ({
      group: typeof r['group'] === 'string' ? r['group'] : '',
      kind: typeof r['kind'] === 'string' ? r['kind'] : 'Secret',
      name: typeof r['name'] === 'string' ? r['name'] : '',
      namespace: typeof r['namespace'] === 'string' ? r['namespace'] : gatewayNamespace,
    })),
  };
}

function listenerOf(
  v: unknown,
  i: number,
  errors: string[],
  gatewayNamespace: string,
): GatewayListener | undefined {
  const path = `spec.listeners[${i}]`;
  if (!isRecord(v)) {
    errors.push(`${path}: must be an object`);
    return undefined;
  }
  const name = v['name'];
  const port = v['port'];
  const protocol = v['protocol'];
  if (typeof name !== 'string' || name === '') errors.push(`${path}.name: required`);
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535)
    errors.push(`${path}.port: must be an integer in 1..65535`);
  if (typeof protocol !== 'string' || protocol === '') errors.push(`${path}.protocol: required`);
  const ns = isRecord(v['allowedRoutes']) ? v['allowedRoutes']['namespaces'] : undefined;
  const from = isRecord(ns) ? ns['from'] : undefined;
  let allowedFrom: FromNamespaces = 'Same';
  if (from === 'All' || from === 'Selector' || from === 'Same') allowedFrom = from;
  else if (from !== undefined)
    errors.push(`${path}.allowedRoutes.namespaces.from: must be Same, All or Selector`);
  const selector = isRecord(ns) && isRecord(ns['selector']) ? (ns['selector'] as LabelSelector) : undefined;
  if (typeof name !== 'string' || typeof port !== 'number' || typeof protocol !== 'string') return undefined;
  const hostname = typeof v['hostname'] === 'string' && v['hostname'] !== '' ? v['hostname'] : undefined;
  const allowedKinds = allowedKindsOf(v['allowedRoutes']);
  const tls = tlsOf(v['tls'], gatewayNamespace);
  return {
    name,
    port,
    protocol,
    ...(hostname === undefined ? {} : { hostname }),
    allowedFrom,
    ...(selector === undefined ? {} : { allowedSelector: selector }),
    ...(allowedKinds === undefined ? {} : { allowedKinds }),
    ...(tls === undefined ? {} : { tls }),
  };
}

function listenersOf(status: unknown): GatewayListenerStatus[] {
  const raw = isRecord(status) ? status['listeners'] : undefined;
  if (!Array.isArray(raw)) return [];
  return raw.filter(isRecord).map(l => ({
    name: typeof l['name'] === 'string' ? l['name'] : '',
    attachedRoutes: typeof l['attachedRoutes'] === 'number' ? l['attachedRoutes'] : 0,
    supportedKinds: (Array.isArray(l['supportedKinds']) ? l['supportedKinds'] : [])
      .filter(isRecord)
      .map(k => ({
        group: typeof k['group'] === 'string' ? k['group'] : 'gateway.networking.k8s.io',
        kind: typeof k['kind'] === 'string' ? k['kind'] : '',
      })),
    conditions: conditionsOf(l),
  }));
}

/** The status a Gateway object carries now (conditions, addresses and listeners). */
export function statusViewOf(obj: KubeObject): GatewayStatusView {
  const status = (obj as { status?: unknown }).status;
  return { conditions: conditionsOf(status), addresses: addressesOf(status), listeners: listenersOf(status) };
}

/** A Gateway object from the API server into a `GatewayModel`, or every problem found. */
export function validateGateway(obj: KubeObject): Validated<GatewayModel> {
  const errors: string[] = [];
  const o = obj as KubeObject & { spec?: unknown; status?: unknown };
  const meta = o.metadata ?? {};
  const name = meta.name ?? '';
  const namespace = meta.namespace ?? '';
  if (name === '') errors.push('metadata.name: required');
  if (namespace === '') errors.push('metadata.namespace: required');
  const spec = isRecord(o.spec) ? o.spec : undefined;
  if (spec === undefined) errors.push('spec: required');
  const className = spec?.['gatewayClassName'];
  if (typeof className !== 'string' || className === '') errors.push('spec.gatewayClassName: required');
  const rawListeners = spec?.['listeners'];
  const listeners: GatewayListener[] = [];
  if (!Array.isArray(rawListeners)) errors.push('spec.listeners: must be a list');
  else
    rawListeners.forEach((l, i) => {
      const parsed = listenerOf(l, i, errors, namespace);
      if (parsed !== undefined) listeners.push(parsed);
    });
  const infra = spec?.['infrastructure'];
  let infrastructure: GatewayModel['infrastructure'];
  if (isRecord(infra)) {
    const labels =
      infra['labels'] === undefined
        ? undefined
        : stringMap(infra['labels'], 'spec.infrastructure.labels', errors);
    const annotations =
      infra['annotations'] === undefined
        ? undefined
        : stringMap(infra['annotations'], 'spec.infrastructure.annotations', errors);
    const ref = infra['parametersRef'];
    let parametersRef: { group: string; kind: string; name: string } | undefined;
    if (ref !== undefined) {
      const group = isRecord(ref) ? ref['group'] : undefined;
      const kind = isRecord(ref) ? ref['kind'] : undefined;
      const refName = isRecord(ref) ? ref['name'] : undefined;
      if (
        typeof group !== 'string' ||
        typeof kind !== 'string' ||
        typeof refName !== 'string' ||
        refName === ''
      )
        errors.push('spec.infrastructure.parametersRef: needs group, kind and name');
      else parametersRef = { group, kind, name: refName };
    }
    infrastructure = {
      ...(labels === undefined ? {} : { labels }),
      ...(annotations === undefined ? {} : { annotations }),
      ...(parametersRef === undefined ? {} : { parametersRef }),
    };
  }
  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    value: {
      namespace,
      name,
      uid: meta.uid ?? '',
      generation: meta.generation ?? 0,
      className: className as string,
      listeners,
      labels: { ...meta.labels },
      annotations: { ...meta.annotations },
      ...(infrastructure === undefined ? {} : { infrastructure }),
      status: statusViewOf(obj),
    },
  };
}

/** A GatewayClass object into a `GatewayClassModel`. */
export function validateGatewayClass(obj: KubeObject): Validated<GatewayClassModel> {
  const o = obj as KubeObject & { spec?: unknown; status?: unknown };
  const errors: string[] = [];
  const name = o.metadata?.name ?? '';
  if (name === '') errors.push('metadata.name: required');
  const controllerName = isRecord(o.spec) ? o.spec['controllerName'] : undefined;
  if (typeof controllerName !== 'string' || controllerName === '')
    errors.push('spec.controllerName: required');
  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    value: {
      name,
      generation: o.metadata?.generation ?? 0,
      controllerName: controllerName as string,
      labels: { ...o.metadata?.labels },
      conditions: conditionsOf(o.status),
    },
  };
}

/** `namespace/name` of a Gateway. */
export function gatewayKey(gw: { readonly namespace: string; readonly name: string }): string {
  return `${gw.namespace}/${gw.name}`;
}
