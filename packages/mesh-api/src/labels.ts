/**
 * Labels and annotations the mesh reads and writes on Kubernetes objects, with upstream's keys
 * and values (Istio 1.27). Values that are enumerations are listed beside their key.
 */

export const Label = {
  /** On a namespace or pod: `ambient` enrols it; `none` opts a pod out. */
  dataplaneMode: 'istio.io/dataplane-mode',
  /** On a namespace, Service, ServiceEntry or pod: the waypoint's name, or `none`. */
  useWaypoint: 'istio.io/use-waypoint',
  /** With `use-waypoint`: the waypoint's namespace when it is not the object's own. */
  useWaypointNamespace: 'istio.io/use-waypoint-namespace',
  /** On a waypoint Gateway: which traffic it serves (`service`, `workload`, `all`, `none`). */
  waypointFor: 'istio.io/waypoint-for',
  /** On a Service: ingress gateways route to it through its waypoint. */
  ingressUseWaypoint: 'istio.io/ingress-use-waypoint',
  /** The control-plane revision an object belongs to. */
  revision: 'istio.io/rev',
  /** Sidecar injection switch (we never inject; used to detect conflicts). */
  sidecarInject: 'sidecar.istio.io/inject',
  /** Canonical service name and revision of a workload. */
  canonicalName: 'service.istio.io/canonical-name',
  canonicalRevision: 'service.istio.io/canonical-revision',
  /** Kubernetes recommended labels, read for canonical names. */
  appName: 'app.kubernetes.io/name',
  appVersion: 'app.kubernetes.io/version',
  app: 'app',
  version: 'version',
  /** Gateway API: the Gateway that owns a generated object. */
  gatewayName: 'gateway.networking.k8s.io/gateway-name',
  /** Gateway API: which controller manages a generated object. */
  gatewayManaged: 'gateway.istio.io/managed',
  /** Network and locality. */
  network: 'topology.istio.io/network',
  subzone: 'topology.istio.io/subzone',
  region: 'topology.kubernetes.io/region',
  zone: 'topology.kubernetes.io/zone',
  /** On istio-ca-root-cert ConfigMaps. */
  caRoot: 'istio.io/config',
  /** On a pod: the tunnel protocols it speaks natively (`http`: it terminates HBONE itself). */
  tunnel: 'networking.istio.io/tunnel',
} as const;
export type Label = (typeof Label)[keyof typeof Label];

/** Values of {@link Label.dataplaneMode}. */
export const DataplaneMode = {
  ambient: 'ambient',
  none: 'none',
} as const;
export type DataplaneMode = (typeof DataplaneMode)[keyof typeof DataplaneMode];

/** Values of {@link Label.waypointFor}. */
export const WaypointFor = {
  service: 'service',
  workload: 'workload',
  all: 'all',
  none: 'none',
} as const;
export type WaypointFor = (typeof WaypointFor)[keyof typeof WaypointFor];

/** The value of {@link Label.gatewayManaged} on objects istiod's deployment controller owns. */
export const GATEWAY_MANAGED_BY_MESH = 'istio.io-mesh-controller';

/** Gateway classes istiod provides. */
export const GatewayClassName = {
  ingress: 'istio',
  waypoint: 'istio-waypoint',
} as const;

/** The Gateway API controller name of those classes. */
export const GATEWAY_CONTROLLER_NAME = 'istio.io/gateway-controller';

export const Annotation = {
  /** On a pod: `enabled` once the cni-agent has installed its redirection. */
  redirection: 'ambient.istio.io/redirection',
  /** On a pod: `false` turns DNS capture off for it. */
  dnsCapture: 'ambient.istio.io/dns-capture',
  /** On a pod: `true` leaves its inbound traffic uncaptured. */
  bypassInboundCapture: 'ambient.istio.io/bypass-inbound-capture',
  /** On a pod: the virtual interfaces whose traffic is captured as outbound. */
  rerouteVirtualInterfaces: 'istio.io/reroute-virtual-interfaces',
  /** On a policy: evaluate and log, never enforce. */
  dryRun: 'istio.io/dry-run',
  /** Sidecar injection status: present on pods that have a sidecar. */
  sidecarStatus: 'sidecar.istio.io/status',
  /** On a Service: `PreferClose` etc. (Istio's traffic distribution). */
  trafficDistribution: 'networking.istio.io/traffic-distribution',
  /** @deprecated A label upstream: use {@link Label.tunnel}. */
  tunnel: 'networking.istio.io/tunnel',
  /** Prometheus scrape conventions. */
  prometheusScrape: 'prometheus.io/scrape',
  prometheusPort: 'prometheus.io/port',
  prometheusPath: 'prometheus.io/path',
} as const;
export type Annotation = (typeof Annotation)[keyof typeof Annotation];

/** The value of {@link Annotation.redirection} on an enrolled pod. */
export const REDIRECTION_ENABLED = 'enabled';

/** Well-known names in the control-plane namespace. */
export const WellKnown = {
  systemNamespace: 'istio-system',
  /** The mesh config ConfigMap (key `mesh`). */
  meshConfigMap: 'istio',
  /** The root-of-trust ConfigMap published to every namespace. */
  caRootConfigMap: 'istio-ca-root-cert',
  /** Plug-in CA Secret. */
  pluginCaSecret: 'cacerts',
  /** Default trust domain and cluster domain. */
  trustDomain: 'cluster.local',
  clusterDomain: 'cluster.local',
  /** Default cluster id (istiod's CLUSTER_ID). */
  clusterId: 'Kubernetes',
} as const;
