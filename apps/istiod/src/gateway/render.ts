/**
 * The objects istiod's deployment controller owns for a Gateway of one of its classes: a
 * ServiceAccount, a Deployment and a Service, with upstream's names, labels and ports (Istio
 * 1.27 `waypoint.yaml` / `kube-gateway.yaml` templates and `deploymentcontroller.go`). Pure: the
 * controller server-side applies what this returns.
 *
 * - Names: the Gateway's name for waypoints, `<name>-<class>` for ingress; the annotations
 *   `gateway.istio.io/name-override` and `gateway.istio.io/service-account` override them.
 * - Labels and annotations of the generated objects come from `spec.infrastructure` when set,
 *   else from the Gateway's own; keys under `gateway.networking.k8s.io/` are never copied.
 * - Service ports: `status-port` 15021, then one per distinct listener port (name from the
 *   listener, appProtocol the lower-cased protocol: `hbone` for the waypoint's `mesh` 15008).
 * - Every object has an ownerReference to the Gateway, so deleting it garbage-collects them.
 */
import { Annotation, Label, Port, WaypointFor } from '@ambient-mesh/mesh-api';
import type { GatewayClassInfo } from './classes.ts';
import type { GatewayModel } from './model.ts';

export const GATEWAY_CLASS_NAME_LABEL = 'gateway.networking.k8s.io/gateway-class-name';
export const NAME_OVERRIDE_ANNOTATION = 'gateway.istio.io/name-override';
export const SERVICE_ACCOUNT_ANNOTATION = 'gateway.istio.io/service-account';
export const SERVICE_TYPE_ANNOTATION = 'networking.istio.io/service-type';
export const STATUS_PORT = 15021;
/**
 * The pod's grace period: Kubernetes' default, as upstream's waypoint template leaves it since
 * Istio 1.26 (its hard-coded 2 s went with istio/istio#55799); the proxy gets the same deadline.
 * The waypoint still exits as soon as its requests in flight are done.
 */
const TERMINATION_GRACE_SECONDS = 30;
const OMITTED_ANNOTATIONS = new Set([
  'kubectl.kubernetes.io/last-applied-configuration',
  NAME_OVERRIDE_ANNOTATION,
  SERVICE_ACCOUNT_ANNOTATION,
  'gateway.istio.io/controller-version',
]);

export interface RenderOptions {
  /** The proxy image, e.g. `ambient-mesh/waypoint:0.1.0`. */
  readonly image: string;
  /** istiod's address for the proxy (`istiod.istio-system.svc:15012`). */
  readonly discoveryAddress: string;
  /**
   * The proxy's CA (`CA_ADDR`) when it is not istiod: an external CA server such as istio-csr
   * (upstream's `global.caAddress`). Default: `discoveryAddress`.
   */
  readonly caAddress?: string;
  readonly clusterId: string;
  readonly trustDomain: string;
  /** The revision of the istiod that deploys it (`istio.io/rev` on the pods; default `default`). */
  readonly revision?: string;
}

export type RenderedObject = Record<string, unknown> & {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace: string;
    readonly labels: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
    readonly ownerReferences: readonly Record<string, unknown>[];
  };
};

export interface RenderedGateway {
  readonly serviceAccount: RenderedObject;
  readonly deployment: RenderedObject;
  readonly service: RenderedObject;
}

export interface ServicePortSpec {
  readonly name: string;
  readonly port: number;
  readonly protocol: 'TCP';
  readonly appProtocol: string;
}

/** The Deployment/Service name of a Gateway's objects. */
export function deploymentName(gw: GatewayModel, cls: GatewayClassInfo): string {
  const override = gw.annotations[NAME_OVERRIDE_ANNOTATION];
  if (override !== undefined && override !== '') return override;
  return cls.nameSuffix ? `${gw.name}-${gw.className}` : gw.name;
}

export function serviceAccountName(gw: GatewayModel, cls: GatewayClassInfo): string {
  const override = gw.annotations[SERVICE_ACCOUNT_ANNOTATION];
  if (override !== undefined && override !== '') return override;
  return cls.nameSuffix ? `${gw.name}-${gw.className}` : gw.name;
}

/** The effective `istio.io/waypoint-for` of a waypoint Gateway (default `service`). */
export function waypointForOf(gw: GatewayModel, classLabels: Readonly<Record<string, string>> = {}): string {
  return gw.labels[Label.waypointFor] ?? classLabels[Label.waypointFor] ?? WaypointFor.service;
}

function withoutGatewayApiKeys(m: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m)) if (!k.startsWith('gateway.networking.k8s.io/')) out[k] = v;
  return out;
}

function infraLabels(gw: GatewayModel, cls: GatewayClassInfo): Record<string, string> {
  const labels = withoutGatewayApiKeys(gw.infrastructure?.labels ?? gw.labels);
  // Ingress gateways are never captured by ambient unless asked (upstream's label override).
  if (!cls.waypoint && labels[Label.dataplaneMode] === undefined) labels[Label.dataplaneMode] = 'none';
  return labels;
}

function infraAnnotations(gw: GatewayModel): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(
    withoutGatewayApiKeys(gw.infrastructure?.annotations ?? gw.annotations),
  ))
    if (!OMITTED_ANNOTATIONS.has(k)) out[k] = v;
  return out;
}

/** A listener name as a Service port name: no dots, at most 63 characters. */
function portName(name: string, fallback: string): string {
  const cleaned = name.replace(/\./g, '-').slice(0, 63);
  return cleaned === '' ? fallback : cleaned;
}

/** The Service ports: the status port, then each distinct listener port. */
export function servicePorts(gw: GatewayModel): ServicePortSpec[] {
  const out: ServicePortSpec[] = [
    { name: 'status-port', port: STATUS_PORT, protocol: 'TCP', appProtocol: 'tcp' },
  ];
  const used = new Set(['status-port']);
  const ports = new Set<number>();
  gw.listeners.forEach((l, i) => {
    if (ports.has(l.port)) return;
    ports.add(l.port);
    let name = portName(l.name, `${l.protocol.toLowerCase()}-${i}`);
    if (used.has(name)) name = `${name.slice(0, 63 - String(l.port).length - 1)}-${l.port}`;
    used.add(name);
    out.push({ name, port: l.port, protocol: 'TCP', appProtocol: l.protocol.toLowerCase() });
  });
  return out;
}

export function renderGateway(
  gw: GatewayModel,
  cls: GatewayClassInfo,
  options: RenderOptions,
  classLabels: Readonly<Record<string, string>> = {},
): RenderedGateway {
  const name = deploymentName(gw, cls);
  const sa = serviceAccountName(gw, cls);
  const ownerReferences = [
    { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', name: gw.name, uid: gw.uid },
  ];
  const infra = infraLabels(gw, cls);
  const annotations = infraAnnotations(gw);
  const identity = { [Label.gatewayName]: gw.name, [GATEWAY_CLASS_NAME_LABEL]: gw.className };
  const managed = { [Label.gatewayManaged]: cls.controllerLabel };
  const waypointFor: Record<string, string> = cls.waypoint
    ? { [Label.waypointFor]: waypointForOf(gw, classLabels) }
    : {};
  const meta = (labels: Record<string, string>, extraAnnotations: Record<string, string> = {}) => ({
    name,
    namespace: gw.namespace,
    labels,
    annotations: { ...extraAnnotations, ...annotations },
    ownerReferences,
  });
  const podLabels = {
    [Label.sidecarInject]: 'false',
    ...(cls.waypoint ? { [Label.dataplaneMode]: 'none' } : {}),
    [Label.canonicalName]: name,
    [Label.canonicalRevision]: 'latest',
    ...infra,
    ...identity,
    ...managed,
  };
  const fieldEnv = (envName: string, fieldPath: string) => ({
    name: envName,
    valueFrom: { fieldRef: { fieldPath } },
  });
  const serviceType =
    gw.annotations[SERVICE_TYPE_ANNOTATION] === undefined
      ? cls.serviceType
      : gw.annotations[SERVICE_TYPE_ANNOTATION];
  return {
    serviceAccount: {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { ...meta({ ...infra, ...identity }), name: sa },
    },
    deployment: {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: meta({ ...infra, ...identity, ...managed }),
      spec: {
        selector: { matchLabels: { [Label.gatewayName]: gw.name } },
        template: {
          metadata: {
            labels: podLabels,
            annotations: {
              ...annotations,
              [Label.revision]: options.revision ?? 'default',
              [Annotation.prometheusPath]: '/stats/prometheus',
              [Annotation.prometheusPort]: '15020',
              [Annotation.prometheusScrape]: 'true',
            },
          },
          spec: {
            serviceAccountName: sa,
            terminationGracePeriodSeconds: TERMINATION_GRACE_SECONDS,
            containers: [
              {
                name: 'istio-proxy',
                image: options.image,
                args: [cls.waypoint ? 'waypoint' : 'router'],
                ports: [
                  { containerPort: 15020, name: 'metrics', protocol: 'TCP' },
                  { containerPort: STATUS_PORT, name: 'status-port', protocol: 'TCP' },
                  { containerPort: 15090, name: 'http-envoy-prom', protocol: 'TCP' },
                ],
                env: [
                  { name: 'ISTIO_META_CLUSTER_ID', value: options.clusterId },
                  { name: 'TRUST_DOMAIN', value: options.trustDomain },
                  { name: 'CA_ADDR', value: options.caAddress ?? options.discoveryAddress },
                  { name: 'XDS_ADDRESS', value: options.discoveryAddress },
                  { name: 'XDS_ROOT_CA', value: '/var/run/secrets/istio/root-cert.pem' },
                  { name: 'ISTIO_META_WORKLOAD_NAME', value: name },
                  // The proxy's own drain deadline matches the pod's, so it finishes before the kubelet's SIGKILL.
                  { name: 'TERMINATION_GRACE_PERIOD_SECONDS', value: String(TERMINATION_GRACE_SECONDS) },
                  fieldEnv('POD_NAME', 'metadata.name'),
                  fieldEnv('POD_NAMESPACE', 'metadata.namespace'),
                  fieldEnv('INSTANCE_IP', 'status.podIP'),
                  fieldEnv('SERVICE_ACCOUNT', 'spec.serviceAccountName'),
                  fieldEnv('ISTIO_META_NODE_NAME', 'spec.nodeName'),
                ],
                readinessProbe: {
                  httpGet: { path: '/healthz/ready', port: STATUS_PORT },
                  periodSeconds: 15,
                  timeoutSeconds: 1,
                  failureThreshold: 4,
                },
                // The token for istiod's xDS and CA, and istiod's root (upstream's waypoint.yaml).
                // The pod's labels and annotations (upstream's istio-podinfo): the proxy sends the
                // labels as node metadata LABELS, which istiod reads the Gateway name from.
                volumeMounts: [
                  { name: 'istio-token', mountPath: '/var/run/secrets/tokens' },
                  { name: 'istiod-ca-cert', mountPath: '/var/run/secrets/istio' },
                  { name: 'istio-podinfo', mountPath: '/etc/istio/pod' },
                ],
              },
            ],
            volumes: [
              {
                name: 'istio-token',
                projected: {
                  sources: [
                    {
                      serviceAccountToken: {
                        audience: 'istio-ca',
                        expirationSeconds: 43200,
                        path: 'istio-token',
                      },
                    },
                  ],
                },
              },
              { name: 'istiod-ca-cert', configMap: { name: 'istio-ca-root-cert' } },
              {
                name: 'istio-podinfo',
                downwardAPI: {
                  items: [
                    { path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } },
                    { path: 'annotations', fieldRef: { fieldPath: 'metadata.annotations' } },
                  ],
                },
              },
            ],
          },
        },
      },
    },
    service: {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta(
        { ...infra, ...identity, ...managed, ...waypointFor },
        cls.waypoint ? { [Annotation.trafficDistribution]: 'PreferClose' } : {},
      ),
      spec: {
        type: serviceType,
        selector: { [Label.gatewayName]: gw.name },
        ports: servicePorts(gw),
      },
    },
  };
}

/** The HBONE port a waypoint Service offers (upstream always uses 15008). */
export const WAYPOINT_HBONE_PORT = Port.hbone;
