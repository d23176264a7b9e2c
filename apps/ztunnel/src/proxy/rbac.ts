/**
 * Inbound L4 authorization (docs/protocols.md#authorization-evaluation) through `@ambient-mesh/policy-engine`: the policies that apply
 * to the destination workload, evaluated for one connection. The engine takes wire-shaped
 * policies, so validated domain policies are turned back into that shape once (cached per object).
 */
import { isIPv4 } from 'node:net';
import { authorize } from '@ambient-mesh/policy-engine';
import type { ConnectionContext, L4Decision } from '@ambient-mesh/policy-engine';
import type { security } from '@ambient-mesh/xds-types';
import type { ProxyStateReader } from '../state/proxy-state.ts';
import type { Authorization, Cidr, PolicyMatch, StringMatch, Workload } from '../state/types.ts';

export type { ConnectionContext, L4Decision } from '@ambient-mesh/policy-engine';

const SCOPE = { GLOBAL: 0, NAMESPACE: 1, WORKLOAD_SELECTOR: 2 } as const;
const ACTION = { ALLOW: 0, DENY: 1 } as const;

function ipBytes(ip: string): Uint8Array {
  if (isIPv4(ip)) return Uint8Array.from(ip.split('.').map(Number));
  const [head = '', tail = ''] = ip.split('::');
  const groups = (text: string): number[] => (text === '' ? [] : text.split(':').map(g => parseInt(g, 16)));
  const front = groups(head);
  const back = ip.includes('::') ? groups(tail) : [];
  const all = [...front, ...new Array<number>(8 - front.length - back.length).fill(0), ...back];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

function stringMatch(m: StringMatch): security.StringMatch {
  return m.kind === 'presence'
    ? { presence: {}, matchType: 'presence' }
    : { [m.kind]: m.value, matchType: m.kind };
}

function cidr(c: Cidr): security.Address {
  return { address: ipBytes(c.address), length: c.prefixLength };
}

function match(m: PolicyMatch): security.Match {
  return {
    namespaces: m.namespaces.map(stringMatch),
    notNamespaces: m.notNamespaces.map(stringMatch),
    principals: m.principals.map(stringMatch),
    notPrincipals: m.notPrincipals.map(stringMatch),
    sourceIps: m.sourceIps.map(cidr),
    notSourceIps: m.notSourceIps.map(cidr),
    destinationIps: m.destinationIps.map(cidr),
    notDestinationIps: m.notDestinationIps.map(cidr),
    destinationPorts: [...m.destinationPorts],
    notDestinationPorts: [...m.notDestinationPorts],
    serviceAccounts: m.serviceAccounts.map(a => ({ ...a })),
    notServiceAccounts: m.notServiceAccounts.map(a => ({ ...a })),
  };
}

const wireCache = new WeakMap<Authorization, security.Authorization>();

export function toWireAuthorization(policy: Authorization): security.Authorization {
  let wire = wireCache.get(policy);
  if (wire === undefined) {
    wire = {
      name: policy.name,
      namespace: policy.namespace,
      scope: SCOPE[policy.scope],
      action: ACTION[policy.action],
      rules: policy.rules.map(rule => ({
        clauses: rule.clauses.map(c => ({ matches: c.matches.map(match) })),
      })),
    };
    wireCache.set(policy, wire);
  }
  return wire;
}

/** Decides a connection to `workload` against the policies that currently apply to it. */
export function authorizeConnection(
  state: ProxyStateReader,
  workload: Workload,
  ctx: ConnectionContext,
): L4Decision {
  return authorize(ctx, state.policiesFor(workload).map(toWireAuthorization));
}
