/**
 * The `baggage` header ztunnel sends on a CONNECT (docs/protocols.md#hbone-connect-request), telemetry only.
 *
 * Built as `k8s.cluster.name=…,k8s.namespace.name=…,k8s.<type>.name=…,service.name=…,
 * service.version=…,cloud.region=…,cloud.availability_zone=…`, with empty values sent as `key=`.
 * The parser follows the W3C baggage grammar, strictly and with bounds (8192 characters, 64
 * members): a malformed header is rejected whole, unknown keys are ignored, empty values are
 * unset, and member properties (`;…`) are dropped. Values are percent-encoded outside the
 * baggage-octet set.
 */
import { HboneInvalidHeaderError } from './errors.ts';

export const MAX_BAGGAGE_LENGTH = 8192;
export const MAX_BAGGAGE_MEMBERS = 64;

/** The workload kinds whose name ztunnel reads from `k8s.<type>.name`. */
export const BAGGAGE_WORKLOAD_TYPES = ['deployment', 'cronjob', 'pod', 'job'] as const;
export type BaggageWorkloadType = (typeof BAGGAGE_WORKLOAD_TYPES)[number];

export interface Baggage {
  readonly clusterId?: string;
  readonly namespace?: string;
  readonly workloadType?: BaggageWorkloadType;
  readonly workloadName?: string;
  readonly serviceName?: string;
  readonly serviceVersion?: string;
  readonly region?: string;
  readonly zone?: string;
}

export type BaggageResult =
  { readonly ok: true; readonly baggage: Baggage } | { readonly ok: false; readonly reason: string };

// token = 1*tchar (RFC 7230); baggage-octet excludes CTLs, space, DQUOTE, comma, semicolon, backslash.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const VALUE = /^[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*$/;

function encodeValue(value: string): string {
  let out = '';
  for (const ch of value) {
    if (ch !== '%' && VALUE.test(ch)) {
      out += ch;
    } else if (ch.isWellFormed()) {
      out += encodeURIComponent(ch);
    } else {
      throw new HboneInvalidHeaderError('baggage', 'value contains a lone UTF-16 surrogate');
    }
  }
  return out;
}

function decodeValue(raw: string): string | undefined {
  if (!raw.includes('%')) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

/** Builds the header value from what is known about the source workload. */
export function buildBaggage(baggage: Baggage): string {
  const type = baggage.workloadType ?? 'pod';
  if (!(BAGGAGE_WORKLOAD_TYPES as readonly string[]).includes(type)) {
    throw new HboneInvalidHeaderError('baggage', `unknown workload type "${type as string}"`);
  }
  const members: [string, string | undefined][] = [
    ['k8s.cluster.name', baggage.clusterId],
    ['k8s.namespace.name', baggage.namespace],
    [`k8s.${type}.name`, baggage.workloadName],
    ['service.name', baggage.serviceName],
    ['service.version', baggage.serviceVersion],
    ['cloud.region', baggage.region],
    ['cloud.availability_zone', baggage.zone],
  ];
  const text = members.map(([k, v]) => `${k}=${encodeValue(v ?? '')}`).join(',');
  if (text.length > MAX_BAGGAGE_LENGTH) {
    throw new HboneInvalidHeaderError('baggage', `longer than ${MAX_BAGGAGE_LENGTH} characters`);
  }
  return text;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Parses a `baggage` header value strictly. Never throws. */
export function parseBaggage(header: string): BaggageResult {
  if (header.length > MAX_BAGGAGE_LENGTH) return { ok: false, reason: `longer than ${MAX_BAGGAGE_LENGTH}` };
  const members = header.split(',');
  if (members.length > MAX_BAGGAGE_MEMBERS)
    return { ok: false, reason: `more than ${MAX_BAGGAGE_MEMBERS} members` };
  const out: Mutable<Baggage> = {};
  for (const member of members) {
    const [kv = ''] = member.split(';', 1);
    const eq = kv.indexOf('=');
    if (eq < 0) return { ok: false, reason: 'member without "="' };
    const key = kv.slice(0, eq).trim();
    const raw = kv.slice(eq + 1).trim();
    if (!TOKEN.test(key)) return { ok: false, reason: 'malformed key' };
    if (!VALUE.test(raw)) return { ok: false, reason: `malformed value for ${key}` };
    const value = decodeValue(raw);
    if (value === undefined) return { ok: false, reason: `bad percent-encoding for ${key}` };
    if (value === '') continue;
    switch (key) {
      case 'k8s.cluster.name':
        out.clusterId = value;
        break;
      case 'k8s.namespace.name':
        out.namespace = value;
        break;
      case 'k8s.deployment.name':
      case 'k8s.cronjob.name':
      case 'k8s.pod.name':
      case 'k8s.job.name':
        out.workloadType = key.slice(4, -5) as BaggageWorkloadType;
        out.workloadName = value;
        break;
      case 'service.name':
        out.serviceName = value;
        break;
      case 'service.version':
        out.serviceVersion = value;
        break;
      case 'cloud.region':
        out.region = value;
        break;
      case 'cloud.availability_zone':
        out.zone = value;
        break;
      default:
        break;
    }
  }
  return { ok: true, baggage: out };
}
