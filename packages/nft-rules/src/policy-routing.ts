/**
 * Policy routing in the pod netns (docs/protocols.md#redirection-rules): `fwmark 0x111/0xfff` at pref 32764
 * looks up table 100, whose only route is `local default dev lo`. Replies of inbound connections
 * that ztunnel spoofed are thereby delivered locally, to ztunnel's transparent socket, instead
 * of leaving the pod. Managed with iproute2 (`ip`), per family.
 */
import { MARK_MASK, Mark, PolicyRoute } from './constants.ts';
import type { CommandExecutor } from './command-executor.ts';
import { commandLine } from './command-executor.ts';
import type { Drift } from './drift.ts';
import { CommandFailedError, InvalidRuleOptionsError, UnexpectedOutputError } from './errors.ts';

export interface PolicyRoutingOptions {
  readonly ipv4?: boolean;
  readonly ipv6?: boolean;
}

type FamilyFlag = '-4' | '-6';

export interface IpCommand {
  readonly args: readonly string[];
  /** stderr fragments that mean "already in the desired state". */
  readonly okIf: readonly string[];
}

const FWMARK = `0x${Mark.connection.toString(16)}/0x${MARK_MASK.toString(16)}`;
const TABLE = String(PolicyRoute.table);
const PREF = String(PolicyRoute.rulePriority);

function families(options: PolicyRoutingOptions): FamilyFlag[] {
  const out: FamilyFlag[] = [];
  if (options.ipv4 ?? true) out.push('-4');
  if (options.ipv6 ?? true) out.push('-6');
  if (out.length === 0)
    throw new InvalidRuleOptionsError('both ipv4 and ipv6 are off; enable at least one family');
  return out;
}

const defaultRoute = (f: FamilyFlag): string => (f === '-4' ? '0.0.0.0/0' : '::/0');

/** The `ip` commands that install the policy routing (idempotent). */
export function policyRoutingApplyCommands(options: PolicyRoutingOptions = {}): IpCommand[] {
  return families(options).flatMap(f => [
    { args: [f, 'rule', 'add', 'fwmark', FWMARK, 'pref', PREF, 'lookup', TABLE], okIf: ['File exists'] },
    { args: [f, 'route', 'replace', 'local', defaultRoute(f), 'dev', 'lo', 'table', TABLE], okIf: [] },
  ]);
}

/** The `ip` commands that remove it; missing entries are fine. */
export function policyRoutingRemoveCommands(options: PolicyRoutingOptions = {}): IpCommand[] {
  const gone = ['No such file or directory', 'No such process', 'Cannot find device'];
  return families(options).flatMap(f => [
    { args: [f, 'rule', 'del', 'fwmark', FWMARK, 'pref', PREF, 'lookup', TABLE], okIf: gone },
    { args: [f, 'route', 'del', 'local', defaultRoute(f), 'dev', 'lo', 'table', TABLE], okIf: gone },
  ]);
}

async function runIp(executor: CommandExecutor, cmd: IpCommand): Promise<void> {
  const result = await executor.run('ip', cmd.args);
  if (result.exitCode === 0 || cmd.okIf.some(s => result.stderr.includes(s))) return;
  throw new CommandFailedError(commandLine('ip', cmd.args), result.exitCode, result.stderr);
}

async function readJson(
  executor: CommandExecutor,
  args: readonly string[],
): Promise<Record<string, unknown>[]> {
  const result = await executor.run('ip', args);
  const line = commandLine('ip', args);
  if (result.exitCode !== 0) throw new CommandFailedError(line, result.exitCode, result.stderr);
  const text = result.stdout.trim();
  if (text === '') return [];
  try {
    const parsed: unknown = JSON.parse(text);
    if (!Array.isArray(parsed)) throw new UnexpectedOutputError(line, 'not a JSON array');
    return parsed as Record<string, unknown>[];
  } catch (err) {
    if (err instanceof UnexpectedOutputError) throw err;
    throw new UnexpectedOutputError(line, 'not JSON', err);
  }
}

const isOurRule = (r: Record<string, unknown>): boolean => r.priority === PolicyRoute.rulePriority;
const isExactRule = (r: Record<string, unknown>): boolean =>
  isOurRule(r) &&
  r.fwmark === `0x${Mark.connection.toString(16)}` &&
  r.fwmask === `0x${MARK_MASK.toString(16)}` &&
  String(r.table) === TABLE &&
  r.action === undefined;

/** Installs the rule and the local route for each enabled family. */
export async function applyPolicyRouting(
  executor: CommandExecutor,
  options: PolicyRoutingOptions = {},
): Promise<void> {
  for (const cmd of policyRoutingApplyCommands(options)) await runIp(executor, cmd);
}

/** Removes them; removing what is not there succeeds. */
export async function removePolicyRouting(
  executor: CommandExecutor,
  options: PolicyRoutingOptions = {},
): Promise<void> {
  for (const cmd of policyRoutingRemoveCommands(options)) await runIp(executor, cmd);
}

/**
 * Compares the live rules and table 100 with the desired state. `present: false` checks that
 * nothing of ours is left.
 */
export async function verifyPolicyRouting(
  executor: CommandExecutor,
  options: PolicyRoutingOptions = {},
  present = true,
): Promise<Drift[]> {
  const drifts: Drift[] = [];
  for (const f of families(options)) {
    const rules = (await readJson(executor, ['-j', f, 'rule', 'show'])).filter(isOurRule);
    const exact = rules.filter(isExactRule);
    const ruleObject = `ip ${f} rule pref ${PREF} fwmark ${FWMARK} lookup ${TABLE}`;
    if (present && exact.length === 0)
      drifts.push({ kind: 'missing', object: ruleObject, detail: 'rule not found' });
    const extra = present ? rules.length - Math.min(exact.length, 1) : rules.length;
    if (extra > 0) {
      drifts.push({
        kind: 'unexpected',
        object: ruleObject,
        detail: `${extra} other rule(s) at pref ${PREF}`,
      });
    }

    const routes = await readJson(executor, ['-j', f, 'route', 'show', 'table', TABLE]);
    const routeObject = `ip ${f} route table ${TABLE} local default dev lo`;
    const ours = routes.filter(r => r.type === 'local' && r.dst === 'default' && r.dev === 'lo');
    if (present && ours.length === 0)
      drifts.push({ kind: 'missing', object: routeObject, detail: 'route not found' });
    const others = routes.length - (present ? ours.length : 0);
    if (others > 0) {
      drifts.push({
        kind: 'unexpected',
        object: routeObject,
        detail: `${others} other route(s) in table ${TABLE}`,
      });
    }
  }
  return drifts;
}
