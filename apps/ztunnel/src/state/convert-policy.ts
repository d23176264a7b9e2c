/**
 * WDS `istio.security.Authorization` → validated `Authorization`, with every problem reported
 * under its field path.
 */
import type { security } from '@ambient-mesh/xds-types';
import type { Authorization, Cidr, PolicyMatch, ServiceAccountMatch, StringMatch } from './types.ts';
import { enumValue, ipFromBytes, port, Problems, requireText } from './validation.ts';
import type { Converted } from './validation.ts';

const SCOPE = ['GLOBAL', 'NAMESPACE', 'WORKLOAD_SELECTOR'] as const;
const ACTION = ['ALLOW', 'DENY'] as const;

function stringMatches(
  path: string,
  wire: readonly security.StringMatch[],
  problems: Problems,
): StringMatch[] {
  const out: StringMatch[] = [];
  wire.forEach((m, i) => {
    if (typeof m.exact === 'string') out.push({ kind: 'exact', value: m.exact });
    else if (typeof m.prefix === 'string') out.push({ kind: 'prefix', value: m.prefix });
    else if (typeof m.suffix === 'string') out.push({ kind: 'suffix', value: m.suffix });
    else if (m.presence) out.push({ kind: 'presence' });
    else problems.add(`${path}[${i}]`, 'a string match needs exact, prefix, suffix or presence');
  });
  return out;
}

function cidrs(path: string, wire: readonly security.Address[], problems: Problems): Cidr[] {
  const out: Cidr[] = [];
  wire.forEach((c, i) => {
    const address = ipFromBytes(c.address);
    if (address === undefined) {
      problems.add(`${path}[${i}].address`, `an IP must be 4 or 16 bytes, got ${c.address.length}`);
      return;
    }
    const max = c.address.length * 8;
    if (!Number.isInteger(c.length) || c.length < 0 || c.length > max) {
      problems.add(`${path}[${i}].length`, `prefix length ${c.length} out of range 0..${max}`);
      return;
    }
    out.push({ address, prefixLength: c.length });
  });
  return out;
}

function ports(path: string, wire: readonly number[], problems: Problems): number[] {
  return wire.map((p, i) => port(`${path}[${i}]`, p, problems, true));
}

function accounts(
  path: string,
  wire: readonly security.ServiceAccountMatch[],
  problems: Problems,
): ServiceAccountMatch[] {
  return wire.map((a, i) => {
    requireText(`${path}[${i}].namespace`, a.namespace, problems);
    requireText(`${path}[${i}].serviceAccount`, a.serviceAccount, problems);
    return { namespace: a.namespace, serviceAccount: a.serviceAccount };
  });
}

function match(path: string, m: security.Match, problems: Problems): PolicyMatch {
  return {
    namespaces: stringMatches(`${path}.namespaces`, m.namespaces, problems),
    notNamespaces: stringMatches(`${path}.notNamespaces`, m.notNamespaces, problems),
    principals: stringMatches(`${path}.principals`, m.principals, problems),
    notPrincipals: stringMatches(`${path}.notPrincipals`, m.notPrincipals, problems),
    sourceIps: cidrs(`${path}.sourceIps`, m.sourceIps, problems),
    notSourceIps: cidrs(`${path}.notSourceIps`, m.notSourceIps, problems),
    destinationIps: cidrs(`${path}.destinationIps`, m.destinationIps, problems),
    notDestinationIps: cidrs(`${path}.notDestinationIps`, m.notDestinationIps, problems),
    destinationPorts: ports(`${path}.destinationPorts`, m.destinationPorts, problems),
    notDestinationPorts: ports(`${path}.notDestinationPorts`, m.notDestinationPorts, problems),
    serviceAccounts: accounts(`${path}.serviceAccounts`, m.serviceAccounts, problems),
    notServiceAccounts: accounts(`${path}.notServiceAccounts`, m.notServiceAccounts, problems),
  };
}

/** Converts one Authorization resource; `name` must be `<namespace>/<name>`. */
export function convertAuthorization(name: string, wire: security.Authorization): Converted<Authorization> {
  const problems = new Problems();
  requireText('name', wire.name, problems);
  const scope = enumValue('scope', wire.scope, SCOPE, problems);
  const action = enumValue('action', wire.action, ACTION, problems);
  const rules = wire.rules.map((rule, r) => ({
    clauses: rule.clauses.map((clause, c) => ({
      matches: clause.matches.map((m, i) => match(`rules[${r}].clauses[${c}].matches[${i}]`, m, problems)),
    })),
  }));
  const key = `${wire.namespace}/${wire.name}`;
  if (problems.list.length === 0 && key !== name) {
    problems.add('name', `key ${JSON.stringify(key)} differs from the resource name`);
  }
  return problems.result(() =>
    Object.freeze({ name: wire.name, namespace: wire.namespace, key, scope, action, rules }),
  );
}
