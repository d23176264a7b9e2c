/**
 * The in-memory shape of a generated ruleset and its three renderings: an `nft -f` script, a
 * loadable `nft -j -f` batch, and the objects `nft -j list ruleset` is expected to print.
 *
 * Every table is family `inet`. A `replace` table is re-created whole in one transaction
 * (`add`, `delete`, `add`), so applying twice changes nothing and no packet sees a half ruleset.
 * A `keep-sets` table (the host table) keeps its sets, whose elements other code maintains, and
 * only flushes and refills its chains.
 */
import type { NftExpr } from './nft-expr.ts';
import { jump } from './nft-expr.ts';

export type ChainType = 'filter' | 'nat' | 'route';
export type ChainHook = 'prerouting' | 'input' | 'output' | 'postrouting';

export interface BaseChainHook {
  readonly type: ChainType;
  readonly hook: ChainHook;
  /** Numeric priority as the kernel stores it. */
  readonly priority: number;
  /** How the script spells it (a name where nft accepts one for this hook). */
  readonly priorityText: string;
}

export interface RuleSpec {
  readonly exprs: readonly NftExpr[];
}

export interface ChainSpec {
  readonly name: string;
  /** Set for base chains (attached to a hook); regular chains are reached by `jump`. */
  readonly base?: BaseChainHook;
  readonly rules: readonly RuleSpec[];
}

export interface SetSpec {
  readonly name: string;
  readonly type: 'ipv4_addr' | 'ipv6_addr';
}

export interface TableSpec {
  readonly name: string;
  readonly mode: 'replace' | 'keep-sets';
  readonly sets: readonly SetSpec[];
  readonly chains: readonly ChainSpec[];
}

/** A complete desired state for our tables in one network namespace. */
export interface Ruleset {
  /** Tables that must exist, exactly as given. */
  readonly tables: readonly TableSpec[];
  /** Tables of ours that must not exist (e.g. the raw table with DNS capture off). */
  readonly absentTables: readonly string[];
}

export const FAMILY = 'inet';

/** A base chain that only jumps to a regular chain. */
export function baseChain(name: string, base: BaseChainHook, target: string): ChainSpec {
  return { name, base, rules: [{ exprs: [jump(target)] }] };
}

/** All table names the ruleset owns (present or required absent). */
export function ownedTables(ruleset: Ruleset): string[] {
  return [...ruleset.tables.map(t => t.name), ...ruleset.absentTables];
}

function ruleText(rule: RuleSpec): string {
  return rule.exprs.map(e => e.text).join(' ');
}

// Regular chains first: a jump must name a chain that already exists in the transaction.
function orderedChains(table: TableSpec): ChainSpec[] {
  return [
    ...table.chains.filter(c => c.base === undefined),
    ...table.chains.filter(c => c.base !== undefined),
  ];
}

function chainHeader(chain: ChainSpec): string {
  const b = chain.base;
  return b === undefined
    ? ''
    : `\t\ttype ${b.type} hook ${b.hook} priority ${b.priorityText}; policy accept;\n`;
}

function tableBlock(table: TableSpec, withRules: boolean): string {
  const parts: string[] = [];
  for (const set of table.sets) parts.push(`\tset ${set.name} {\n\t\ttype ${set.type}\n\t}\n`);
  for (const chain of orderedChains(table)) {
    const rules = withRules ? chain.rules.map(r => `\t\t${ruleText(r)}\n`).join('') : '';
    parts.push(`\tchain ${chain.name} {\n${chainHeader(chain)}${rules}\t}\n`);
  }
  return `table ${FAMILY} ${table.name} {\n${parts.join('\n')}}\n`;
}

/** The `nft -f` script that makes the namespace match `ruleset`, atomically. */
export function renderScript(ruleset: Ruleset): string {
  const out: string[] = [];
  for (const name of ruleset.absentTables) {
    out.push(`table ${FAMILY} ${name} {\n}\n`, `delete table ${FAMILY} ${name}\n`);
  }
  for (const table of ruleset.tables) {
    if (table.mode === 'replace') {
      out.push(`table ${FAMILY} ${table.name} {\n}\n`, `delete table ${FAMILY} ${table.name}\n`);
      out.push(tableBlock(table, true));
      continue;
    }
    out.push(tableBlock(table, false));
    for (const chain of table.chains) out.push(`flush chain ${FAMILY} ${table.name} ${chain.name}\n`);
    for (const chain of table.chains) {
      for (const rule of chain.rules)
        out.push(`add rule ${FAMILY} ${table.name} ${chain.name} ${ruleText(rule)}\n`);
    }
  }
  return out.join('');
}

/** The `nft -f` script that deletes every table the ruleset owns (absent ones are a no-op). */
export function renderRemoveScript(tables: readonly string[]): string {
  return tables.map(name => `table ${FAMILY} ${name} {\n}\ndelete table ${FAMILY} ${name}\n`).join('');
}

function tableObject(name: string): Record<string, unknown> {
  return { table: { family: FAMILY, name } };
}

function setObject(table: string, set: SetSpec): Record<string, unknown> {
  return { set: { family: FAMILY, name: set.name, table, type: set.type } };
}

function chainObject(table: string, chain: ChainSpec): Record<string, unknown> {
  const b = chain.base;
  const fields =
    b === undefined ? {} : { type: b.type, hook: b.hook, prio: b.priority, policy: 'accept' as const };
  return { chain: { family: FAMILY, table, name: chain.name, ...fields } };
}

function ruleObject(table: string, chain: string, rule: RuleSpec): Record<string, unknown> {
  return { rule: { family: FAMILY, table, chain, expr: rule.exprs.map(e => e.json) } };
}

/** The objects `nft -j list ruleset` should print for our tables (without handles). */
export function expectedObjects(ruleset: Ruleset): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const table of ruleset.tables) {
    out.push(tableObject(table.name));
    for (const set of table.sets) out.push(setObject(table.name, set));
    for (const chain of orderedChains(table)) out.push(chainObject(table.name, chain));
    for (const chain of orderedChains(table)) {
      for (const rule of chain.rules) out.push(ruleObject(table.name, chain.name, rule));
    }
  }
  return out;
}

/** The loadable JSON batch (`nft -j -f`), equivalent to {@link renderScript}. */
export function renderJsonBatch(ruleset: Ruleset): { nftables: Record<string, unknown>[] } {
  const cmds: Record<string, unknown>[] = [{ metainfo: { json_schema_version: 1 } }];
  for (const name of ruleset.absentTables)
    cmds.push({ add: tableObject(name) }, { delete: tableObject(name) });
  for (const table of ruleset.tables) {
    cmds.push({ add: tableObject(table.name) });
    if (table.mode === 'replace')
      cmds.push({ delete: tableObject(table.name) }, { add: tableObject(table.name) });
    for (const set of table.sets) cmds.push({ add: setObject(table.name, set) });
    for (const chain of orderedChains(table)) cmds.push({ add: chainObject(table.name, chain) });
    if (table.mode === 'keep-sets') {
      for (const chain of table.chains) {
        cmds.push({ flush: { chain: { family: FAMILY, table: table.name, name: chain.name } } });
      }
    }
    for (const chain of orderedChains(table)) {
      for (const rule of chain.rules) cmds.push({ add: ruleObject(table.name, chain.name, rule) });
    }
  }
  return { nftables: cmds };
}
