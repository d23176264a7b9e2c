// The typed subset of Istio's Helm values the operator understands, per CR kind, and the check
// that refuses anything else: unlike Sail, an unknown or misplaced field is reported
// (Reconciled=False, reason InvalidValues) instead of being silently ignored.

/** A free-form subtree (any keys), a leaf of the given JSON type, or a nested shape. */
type Leaf = 'string' | 'boolean' | 'integer' | 'open' | 'stringMap' | 'stringList' | 'list';
export interface ValuesShape {
  readonly [key: string]: Leaf | ValuesShape;
}

export interface GlobalValues {
  /** The CA of the proxies istiod deploys (waypoints, gateways) when it is not istiod. */
  caAddress?: string;
  hub?: string;
  tag?: string;
  imagePullPolicy?: string;
  istioNamespace?: string;
  logAsJson?: boolean;
  logging?: { level?: string };
  meshID?: string;
  multiCluster?: { clusterName?: string };
  network?: string;
  platform?: string;
  proxy?: Record<string, unknown>;
  resources?: Record<string, unknown>;
}

/** Settings every component's pod accepts. */
export interface PodValues {
  enabled?: boolean;
  hub?: string;
  tag?: string;
  image?: string;
  env?: Record<string, string>;
  podAnnotations?: Record<string, string>;
  podLabels?: Record<string, string>;
  resources?: Record<string, unknown>;
  nodeSelector?: Record<string, string>;
  tolerations?: Record<string, unknown>[];
  logLevel?: string;
}

export interface IstioValues {
  profile?: string;
  revision?: string;
  defaultRevision?: string;
  compatibilityVersion?: string;
  global?: GlobalValues;
  pilot?: PodValues & {
    replicaCount?: number;
    autoscaleEnabled?: boolean;
    trustedZtunnelNamespace?: string;
    cni?: { enabled?: boolean; provider?: string };
    /** istiod removes the `cni.istio.io/not-ready` node taint once the node's CNI agent is Ready. */
    taint?: { enabled?: boolean; namespace?: string };
    extraContainerArgs?: string[];
  };
  meshConfig?: Record<string, unknown>;
  base?: Record<string, unknown>;
  gatewayClasses?: Record<string, unknown>;
  sidecarInjectorWebhook?: Record<string, unknown>;
  telemetry?: Record<string, unknown>;
  istiodRemote?: Record<string, unknown>;
  experimental?: Record<string, unknown>;
}

export interface CniValues {
  global?: GlobalValues;
  cni?: PodValues & {
    ambient?: {
      enabled?: boolean;
      dnsCapture?: boolean;
      ipv6?: boolean;
      reconcileIptablesOnStartup?: boolean;
    };
    cniBinDir?: string;
    cniConfDir?: string;
    excludeNamespaces?: string[];
    chained?: boolean;
    provider?: string;
  };
}

export interface ZtunnelValues {
  global?: GlobalValues;
  ztunnel?: PodValues & {
    caAddress?: string;
    xdsAddress?: string;
    istioNamespace?: string;
    multiCluster?: { clusterName?: string };
    network?: string;
    revision?: string;
    terminationGracePeriodSeconds?: number;
  };
}

const GLOBAL: ValuesShape = {
  caAddress: 'string',
  hub: 'string',
  tag: 'string',
  imagePullPolicy: 'string',
  istioNamespace: 'string',
  logAsJson: 'boolean',
  logging: { level: 'string' },
  meshID: 'string',
  multiCluster: { clusterName: 'string' },
  network: 'string',
  platform: 'string',
  proxy: 'open',
  resources: 'open',
};

const POD: ValuesShape = {
  enabled: 'boolean',
  hub: 'string',
  tag: 'string',
  image: 'string',
  env: 'stringMap',
  podAnnotations: 'stringMap',
  podLabels: 'stringMap',
  resources: 'open',
  nodeSelector: 'stringMap',
  tolerations: 'list',
  logLevel: 'string',
};

export const ISTIO_VALUES: ValuesShape = {
  profile: 'string',
  revision: 'string',
  defaultRevision: 'string',
  compatibilityVersion: 'string',
  global: GLOBAL,
  pilot: {
    ...POD,
    replicaCount: 'integer',
    autoscaleEnabled: 'boolean',
    trustedZtunnelNamespace: 'string',
    cni: { enabled: 'boolean', provider: 'string' },
    taint: { enabled: 'boolean', namespace: 'string' },
    extraContainerArgs: 'stringList',
  },
  meshConfig: 'open',
  base: 'open',
  gatewayClasses: 'open',
  sidecarInjectorWebhook: 'open',
  telemetry: 'open',
  istiodRemote: 'open',
  experimental: 'open',
};

export const CNI_VALUES: ValuesShape = {
  global: GLOBAL,
  cni: {
    ...POD,
    ambient: {
      enabled: 'boolean',
      dnsCapture: 'boolean',
      ipv6: 'boolean',
      reconcileIptablesOnStartup: 'boolean',
    },
    cniBinDir: 'string',
    cniConfDir: 'string',
    excludeNamespaces: 'stringList',
    chained: 'boolean',
    provider: 'string',
  },
};

export const ZTUNNEL_VALUES: ValuesShape = {
  global: GLOBAL,
  ztunnel: {
    ...POD,
    caAddress: 'string',
    xdsAddress: 'string',
    istioNamespace: 'string',
    multiCluster: { clusterName: 'string' },
    network: 'string',
    revision: 'string',
    terminationGracePeriodSeconds: 'integer',
  },
};

/** One field the operator refuses, with its path from the CR root (`spec.values.pilot.foo`). */
export interface ValuesProblem {
  readonly path: string;
  readonly problem: 'unknown field' | `expected ${string}`;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function leafProblem(leaf: Leaf, value: unknown): ValuesProblem['problem'] | undefined {
  switch (leaf) {
    case 'string':
      return typeof value === 'string' ? undefined : 'expected string';
    case 'boolean':
      return typeof value === 'boolean' ? undefined : 'expected boolean';
    case 'integer':
      return Number.isInteger(value) ? undefined : 'expected integer';
    case 'open':
      return isObject(value) ? undefined : 'expected object';
    case 'stringMap':
      return isObject(value) && Object.values(value).every(v => typeof v === 'string')
        ? undefined
        : 'expected map of strings';
    case 'stringList':
      return Array.isArray(value) && value.every(v => typeof v === 'string')
        ? undefined
        : 'expected list of strings';
    case 'list':
      return Array.isArray(value) ? undefined : 'expected list';
  }
}

/**
 * Every field of `values` outside `shape`, or of the wrong type, in document order. Empty when
 * the values are all understood.
 */
export function checkValues(values: unknown, shape: ValuesShape, path = 'spec.values'): ValuesProblem[] {
  if (values === undefined || values === null) return [];
  if (!isObject(values)) return [{ path, problem: 'expected object' }];
  const problems: ValuesProblem[] = [];
  for (const [key, value] of Object.entries(values)) {
    const here = `${path}.${key}`;
    const expected = shape[key];
    if (expected === undefined) {
      problems.push({ path: here, problem: 'unknown field' });
    } else if (value === null) {
      continue;
    } else if (typeof expected === 'string') {
      const problem = leafProblem(expected, value);
      if (problem !== undefined) problems.push({ path: here, problem });
    } else {
      problems.push(...checkValues(value, expected, here));
    }
  }
  return problems;
}

/** The InvalidValues condition message for `problems` (non-empty). */
export function invalidValuesMessage(problems: readonly ValuesProblem[]): string {
  return `invalid values: ${problems.map(p => `${p.path}: ${p.problem}`).join('; ')}`;
}
