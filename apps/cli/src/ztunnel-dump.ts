/**
 * Decoding a ztunnel `/config_dump` in upstream ztunnel 1.27's shape: workloads with
 * `workloadIps`, `protocol` and `waypoint.destination`; services with `vips: ["net/ip"]`, a
 * `ports` map and an `endpoints` map of `{workloadUid, port, status}`; policies with nested
 * `rules`; certificates with decimal serials; `workloadState` carrying live `connections`.
 * The decoder is lenient (unknown fields are kept out, missing ones defaulted) and refuses only
 * what is not a dump at all.
 */
import type { DumpCert, DumpCertificate } from '@ambient-mesh/mesh-api';
import { CliError, CliErrorCode } from './errors.ts';

export type { DumpCert, DumpCertificate };

export interface DumpWorkload {
  readonly uid: string;
  readonly name: string;
  readonly namespace: string;
  readonly workloadIps: readonly string[];
  readonly node: string;
  readonly protocol: string;
  readonly network: string;
  readonly serviceAccount: string;
  readonly status: string;
  /** `waypoint.destination`: `<network>/<ip>` or a `<namespace>/<hostname>`. */
  readonly waypoint: string | undefined;
  readonly raw: Readonly<Record<string, unknown>>;
}

export interface DumpEndpoint {
  readonly workloadUid: string;
  readonly port: Readonly<Record<string, number>>;
  readonly status: string;
}

export interface DumpService {
  readonly name: string;
  readonly namespace: string;
  readonly hostname: string;
  /** `net/ip` entries, as upstream writes them. */
  readonly vips: readonly string[];
  readonly ports: Readonly<Record<string, number>>;
  readonly endpoints: Readonly<Record<string, DumpEndpoint>>;
  readonly waypoint: string | undefined;
  readonly raw: Readonly<Record<string, unknown>>;
}

export interface DumpPolicy {
  readonly name: string;
  readonly namespace: string;
  readonly scope: string;
  readonly action: string;
  readonly raw: Readonly<Record<string, unknown>>;
}

export interface DumpConnection {
  readonly src: string;
  readonly originalDst: string;
  readonly actualDst: string;
}

export interface DumpWorkloadState {
  readonly uid: string;
  readonly name: string;
  readonly namespace: string;
  readonly inbound: readonly DumpConnection[];
  readonly outbound: readonly DumpConnection[];
}

export interface ZtunnelDump {
  readonly workloads: readonly DumpWorkload[];
  readonly services: readonly DumpService[];
  readonly policies: readonly DumpPolicy[];
  readonly certificates: readonly DumpCertificate[];
  readonly workloadState: readonly DumpWorkloadState[];
  /** The dump as received, for `all -o json`. */
  readonly raw: Readonly<Record<string, unknown>>;
}

type Obj = Readonly<Record<string, unknown>>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function str(v: unknown): string {
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '';
}
function objs(v: unknown): Obj[] {
  return Array.isArray(v) ? v.filter(isObj) : [];
}
function strs(v: unknown): string[] {
  return Array.isArray(v) ? v.map(str).filter(s => s !== '') : [];
}
function portMap(v: unknown): Record<string, number> {
  const out: Record<string, number> = {};
  if (isObj(v)) for (const [k, p] of Object.entries(v)) if (typeof p === 'number') out[k] = p;
  return out;
}
function destination(v: unknown): string | undefined {
  if (!isObj(v)) return undefined;
  const d = v['destination'];
  return typeof d === 'string' && d !== '' ? d : undefined;
}

function decodeWorkload(w: Obj): DumpWorkload {
  return {
    uid: str(w['uid']),
    name: str(w['name']),
    namespace: str(w['namespace']),
    workloadIps: strs(w['workloadIps']),
    node: str(w['node']),
    protocol: str(w['protocol']) || 'TCP',
    network: str(w['network']),
    serviceAccount: str(w['serviceAccount']),
    status: str(w['status']),
    waypoint: destination(w['waypoint']),
    raw: w,
  };
}

function decodeService(s: Obj): DumpService {
  const endpoints: Record<string, DumpEndpoint> = {};
  const eps = s['endpoints'];
  if (isObj(eps)) {
    for (const [key, e] of Object.entries(eps)) {
      if (!isObj(e)) continue;
      endpoints[key] = {
        workloadUid: str(e['workloadUid']),
        port: portMap(e['port']),
        status: str(e['status']) || 'Healthy',
      };
    }
  }
  return {
    name: str(s['name']),
    namespace: str(s['namespace']),
    hostname: str(s['hostname']),
    vips: strs(s['vips']),
    ports: portMap(s['ports']),
    endpoints,
    waypoint: destination(s['waypoint']),
    raw: s,
  };
}

function decodeCert(c: Obj): DumpCert {
  return {
    pem: str(c['pem']),
    serialNumber: str(c['serialNumber']),
    validFrom: str(c['validFrom']),
    expirationTime: str(c['expirationTime']),
  };
}

function decodeConnections(v: unknown): DumpConnection[] {
  return objs(v).map(c => ({
    src: str(c['src']),
    originalDst: str(c['originalDst']),
    actualDst: str(c['actualDst']),
  }));
}

/** Decodes a parsed dump; throws `CLI_BAD_CONFIG_DUMP` for anything that is not one. */
export function decodeZtunnelDump(data: unknown, source = 'the config dump'): ZtunnelDump {
  if (!isObj(data) || !('workloads' in data || 'services' in data || 'certificates' in data)) {
    throw new CliError(
      CliErrorCode.BadDump,
      `${source} is not a ztunnel config dump (no workloads, services or certificates); check it came from ztunnel's /config_dump on port 15000`,
    );
  }
  const state = data['workloadState'];
  return {
    workloads: objs(data['workloads']).map(decodeWorkload),
    services: objs(data['services']).map(decodeService),
    policies: objs(data['policies']).map(p => ({
      name: str(p['name']),
      namespace: str(p['namespace']),
      scope: str(p['scope']),
      action: str(p['action']),
      raw: p,
    })),
    certificates: objs(data['certificates']).map(c => ({
      identity: str(c['identity']),
      state: str(c['state']),
      certChain: objs(c['certChain']).map(decodeCert),
      rootCerts: objs(c['rootCerts']).map(decodeCert),
    })),
    workloadState: isObj(state)
      ? Object.entries(state).flatMap(([uid, s]) => {
          if (!isObj(s)) return [];
          const info = isObj(s['info']) ? s['info'] : {};
          const conns = isObj(s['connections']) ? s['connections'] : {};
          return [
            {
              uid,
              name: str(info['name']),
              namespace: str(info['namespace']),
              inbound: decodeConnections(conns['inbound']),
              outbound: decodeConnections(conns['outbound']),
            },
          ];
        })
      : [],
    raw: data,
  };
}

/** Parses dump text (a file or an admin answer). */
export function parseZtunnelDump(text: string, source = 'the config dump'): ZtunnelDump {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new CliError(
      CliErrorCode.BadDump,
      `${source} is not JSON; check it is ztunnel's /config_dump output`,
      {
        cause: err,
      },
    );
  }
  return decodeZtunnelDump(data, source);
}
