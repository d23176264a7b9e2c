// Policy evaluation cost, in the shape of upstream ztunnel's `rbac` bench: 10,000 GLOBAL DENY
// policies × 10 rules, each rule one clause with one Match holding 3 namespace and 3 principal
// matchers (prefix/suffix/exact), a source CIDR, a destination CIDR and a port. No policy matches.
// A second set makes every rule distinct (a per-rule exact namespace) and the connection targets
// the rules' port, so the port pre-filter cannot help: every decision runs all 100,000 compiled
// Matches (each fails at the destination CIDR). Baselines measured in the same run: a decision
// with no policies, and a hand-written loop doing the same comparisons on plain arrays. The
// one-time compile cost (first decision over fresh policy objects) is measured once.
// Run: npx node --conditions=@ambient-mesh/source benchmarks/policy/run.ts
import { PolicyIndex, authorize, parseCidr } from '@ambient-mesh/policy-engine';
import type { ConnectionContext } from '@ambient-mesh/policy-engine';
import type { security } from '@ambient-mesh/xds-types';

const N_POLICIES = 10_000;
const N_RULES = 10;
/** Rounds per case; the best is reported (the machine is shared, so most rounds are disturbed). */
const ROUNDS = 10;

const net = parseCidr('198.51.100.0/24')!;
const str = (kind: 'prefix' | 'suffix' | 'exact', v: string): security.StringMatch => ({
  [kind]: v,
  matchType: kind,
});
function match(distinct?: string): security.Match {
  const s = [
    str('prefix', 'random-prefix-2b123'),
    str('suffix', 'random-postix-2b723'),
    str('exact', distinct ?? 'random-exac-2bc13'),
  ];
  return {
    namespaces: s,
    notNamespaces: [],
    principals: s,
    notPrincipals: [],
    sourceIps: [net],
    notSourceIps: [],
    destinationIps: [net],
    notDestinationIps: [],
    destinationPorts: [0],
    notDestinationPorts: [],
    serviceAccounts: [],
    notServiceAccounts: [],
  };
}
function makePolicies(distinct: boolean): security.Authorization[] {
  const out: security.Authorization[] = [];
  for (let i = 0; i < N_POLICIES; i++) {
    const rules: security.Rule[] = [];
    for (let r = 0; r < N_RULES; r++)
      rules.push({ clauses: [{ matches: [match(distinct ? `ns-${i}-${r}` : undefined)] }] });
    out.push({ name: `policy ${i}`, namespace: 'default', scope: 0, action: 1, rules });
  }
  return out;
}
const policies = makePolicies(false);
const distinctPolicies = makePolicies(true);

const plaintext: ConnectionContext = {
  srcIp: '127.0.0.1',
  srcPort: 12345,
  dstIp: '127.0.0.2',
  dstPort: 12345,
};
const mtls: ConnectionContext = { ...plaintext, srcIdentity: 'spiffe://cluster.local/ns/default/sa/client' };
/** Targets the rules' port (0), so only the destination CIDR rejects each rule. */
const mtlsPort0: ConnectionContext = { ...mtls, dstPort: 0 };

/** One-time compile cost: the first decision over fresh policy objects (dropped afterwards). */
function measureCompile(): number {
  const fresh = makePolicies(false);
  const start = process.hrtime.bigint();
  authorize(plaintext, fresh);
  return Number(process.hrtime.bigint() - start);
}
const compileNs = measureCompile();

function measure(name: string, iterations: number, fn: () => unknown): { name: string; ns: number } {
  for (let i = 0; i < Math.min(iterations, 5); i++) fn(); // warm up (also compiles and caches policies)
  let best = Number.POSITIVE_INFINITY;
  for (let round = 0; round < ROUNDS; round++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) fn();
    const ns = Number(process.hrtime.bigint() - start) / iterations;
    best = Math.min(best, ns);
  }
  return { name, ns: best };
}

// Baseline: the same comparisons on plain arrays, without the engine.
const flat = policies.flatMap(p =>
  p.rules.map(() => ({
    prefix: 'random-prefix-2b123',
    suffix: 'random-postix-2b723',
    exact: 'random-exac-2bc13',
    port: 0,
  })),
);
function baseline(dstPort: number, ns: string): boolean {
  for (const r of flat) {
    if (r.port !== dstPort) continue;
    if (ns.startsWith(r.prefix) || ns.endsWith(r.suffix) || ns === r.exact) return true;
  }
  return false;
}

const index = new PolicyIndex();
for (const p of policies) index.upsert(p);
const selIndex = new PolicyIndex();
for (let i = 0; i < N_POLICIES; i++) {
  selIndex.upsert(
    { name: `sel-${i}`, namespace: `ns${i % 100}`, scope: 2, action: 0, rules: [] },
    { app: `app${i}` },
  );
}

const results = [
  measure('baseline: authorize with no policies', 200_000, () => authorize(plaintext, [])),
  measure('baseline: hand loop over 100,000 rules (port + namespace checks)', 50, () =>
    baseline(12345, 'default'),
  ),
  measure('baseline: hand loop over 100,000 rules, port matches (port + namespace checks)', 50, () =>
    baseline(0, 'default'),
  ),
  measure('authorize: 10,000 DENY × 10 rules, plaintext (no match)', 50, () =>
    authorize(plaintext, policies),
  ),
  measure('authorize: 10,000 DENY × 10 rules, mTLS identity (no match)', 50, () => authorize(mtls, policies)),
  measure('authorize: 10,000 DENY × 10 distinct rules, port matches, mTLS (no match)', 50, () =>
    authorize(mtlsPort0, distinctPolicies),
  ),
  measure('PolicyIndex.policiesForWorkload (10,000 GLOBAL)', 200, () =>
    index.policiesForWorkload({ namespace: 'default' }),
  ),
  measure('PolicyIndex.selectorPolicyKeys (10,000 selector policies)', 100_000, () =>
    selIndex.selectorPolicyKeys({ namespace: 'ns7', labels: { app: 'app507', version: 'v1' } }),
  ),
];
for (const [ctx, set] of [
  [plaintext, policies],
  [mtls, policies],
  [mtlsPort0, distinctPolicies],
] as const) {
  if (!authorize(ctx, set).allowed) throw new Error('BUG: a benchmark policy matched');
}

console.log(
  `Node ${process.version}, ${N_POLICIES} policies × ${N_RULES} rules; best of ${ROUNDS} rounds.\n`,
);
console.log('| case | ns per call | µs per call |');
console.log('|---|---:|---:|');
for (const r of results)
  console.log(`| ${r.name} | ${Math.round(r.ns).toLocaleString('en-US')} | ${(r.ns / 1000).toFixed(2)} |`);
console.log(
  `\nOne-time compile of 10,000 × 10 rules (first decision, single run): ${(compileNs / 1e6).toFixed(1)} ms.`,
);
