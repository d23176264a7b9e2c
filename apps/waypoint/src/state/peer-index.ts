/**
 * The WDS view of the mesh the waypoint keeps to know who is behind a connection, as upstream
 * waypoints do (Envoy's `workload_discovery` extension subscribed to `istio.workload.Address`):
 * workloads by network/IP and by uid, services by network/VIP. Only the fields the waypoint
 * uses are kept (names, identity, canonical service and revision, cluster). The index has a
 * single writer (the `Address` handler); `resolveSource` is the pure lookup of the source peer.
 */
import { isIP } from 'node:net';
import { WellKnown } from '@ambient-mesh/mesh-api';
import type { Baggage } from '@ambient-mesh/hbone';
import type { workload } from '@ambient-mesh/xds-types';
import type { Converted } from '../config/types.ts';

export interface PeerWorkload {
  readonly uid: string;
  readonly name: string;
  readonly namespace: string;
  readonly network: string;
  readonly addresses: readonly string[];
  /** `spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>`. */
  readonly identity: string;
  /** The owning workload (Deployment, Job...) name; the pod name when it has none. */
  readonly workloadName: string;
  readonly canonicalName: string;
  readonly canonicalRevision: string;
  readonly clusterId: string;
}

export interface PeerService {
  /** `<namespace>/<hostname>`, the resource name. */
  readonly key: string;
  readonly name: string;
  readonly namespace: string;
  readonly hostname: string;
  readonly addresses: readonly { readonly network: string; readonly address: string }[];
}

export type PeerAddress =
  | { readonly kind: 'workload'; readonly workload: PeerWorkload }
  | { readonly kind: 'service'; readonly service: PeerService };

/** 4 or 16 raw bytes as canonical IP text, or undefined. */
function ipText(bytes: Uint8Array): string | undefined {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  if (bytes.length !== 16) return undefined;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  const text = new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
  return isIP(text) === 6 ? text : undefined;
}

/**
 * Pure: one `Address` resource as a validated peer entry, every problem with its field path.
 * `name` must be the workload's uid or the service's `<namespace>/<hostname>`.
 */
export function convertPeerAddress(name: string, wire: workload.Address): Converted<PeerAddress> {
  const problems: string[] = [];
  const ip = (path: string, bytes: Uint8Array): string | undefined => {
    const text = ipText(bytes);
    if (text === undefined) problems.push(`${path}: an IP must be 4 or 16 bytes, got ${bytes.length}`);
    return text;
  };
  const required = (path: string, value: string): void => {
    if (value === '') problems.push(`${path}: required`);
  };
  if (wire.workload) {
    const w = wire.workload;
    required('workload.uid', w.uid);
    required('workload.name', w.name);
    required('workload.namespace', w.namespace);
    if (w.uid !== '' && w.uid !== name)
      problems.push(`workload.uid: ${JSON.stringify(w.uid)} differs from the resource name`);
    const addresses: string[] = [];
    w.addresses.forEach((a, i) => {
      const text = ip(`workload.addresses[${i}]`, a);
      if (text !== undefined) addresses.push(text);
    });
    const trustDomain = w.trustDomain === '' ? WellKnown.trustDomain : w.trustDomain;
    const serviceAccount = w.serviceAccount === '' ? 'default' : w.serviceAccount;
    for (const [field, value] of [
      ['trustDomain', trustDomain],
      ['serviceAccount', serviceAccount],
      ['namespace', w.namespace],
    ] as const) {
      if (value.includes('/'))
        problems.push(`workload.${field}: ${JSON.stringify(value)} must not contain "/"`);
    }
    if (problems.length > 0) return { ok: false, problems };
    return {
      ok: true,
      value: {
        kind: 'workload',
        workload: Object.freeze({
          uid: w.uid,
          name: w.name,
          namespace: w.namespace,
          network: w.network,
          addresses,
          identity: `spiffe://${trustDomain}/ns/${w.namespace}/sa/${serviceAccount}`,
          workloadName: w.workloadName === '' ? w.name : w.workloadName,
          canonicalName: w.canonicalName,
          canonicalRevision: w.canonicalRevision,
          clusterId: w.clusterId === '' ? WellKnown.clusterId : w.clusterId,
        }),
      },
    };
  }
  if (wire.service) {
    const s = wire.service;
    required('service.namespace', s.namespace);
    required('service.hostname', s.hostname);
    const key = `${s.namespace}/${s.hostname}`;
    if (problems.length === 0 && key !== name)
      problems.push(`service: key ${JSON.stringify(key)} differs from the resource name`);
    const addresses: { network: string; address: string }[] = [];
    s.addresses.forEach((a, i) => {
      const text = ip(`service.addresses[${i}].address`, a.address);
      if (text !== undefined) addresses.push({ network: a.network, address: text });
    });
    if (problems.length > 0) return { ok: false, problems };
    return {
      ok: true,
      value: {
        kind: 'service',
        service: Object.freeze({
          key,
          name: s.name,
          namespace: s.namespace,
          hostname: s.hostname,
          addresses,
        }),
      },
    };
  }
  return { ok: false, problems: ['type: an Address must hold a workload or a service'] };
}

export interface PeerIndexReader {
  /** The workload with `ip` on `network` (an IPv4-mapped IPv6 address is read as IPv4). */
  workloadByAddress(network: string, ip: string): PeerWorkload | undefined;
  workloadByUid(uid: string): PeerWorkload | undefined;
  serviceByVip(network: string, ip: string): PeerService | undefined;
  readonly size: { readonly workloads: number; readonly services: number };
}

export interface PeerIndexMutator {
  /** Applies one accepted batch: upserts by resource name, then removals by resource name. */
  apply(accepted: readonly PeerAddress[], removed: readonly string[]): void;
}

function plain(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

const addrKey = (network: string, ip: string): string => `${network}/${plain(ip)}`;

/** The index and its only writer. */
export function createPeerIndex(): { readonly index: PeerIndexReader; readonly mutator: PeerIndexMutator } {
  const workloads = new Map<string, PeerWorkload>();
  const services = new Map<string, PeerService>();
  const workloadByAddr = new Map<string, string>();
  const serviceByAddr = new Map<string, string>();
  const dropWorkload = (uid: string): void => {
    const old = workloads.get(uid);
    if (old === undefined) return;
    workloads.delete(uid);
    for (const a of old.addresses) {
      const k = addrKey(old.network, a);
      if (workloadByAddr.get(k) === uid) workloadByAddr.delete(k);
    }
  };
  const dropService = (key: string): void => {
    const old = services.get(key);
    if (old === undefined) return;
    services.delete(key);
    for (const a of old.addresses) {
      const k = addrKey(a.network, a.address);
      if (serviceByAddr.get(k) === key) serviceByAddr.delete(k);
    }
  };
  const index: PeerIndexReader = {
    workloadByAddress: (network, ip) => {
      const uid = workloadByAddr.get(addrKey(network, ip));
      return uid === undefined ? undefined : workloads.get(uid);
    },
    workloadByUid: uid => workloads.get(uid),
    serviceByVip: (network, ip) => {
      const key = serviceByAddr.get(addrKey(network, ip));
      return key === undefined ? undefined : services.get(key);
    },
    get size() {
      return { workloads: workloads.size, services: services.size };
    },
  };
  const mutator: PeerIndexMutator = {
    apply(accepted, removed) {
      for (const a of accepted) {
        if (a.kind === 'workload') {
          dropWorkload(a.workload.uid);
          workloads.set(a.workload.uid, a.workload);
          for (const ip of a.workload.addresses)
            workloadByAddr.set(addrKey(a.workload.network, ip), a.workload.uid);
        } else {
          dropService(a.service.key);
          services.set(a.service.key, a.service);
          for (const x of a.service.addresses)
            serviceByAddr.set(addrKey(x.network, x.address), a.service.key);
        }
      }
      for (const name of removed) {
        dropWorkload(name);
        dropService(name);
      }
    },
  };
  return { index, mutator };
}

/** What the HBONE side knows of a downstream connection's source. */
export interface SourceInput {
  /** The peer's SPIFFE ID (mTLS). */
  readonly peerIdentity: string;
  /** The CONNECT's `forwarded` header `for=` address (the original client), if any. */
  readonly forwardedFor: string | undefined;
  /** The tunnel's TCP source address. */
  readonly remoteAddress: string;
  /** The CONNECT's `baggage`, parsed (empty when absent or malformed). */
  readonly baggage: Baggage;
}

/** Where the source's labels came from. */
export type SourceOrigin = 'wds' | 'baggage' | 'identity';

/** The IP of a `forwarded` `for=` value: `1.2.3.4`, `1.2.3.4:5`, `[::1]`, `[::1]:5`. */
export function forwardedForIp(value: string | undefined): string | undefined {
  if (value === undefined || value === '') return undefined;
  let host = value;
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    if (end < 0) return undefined;
    host = host.slice(1, end);
  } else if (host.split(':').length === 2) host = host.slice(0, host.indexOf(':'));
  return isIP(host) === 0 ? undefined : host;
}

/**
 * Pure: the source workload's metadata (the `source_*` labels) of one connection. The workload
 * is looked up in WDS by the original client address (`forwarded: for=`), then by the tunnel's
 * source address, on the waypoint's network; a workload counts only when its identity is the
 * peer's mTLS identity (so a forged `for=` cannot borrow another workload's labels). Without
 * one, the CONNECT's `baggage` is used; without it, the namespace of the peer's SPIFFE ID.
 */
export function resolveSource(
  index: PeerIndexReader,
  network: string,
  input: SourceInput,
): { readonly origin: SourceOrigin; readonly source: Baggage; readonly workload?: PeerWorkload } {
  for (const ip of [forwardedForIp(input.forwardedFor), input.remoteAddress]) {
    if (ip === undefined || ip === '') continue;
    const w = index.workloadByAddress(network, ip);
    if (w !== undefined && w.identity === input.peerIdentity) {
      return {
        origin: 'wds',
        workload: w,
        source: {
          clusterId: w.clusterId,
          namespace: w.namespace,
          workloadName: w.workloadName,
          ...(w.canonicalName === '' ? {} : { serviceName: w.canonicalName }),
          ...(w.canonicalRevision === '' ? {} : { serviceVersion: w.canonicalRevision }),
        },
      };
    }
  }
  const b = input.baggage;
  if (b.workloadName !== undefined || b.namespace !== undefined || b.serviceName !== undefined)
    return { origin: 'baggage', source: b };
  const ns = /^spiffe:\/\/[^/]+\/ns\/([^/]+)\/sa\/[^/]+$/.exec(input.peerIdentity)?.[1];
  return { origin: 'identity', source: ns === undefined ? {} : { namespace: ns } };
}
