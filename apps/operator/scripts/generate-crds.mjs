// Generates the operator's CustomResourceDefinitions (deploy/operator/crds/*.yaml) from the
// definitions below: Istio, IstioRevision, IstioRevisionTag, IstioCNI and ZTunnel in
// sailoperator.io. The kinds, scopes, short names, printer columns, defaults and CEL rules follow
// the Sail operator's API so its CRs apply unchanged; `values` carries a typed subset of Istio's
// Helm values and keeps unknown fields, which the operator reports as `InvalidValues`.
//
//   node apps/operator/scripts/generate-crds.mjs          # rewrite the YAML
//   node apps/operator/scripts/generate-crds.mjs --check  # exit 1 when the YAML is stale
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';

const here = dirname(fileURLToPath(import.meta.url));
const outDir = join(here, '..', '..', '..', 'deploy', 'operator', 'crds');
const versions = JSON.parse(readFileSync(join(here, 'versions.json'), 'utf8'));

const GROUP = 'sailoperator.io';
const DEFAULT_VERSION = 'v1.27.9';
const PROFILES = [
  'ambient',
  'default',
  'demo',
  'empty',
  'external',
  'openshift',
  'openshift-ambient',
  'preview',
  'remote',
  'stable',
];

const str = (description, extra = {}) => ({ description, type: 'string', ...extra });
const bool = description => ({ description, type: 'boolean' });
const int = (description, extra = {}) => ({ description, type: 'integer', ...extra });
const obj = (description, properties, extra = {}) => ({ description, type: 'object', properties, ...extra });
const open = description => ({ description, type: 'object', 'x-kubernetes-preserve-unknown-fields': true });
const stringMap = description => ({ description, type: 'object', additionalProperties: { type: 'string' } });
const immutable = {
  'x-kubernetes-validations': [{ message: 'Value is immutable', rule: 'self == oldSelf' }],
};
const singleton = [{ message: "metadata.name must be 'default'", rule: "self.metadata.name == 'default'" }];

const age = {
  description: 'The age of the object',
  jsonPath: '.metadata.creationTimestamp',
  name: 'Age',
  type: 'date',
};
const col = (name, jsonPath, description) => ({ description, jsonPath, name, type: 'string' });
const readyCol = what =>
  col(
    'Ready',
    '.status.conditions[?(@.type=="Ready")].status',
    `Whether the ${what} is ready to handle requests.`,
  );
const stateCol = col('Status', '.status.state', 'The current state of this object.');
const inUseCol = col(
  'In use',
  '.status.conditions[?(@.type=="InUse")].status',
  'Whether the revision is being used by workloads.',
);

const condition = obj('A condition of the object.', {
  lastTransitionTime: str('When the condition last changed status.', { format: 'date-time' }),
  message: str('A human-readable description of the condition.'),
  reason: str('A machine-readable reason for the condition.'),
  status: str('True, False or Unknown.'),
  type: str('The condition type.'),
});
const baseStatus = {
  conditions: { description: 'The conditions of the object.', type: 'array', items: condition },
  observedGeneration: int('The metadata.generation the status describes.', { format: 'int64' }),
  state: str('The current state of the object.'),
};

const global = obj(
  'Values shared by every component.',
  {
    caAddress: str('The CA of the waypoints and gateways istiod deploys, when it is not istiod.'),
    hub: str('Image registry.'),
    tag: str('Image tag.'),
    imagePullPolicy: str('Image pull policy.'),
    istioNamespace: str('The namespace of the control plane.'),
    logAsJson: bool('Log in JSON.'),
    logging: obj('Logging settings.', { level: str('Per-scope log levels, "scope:level,...".') }),
    meshID: str('The mesh identifier.'),
    multiCluster: obj('Multi-cluster settings.', { clusterName: str('The cluster name.') }),
    network: str('The network of this cluster.'),
    platform: str('The Kubernetes platform.'),
    proxy: open('Proxy settings.'),
    resources: open('Default container resources.'),
  },
  { 'x-kubernetes-preserve-unknown-fields': true },
);
const podSettings = {
  enabled: bool('Whether the component is installed.'),
  hub: str('Image registry.'),
  tag: str('Image tag.'),
  image: str('Image name.'),
  env: stringMap('Extra environment variables.'),
  podAnnotations: stringMap('Extra pod annotations.'),
  podLabels: stringMap('Extra pod labels.'),
  resources: open('Container resources.'),
  nodeSelector: stringMap('Node selector.'),
  tolerations: { description: 'Tolerations.', type: 'array', items: open('A toleration.') },
  logLevel: str('Log level.'),
};
const pilot = obj(
  'istiod values.',
  {
    ...podSettings,
    replicaCount: int('Number of istiod replicas.'),
    autoscaleEnabled: bool('Whether the HorizontalPodAutoscaler is installed.'),
    trustedZtunnelNamespace: str('The namespace of ztunnel.'),
    cni: obj('CNI settings.', {
      enabled: bool('Whether the CNI node agent is used.'),
      provider: str('CNI provider.'),
    }),
    taint: obj('The cni.istio.io/not-ready node taint.', {
      enabled: bool('Whether istiod removes the taint from a node once its CNI agent is Ready.'),
    }),
    extraContainerArgs: { description: 'Extra istiod arguments.', type: 'array', items: { type: 'string' } },
  },
  { 'x-kubernetes-preserve-unknown-fields': true },
);
const istioValues = open("Helm values for the control plane (a typed subset of Istio's values).");
istioValues.properties = {
  profile: str('The profile (set by the operator from spec.profile).'),
  revision: str('The revision name.'),
  defaultRevision: str('The revision the default tag points to.'),
  compatibilityVersion: str('Behave as this earlier Istio version.'),
  global,
  pilot,
  meshConfig: open('MeshConfig.'),
  base: open('Base chart values.'),
  gatewayClasses: open('GatewayClass customizations.'),
  sidecarInjectorWebhook: open('Sidecar injector values.'),
  telemetry: open('Telemetry values.'),
  istiodRemote: open('Remote istiod values.'),
  experimental: open('Experimental values.'),
};
const cniValues = open('Helm values for the CNI node agent (a typed subset).');
cniValues.properties = {
  global,
  cni: obj(
    'CNI node agent values.',
    {
      ...podSettings,
      ambient: obj(
        'Ambient settings.',
        { enabled: bool('Whether ambient redirection is enabled.'), dnsCapture: bool('Capture DNS.') },
        { 'x-kubernetes-preserve-unknown-fields': true },
      ),
      cniBinDir: str('Host directory of CNI binaries.'),
      cniConfDir: str('Host directory of CNI configuration.'),
      excludeNamespaces: {
        description: 'Namespaces never redirected.',
        type: 'array',
        items: { type: 'string' },
      },
      chained: bool('Chain to the primary CNI plugin.'),
      provider: str('CNI provider.'),
    },
    { 'x-kubernetes-preserve-unknown-fields': true },
  ),
};
const ztunnelValues = open('Helm values for ztunnel (a typed subset).');
ztunnelValues.properties = {
  global,
  ztunnel: obj(
    'ztunnel values.',
    {
      ...podSettings,
      logLevel: { default: 'info', ...str('Log level.') },
      caAddress: str('CA address.'),
      xdsAddress: str('XDS address.'),
      istioNamespace: str('The namespace of the control plane.'),
      multiCluster: obj('Multi-cluster settings.', { clusterName: str('The cluster name.') }),
      network: str('The network of this cluster.'),
      revision: str('The revision ztunnel connects to.'),
      terminationGracePeriodSeconds: int('Pod termination grace period.', { default: 30, format: 'int64' }),
    },
    { 'x-kubernetes-preserve-unknown-fields': true },
  ),
};

const versionProp = (list, withDefault) => ({
  ...(withDefault ? { default: DEFAULT_VERSION } : {}),
  description: `Defines the version of Istio to install. Must be one of: ${list.join(', ')}.`,
  enum: list,
  type: 'string',
});
const profileProp = (extra = {}) => ({
  description: `The built-in installation profile. Must be one of: ${PROFILES.join(', ')}.`,
  enum: PROFILES,
  type: 'string',
  ...extra,
});

function root(kindDescription, spec, status, extra = {}) {
  return {
    openAPIV3Schema: {
      description: kindDescription,
      type: 'object',
      properties: {
        apiVersion: str('The versioned schema of this object.'),
        kind: str('The REST resource this object represents.'),
        metadata: { type: 'object' },
        spec,
        status: {
          type: 'object',
          properties: status,
          ...(extra.statusRequired ? { required: extra.statusRequired } : {}),
        },
      },
      ...(extra.validations ? { 'x-kubernetes-validations': extra.validations } : {}),
    },
  };
}

function crd(names, versionsList) {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${names.plural}.${GROUP}`,
      labels: { 'app.kubernetes.io/part-of': 'ambient-mesh-operator' },
    },
    spec: {
      group: GROUP,
      names: { categories: ['istio-io'], ...names },
      scope: 'Cluster',
      versions: versionsList.map(v => ({ subresources: { status: {} }, ...v })),
    },
  };
}

const istioNamespaceRule = guarded => ({
  message: 'spec.values.global.istioNamespace must match spec.namespace',
  rule: guarded
    ? '!has(self.values) || !has(self.values.global) || !has(self.values.global.istioNamespace) || self.values.global.istioNamespace == self.__namespace__'
    : 'self.values.global.istioNamespace == self.__namespace__',
});

const istio = crd({ kind: 'Istio', listKind: 'IstioList', plural: 'istios', singular: 'istio' }, [
  {
    name: 'v1',
    served: true,
    storage: true,
    additionalPrinterColumns: [
      col('Namespace', '.spec.namespace', 'The namespace for the control plane components.'),
      col('Profile', '.spec.profile', 'The selected profile (collection of value presets).'),
      col(
        'Revisions',
        '.status.revisions.total',
        'Total number of IstioRevision objects currently associated with this object.',
      ),
      col('Ready', '.status.revisions.ready', 'Number of revisions that are ready.'),
      col(
        'In use',
        '.status.revisions.inUse',
        'Number of revisions that are currently being used by workloads.',
      ),
      col('Active Revision', '.status.activeRevisionName', 'The name of the currently active revision.'),
      col('Status', '.status.state', 'The current state of the active revision.'),
      col('Version', '.spec.version', 'The version of the control plane installation.'),
      age,
    ],
    schema: root(
      'An Istio control plane: the operator keeps one IstioRevision per active version.',
      {
        default: { namespace: 'istio-system', updateStrategy: { type: 'InPlace' }, version: DEFAULT_VERSION },
        description: 'The desired state of the control plane.',
        type: 'object',
        required: ['namespace', 'version'],
        properties: {
          namespace: {
            default: 'istio-system',
            ...str('Namespace of the control plane. Immutable.'),
            ...immutable,
          },
          profile: profileProp(),
          updateStrategy: {
            default: { type: 'InPlace' },
            description: 'How a version change is rolled out.',
            type: 'object',
            properties: {
              inactiveRevisionDeletionGracePeriodSeconds: int(
                'Seconds to keep an unused non-active revision (default 30).',
                { format: 'int64', minimum: 0 },
              ),
              type: {
                default: 'InPlace',
                ...str('InPlace or RevisionBased.'),
                enum: ['InPlace', 'RevisionBased'],
              },
              updateWorkloads: bool('Move workloads to the new revision automatically.'),
            },
          },
          values: istioValues,
          version: versionProp(versions.istio, true),
        },
        'x-kubernetes-validations': [istioNamespaceRule(true)],
      },
      {
        ...baseStatus,
        activeRevisionName: str('The name of the active revision.'),
        revisions: obj(
          'Revision counts.',
          {
            inUse: int('Revisions used by workloads.'),
            ready: int('Revisions that are ready.'),
            total: int('Revisions that exist.'),
          },
          { required: ['inUse', 'ready', 'total'] },
        ),
      },
    ),
  },
]);

const istioRevision = crd(
  {
    kind: 'IstioRevision',
    listKind: 'IstioRevisionList',
    plural: 'istiorevisions',
    shortNames: ['istiorev'],
    singular: 'istiorevision',
  },
  [
    {
      name: 'v1',
      served: true,
      storage: true,
      additionalPrinterColumns: [
        col('Namespace', '.spec.namespace', 'The namespace for the control plane components.'),
        col('Profile', '.spec.values.profile', 'The selected profile (collection of value presets).'),
        readyCol('control plane installation'),
        stateCol,
        inUseCol,
        col('Version', '.spec.version', 'The version of the control plane installation.'),
        age,
      ],
      schema: root(
        'One control plane instance (istiod) of an Istio.',
        {
          description: 'The desired state of the revision.',
          type: 'object',
          required: ['namespace', 'version'],
          properties: {
            namespace: { ...str('Namespace of the control plane. Immutable.'), ...immutable },
            values: istioValues,
            version: versionProp(versions.istioRevision, false),
          },
          'x-kubernetes-validations': [istioNamespaceRule(false)],
        },
        baseStatus,
        {
          validations: [
            {
              message: "spec.values.revision must match metadata.name or be empty when the name is 'default'",
              rule: "self.metadata.name == 'default' ? (!has(self.spec.values.revision) || size(self.spec.values.revision) == 0) : self.spec.values.revision == self.metadata.name",
            },
          ],
        },
      ),
    },
  ],
);

const istioRevisionTag = crd(
  {
    kind: 'IstioRevisionTag',
    listKind: 'IstioRevisionTagList',
    plural: 'istiorevisiontags',
    shortNames: ['istiorevtag'],
    singular: 'istiorevisiontag',
  },
  [
    {
      name: 'v1',
      served: true,
      storage: true,
      additionalPrinterColumns: [
        stateCol,
        col(
          'In use',
          '.status.conditions[?(@.type=="InUse")].status',
          'Whether the tag is being used by workloads.',
        ),
        col('Revision', '.status.istioRevision', 'The IstioRevision this object is referencing.'),
        age,
      ],
      schema: root(
        'A tag that points at an Istio or IstioRevision.',
        {
          description: 'The desired state of the tag.',
          type: 'object',
          required: ['targetRef'],
          properties: {
            targetRef: obj(
              'The Istio or IstioRevision the tag points at.',
              {
                kind: str('Istio or IstioRevision.', { maxLength: 253, minLength: 1 }),
                name: str('The name of the target.', { maxLength: 253, minLength: 1 }),
              },
              { required: ['kind', 'name'] },
            ),
          },
        },
        {
          ...baseStatus,
          istioRevision: str('The IstioRevision the tag resolves to.'),
          istiodNamespace: str("The namespace of that revision's istiod."),
        },
        { statusRequired: ['istioRevision', 'istiodNamespace'] },
      ),
    },
  ],
);

const istioCni = crd(
  { kind: 'IstioCNI', listKind: 'IstioCNIList', plural: 'istiocnis', singular: 'istiocni' },
  [
    {
      name: 'v1',
      served: true,
      storage: true,
      additionalPrinterColumns: [
        col('Namespace', '.spec.namespace', 'The namespace of the istio-cni-node DaemonSet.'),
        col('Profile', '.spec.profile', 'The selected profile (collection of value presets).'),
        readyCol('Istio CNI installation'),
        stateCol,
        col('Version', '.spec.version', 'The version of the Istio CNI installation.'),
        age,
      ],
      schema: root(
        'The CNI node agent. Its only allowed name is "default".',
        {
          default: { namespace: 'istio-cni', version: DEFAULT_VERSION },
          description: 'The desired state of the CNI node agent.',
          type: 'object',
          required: ['namespace', 'version'],
          properties: {
            namespace: {
              default: 'istio-cni',
              ...str('Namespace of the DaemonSet. Immutable.'),
              ...immutable,
            },
            profile: profileProp(),
            values: cniValues,
            version: versionProp(versions.istio, true),
          },
        },
        baseStatus,
        { validations: singleton },
      ),
    },
  ],
);

const ztunnelColumns = withProfile => [
  col('Namespace', '.spec.namespace', 'The namespace for the ztunnel component.'),
  ...(withProfile
    ? [col('Profile', '.spec.values.profile', 'The selected profile (collection of value presets).')]
    : []),
  readyCol('Istio ztunnel installation'),
  stateCol,
  col('Version', '.spec.version', 'The version of the Istio ztunnel installation.'),
  age,
];
const ztunnelSchema = withProfile =>
  root(
    'The ztunnel node proxy. Its only allowed name is "default".',
    {
      default: {
        namespace: 'ztunnel',
        ...(withProfile ? { profile: 'ambient' } : {}),
        version: DEFAULT_VERSION,
      },
      description: 'The desired state of ztunnel.',
      type: 'object',
      required: ['namespace', 'version'],
      properties: {
        namespace: { default: 'ztunnel', ...str('Namespace of the DaemonSet.') },
        ...(withProfile ? { profile: profileProp({ default: 'ambient' }) } : {}),
        values: ztunnelValues,
        version: versionProp(versions.ztunnel, true),
      },
    },
    baseStatus,
    { validations: singleton },
  );
const ztunnel = crd({ kind: 'ZTunnel', listKind: 'ZTunnelList', plural: 'ztunnels', singular: 'ztunnel' }, [
  {
    name: 'v1',
    served: true,
    storage: true,
    additionalPrinterColumns: ztunnelColumns(false),
    schema: ztunnelSchema(false),
  },
  {
    name: 'v1alpha1',
    served: true,
    storage: false,
    deprecated: true,
    additionalPrinterColumns: ztunnelColumns(true),
    schema: ztunnelSchema(true),
  },
]);

const files = {
  'sailoperator.io_istios.yaml': istio,
  'sailoperator.io_istiorevisions.yaml': istioRevision,
  'sailoperator.io_istiorevisiontags.yaml': istioRevisionTag,
  'sailoperator.io_istiocnis.yaml': istioCni,
  'sailoperator.io_ztunnels.yaml': ztunnel,
};
const header = '# Generated by apps/operator/scripts/generate-crds.mjs; edit the script, not this file.\n';
let stale = false;
for (const [name, doc] of Object.entries(files)) {
  const text = header + stringify(doc, { lineWidth: 0 });
  const path = join(outDir, name);
  if (process.argv.includes('--check')) {
    let current = '';
    try {
      current = readFileSync(path, 'utf8');
    } catch {
      /* missing */
    }
    if (current !== text) {
      stale = true;
      console.error(`stale: ${name}`);
    }
  } else {
    writeFileSync(path, text);
  }
}
if (stale) process.exit(1);
