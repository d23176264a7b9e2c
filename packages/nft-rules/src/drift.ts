/**
 * Drift detection: compares the desired ruleset with what `nft -j list ruleset` reports. Only our
 * own tables are looked at; set elements are ignored (the CNI agent maintains them).
 */
import { UnexpectedOutputError } from './errors.ts';
import type { Ruleset } from './ruleset-model.ts';
import { FAMILY, expectedObjects } from './ruleset-model.ts';

export type DriftKind = 'missing' | 'unexpected' | 'changed' | 'reordered';

/** One difference between the desired and the live state. */
export interface Drift {
  readonly kind: DriftKind;
  /** What differs, e.g. `chain inet istio-ambient-nat istio-output`. */
  readonly object: string;
  readonly detail: string;
}

type Obj = Record<string, unknown>;

/** Sorts object keys recursively so structurally equal JSON compares equal as text. */
export function canonicalJson(value: unknown): string {
  const sort = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sort);
    if (v !== null && typeof v === 'object') {
      const o = v as Obj;
      return Object.fromEntries(
        Object.keys(o)
          .sort()
          .map(k => [k, sort(o[k])]),
      );
    }
    return v;
  };
  return JSON.stringify(sort(value));
}

/** Parses `nft -j list ruleset` output into its object list. */
export function parseNftListing(stdout: string, command = 'nft -j list ruleset'): Obj[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch (err) {
    throw new UnexpectedOutputError(command, 'not JSON', err);
  }
  const list = (parsed as { nftables?: unknown }).nftables;
  if (!Array.isArray(list)) throw new UnexpectedOutputError(command, 'no "nftables" array');
  return list.filter((o): o is Obj => o !== null && typeof o === 'object');
}

interface Snapshot {
  tables: Set<string>;
  sets: Map<string, Obj>;
  chains: Map<string, Obj>;
  rules: Map<string, string[]>;
}

function inner(o: Obj, kind: string): Obj | undefined {
  const v = o[kind];
  return v !== null && typeof v === 'object' ? (v as Obj) : undefined;
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '';
}

function snapshot(objects: readonly Obj[], tables: ReadonlySet<string>): Snapshot {
  const snap: Snapshot = { tables: new Set(), sets: new Map(), chains: new Map(), rules: new Map() };
  const ours = (o: Obj, tableKey: string): boolean => o.family === FAMILY && tables.has(str(o[tableKey]));
  for (const o of objects) {
    const table = inner(o, 'table');
    if (table !== undefined && ours(table, 'name')) snap.tables.add(str(table.name));
    const set = inner(o, 'set');
    if (set !== undefined && ours(set, 'table')) {
      snap.sets.set(`${str(set.table)} ${str(set.name)}`, { type: set.type });
    }
    const chain = inner(o, 'chain');
    if (chain !== undefined && ours(chain, 'table')) {
      const { type, hook, prio, policy } = chain;
      snap.chains.set(`${str(chain.table)} ${str(chain.name)}`, { type, hook, prio, policy });
    }
    const rule = inner(o, 'rule');
    if (rule !== undefined && ours(rule, 'table')) {
      const key = `${str(rule.table)} ${str(rule.chain)}`;
      const list = snap.rules.get(key) ?? [];
      list.push(canonicalJson(rule.expr));
      snap.rules.set(key, list);
    }
  }
  return snap;
}

function diffRules(object: string, want: readonly string[], have: readonly string[]): Drift[] {
  const drifts: Drift[] = [];
  const remaining = [...have];
  for (const rule of want) {
    const i = remaining.indexOf(rule);
    if (i < 0) drifts.push({ kind: 'missing', object, detail: `rule ${rule}` });
    else remaining.splice(i, 1);
  }
  for (const rule of remaining) drifts.push({ kind: 'unexpected', object, detail: `rule ${rule}` });
  if (drifts.length === 0 && want.join('\n') !== have.join('\n')) {
    drifts.push({ kind: 'reordered', object, detail: 'the rules are present in a different order' });
  }
  return drifts;
}

/**
 * Lists every difference between `ruleset` and the live `listing` (from `nft -j list ruleset`).
 * An empty result means no drift.
 */
export function diffRuleset(ruleset: Ruleset, listing: readonly Obj[]): Drift[] {
  const owned = new Set([...ruleset.tables.map(t => t.name), ...ruleset.absentTables]);
  const want = snapshot(expectedObjects(ruleset), owned);
  const have = snapshot(listing, owned);
  const drifts: Drift[] = [];

  for (const name of ruleset.absentTables) {
    if (have.tables.has(name)) {
      drifts.push({ kind: 'unexpected', object: `table ${FAMILY} ${name}`, detail: 'must not exist' });
    }
  }
  for (const table of ruleset.tables) {
    if (!have.tables.has(table.name)) {
      drifts.push({
        kind: 'missing',
        object: `table ${FAMILY} ${table.name}`,
        detail: 'table does not exist',
      });
    }
  }
  const presentTable = (key: string): boolean => have.tables.has(key.split(' ')[0] ?? '');
  const absent = new Set(ruleset.absentTables);
  const inAbsentTable = (key: string): boolean => absent.has(key.split(' ')[0] ?? '');

  for (const [kind, wantMap, haveMap] of [
    ['set', want.sets, have.sets],
    ['chain', want.chains, have.chains],
  ] as const) {
    for (const [key, spec] of wantMap) {
      const object = `${kind} ${FAMILY} ${key}`;
      const live = haveMap.get(key);
      if (live === undefined) {
        if (presentTable(key)) drifts.push({ kind: 'missing', object, detail: `${kind} does not exist` });
      } else if (canonicalJson(live) !== canonicalJson(spec)) {
        drifts.push({
          kind: 'changed',
          object,
          detail: `expected ${canonicalJson(spec)}, found ${canonicalJson(live)}`,
        });
      }
    }
    for (const key of haveMap.keys()) {
      if (!wantMap.has(key) && !inAbsentTable(key)) {
        drifts.push({
          kind: 'unexpected',
          object: `${kind} ${FAMILY} ${key}`,
          detail: `${kind} is not ours`,
        });
      }
    }
  }

  const chainKeys = new Set([...want.rules.keys(), ...have.rules.keys(), ...want.chains.keys()]);
  for (const key of chainKeys) {
    if (inAbsentTable(key) || !have.chains.has(key) || !want.chains.has(key)) continue;
    drifts.push(...diffRules(`chain ${FAMILY} ${key}`, want.rules.get(key) ?? [], have.rules.get(key) ?? []));
  }
  return drifts;
}
