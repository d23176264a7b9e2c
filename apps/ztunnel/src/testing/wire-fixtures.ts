/**
 * Builders of decoded WDS messages (`@ambient-mesh/xds-types` shapes) for tests: complete
 * objects with every repeated field present and unset messages null, overridable per field; and
 * the same fixtures already converted to ProxyState values.
 */
import { emptyMatch } from '@ambient-mesh/policy-engine';
import type { security, workload } from '@ambient-mesh/xds-types';
import { convertService, convertWorkload } from '../state/convert-address.ts';
import { convertAuthorization } from '../state/convert-policy.ts';
import type { Address, Authorization } from '../state/types.ts';
import type { Converted } from '../state/validation.ts';

export function ip4(text: string): Uint8Array {
  return Uint8Array.from(text.split('.').map(Number));
}

/**
 * `value` typed as the enum `known` although it is none of its values, as the decoder passes an
 * unknown number through (proto3 enums are open). Throws if `value` is in fact known.
 */
export function unknownEnum<T extends number>(known: Readonly<Record<string, T>>, value: number): T {
  if ((Object.values(known) as number[]).includes(value)) throw new Error(`enum value ${value} is known`);
  return value as T;
}

export function wireWorkload(overrides: Partial<workload.Workload> = {}): workload.Workload {
  return {
    uid: 'Kubernetes//Pod/default/pod-a',
    name: 'pod-a',
    namespace: 'default',
    addresses: [ip4('10.244.0.2')],
    hostname: '',
    network: '',
    tunnelProtocol: 1,
    trustDomain: '',
    serviceAccount: 'sa-a',
    waypoint: null,
    networkGateway: null,
    node: 'node-1',
    canonicalName: 'app-a',
    canonicalRevision: 'v1',
    workloadType: 2,
    workloadName: 'app-a',
    nativeTunnel: false,
    applicationTunnel: null,
    services: {},
    authorizationPolicies: [],
    status: 0,
    clusterId: 'Kubernetes',
    locality: null,
    networkMode: 0,
    extensions: [],
    capacity: null,
    ...overrides,
  };
}

export function wireService(overrides: Partial<workload.Service> = {}): workload.Service {
  return {
    name: 'svc-b',
    namespace: 'default',
    hostname: 'svc-b.default.svc.cluster.local',
    addresses: [{ network: '', address: ip4('10.96.0.10') }],
    ports: [{ servicePort: 80, targetPort: 8080 }],
    subjectAltNames: [],
    waypoint: null,
    loadBalancing: null,
    ipFamilies: 1,
    extensions: [],
    ...overrides,
  };
}

export function wireMatch(overrides: Partial<security.Match> = {}): security.Match {
  return { ...emptyMatch(), ...overrides };
}

export function wireAuthorization(overrides: Partial<security.Authorization> = {}): security.Authorization {
  return {
    name: 'deny-b',
    namespace: 'default',
    scope: 1,
    action: 1,
    rules: [{ clauses: [{ matches: [wireMatch({ destinationPorts: [8080] })] }] }],
    ...overrides,
  };
}

/** The converted value of a fixture; throws with the problems when the fixture is invalid. */
function valid<T>(converted: Converted<T>): T {
  if (!converted.ok) throw new Error(converted.problems.join('; '));
  return converted.value;
}

/** `wireWorkload(overrides)`, converted. */
export function workloadAddress(
  overrides: Partial<workload.Workload> = {},
): Extract<Address, { kind: 'workload' }> {
  return { kind: 'workload', workload: valid(convertWorkload(wireWorkload(overrides))) };
}

/** `wireService(overrides)`, converted. */
export function serviceAddress(
  overrides: Partial<workload.Service> = {},
): Extract<Address, { kind: 'service' }> {
  return { kind: 'service', service: valid(convertService(wireService(overrides))) };
}

/** `wireAuthorization(overrides)`, converted under its own `<namespace>/<name>`. */
export function authorization(overrides: Partial<security.Authorization> = {}): Authorization {
  const wire = wireAuthorization(overrides);
  return valid(convertAuthorization(`${wire.namespace}/${wire.name}`, wire));
}
