/**
 * The ztunnel detail page: one node's ztunnel and what its `/config_dump` holds (workloads,
 * services, policies, certificates), with the filters `istioctl ztunnel-config` has (namespace,
 * this node only) and a search. The dump is decoded leniently in upstream ztunnel 1.27's shape
 * (`@ambient-mesh/mesh-api`'s `Dump*` types): unknown fields are ignored, missing ones defaulted;
 * only something that is not a dump at all is an error, shown on the page with what to check.
 *
 * ztunnel's admin port (15000) listens on the pod's localhost, so the dump is read through the
 * apiserver's pod port-forward (`ZtunnelDumpReader`; `@ambient-mesh/kube`'s `PortForwarder` in app.ts).
 */
import type {
  DumpCertificate,
  DumpGateway,
  DumpPolicy,
  DumpService,
  DumpWorkload,
} from '@ambient-mesh/mesh-api';
import type {
  ZtunnelCertificateRow,
  ZtunnelConfigView,
  ZtunnelFilter,
  ZtunnelPod,
  ZtunnelPolicyRow,
  ZtunnelServiceRow,
  ZtunnelWorkloadRow,
} from './model.ts';

/** Reads a ztunnel pod's `/config_dump` body; rejects when the pod does not answer. */
export type ZtunnelDumpReader = (namespace: string, pod: string) => Promise<string>;

export const ZtunnelErrorCode = {
  unreachable: 'CONSOLE_ZTUNNEL_UNREACHABLE',
  badDump: 'CONSOLE_ZTUNNEL_BAD_DUMP',
} as const;

type Obj = Readonly<Record<string, unknown>>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const objs = (v: unknown): Obj[] => (Array.isArray(v) ? v.filter(isObj) : []);
const str = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '');
const strs = (v: unknown): string[] => (Array.isArray(v) ? v.map(str).filter(s => s !== '') : []);

function gateway(v: unknown): string | undefined {
  if (!isObj(v)) return undefined;
  const d = str((v as Partial<Record<keyof DumpGateway, unknown>>).destination);
  return d === '' ? undefined : d;
}

function workloadRow(w: Obj): ZtunnelWorkloadRow {
  const f = w as Partial<Record<keyof DumpWorkload, unknown>>;
  return {
    namespace: str(f.namespace),
    name: str(f.name),
    workloadName: str(f.workloadName),
    ips: strs(f.workloadIps),
    node: str(f.node),
    protocol: str(f.protocol) || 'TCP',
    serviceAccount: str(f.serviceAccount),
    waypoint: gateway(f.waypoint),
    status: str(f.status) || 'Healthy',
  };
}

function serviceRow(s: Obj): ZtunnelServiceRow {
  const f = s as Partial<Record<keyof DumpService, unknown>>;
  const ports = isObj(f.ports) ? Object.entries(f.ports).map(([p, t]) => `${p}→${str(t)}`) : [];
  const endpoints = isObj(f.endpoints) ? Object.values(f.endpoints).filter(isObj) : [];
  return {
    namespace: str(f.namespace),
    name: str(f.name),
    hostname: str(f.hostname),
    // `network/ip` as upstream writes them; the address is what people look for.
    vips: strs(f.vips).map(v => v.slice(v.indexOf('/') + 1)),
    ports,
    endpoints: endpoints.length,
    healthyEndpoints: endpoints.filter(e => str(e.status) !== 'Unhealthy').length,
    waypoint: gateway(f.waypoint),
  };
}

function policyRow(p: Obj): ZtunnelPolicyRow {
  const f = p as Partial<Record<keyof DumpPolicy, unknown>>;
  return {
    namespace: str(f.namespace),
    name: str(f.name),
    scope: str(f.scope),
    action: str(f.action),
    rules: Array.isArray(f.rules) ? f.rules.length : 0,
    dryRun: f.dryRun === true,
  };
}

function certificateRow(c: Obj): ZtunnelCertificateRow {
  const f = c as Partial<Record<keyof DumpCertificate, unknown>>;
  const chain = objs(f.certChain);
  const leaf = chain[0] ?? {};
  return {
    identity: str(f.identity),
    state: str(f.state),
    serialNumber: str(leaf.serialNumber),
    validFrom: str(leaf.validFrom),
    expirationTime: str(leaf.expirationTime),
    chain: chain.length,
    roots: objs(f.rootCerts).length,
  };
}

const byName = <T extends { readonly namespace: string; readonly name: string }>(a: T, b: T): number =>
  a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name);

/** The page's view of one ztunnel: decoded and filtered rows, or the reason there are none. */
export function ztunnelConfigView(
  pod: ZtunnelPod,
  dump: { readonly ok: true; readonly text: string } | { readonly ok: false; readonly message: string },
  filter: ZtunnelFilter,
): ZtunnelConfigView {
  const empty = { workloads: 0, services: 0, policies: 0, certificates: 0 };
  const failed = (code: string, message: string): ZtunnelConfigView => ({
    pod,
    filter,
    workloads: [],
    services: [],
    policies: [],
    certificates: [],
    totals: empty,
    error: { code, message },
  });
  if (!dump.ok) {
    return failed(
      ZtunnelErrorCode.unreachable,
      `cannot read /config_dump of ztunnel ${pod.namespace}/${pod.name} on port 15000: ${dump.message} (check the pod runs and the console may create pods/portforward)`,
    );
  }
  let data: unknown;
  try {
    data = JSON.parse(dump.text);
  } catch {
    return failed(
      ZtunnelErrorCode.badDump,
      `ztunnel ${pod.name} answered /config_dump with something that is not JSON`,
    );
  }
  if (!isObj(data) || !('workloads' in data || 'services' in data || 'certificates' in data)) {
    return failed(
      ZtunnelErrorCode.badDump,
      `ztunnel ${pod.name}'s /config_dump holds no workloads, services or certificates; is port 15000 ztunnel's admin?`,
    );
  }
  const workloads = objs(data.workloads).map(workloadRow).sort(byName);
  const services = objs(data.services).map(serviceRow).sort(byName);
  const policies = objs(data.policies).map(policyRow).sort(byName);
  const certificates = objs(data.certificates)
    .map(certificateRow)
    .sort((a, b) => a.identity.localeCompare(b.identity));

  const ns = filter.namespace;
  const q = filter.search?.toLowerCase();
  const matches = (...fields: readonly string[]): boolean =>
    q === undefined || fields.some(f => f.toLowerCase().includes(q));
  // Certificates are SPIFFE identities: spiffe://<td>/ns/<namespace>/sa/<sa>.
  const certNamespace = (identity: string): string => /\/ns\/([^/]+)\//.exec(identity)?.[1] ?? '';
  return {
    pod,
    filter,
    workloads: workloads.filter(
      w =>
        (ns === undefined || w.namespace === ns) &&
        (!filter.thisNode || pod.node === undefined || w.node === pod.node) &&
        matches(w.name, w.namespace, w.workloadName, w.serviceAccount, ...w.ips),
    ),
    services: services.filter(
      s => (ns === undefined || s.namespace === ns) && matches(s.name, s.namespace, s.hostname, ...s.vips),
    ),
    policies: policies.filter(p => (ns === undefined || p.namespace === ns) && matches(p.name, p.namespace)),
    certificates: certificates.filter(
      c => (ns === undefined || certNamespace(c.identity) === ns) && matches(c.identity),
    ),
    totals: {
      workloads: workloads.length,
      services: services.length,
      policies: policies.length,
      certificates: certificates.length,
    },
    error: undefined,
  };
}
