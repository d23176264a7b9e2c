/**
 * Appliers for the two places rules live: a pod's network namespace (nftables redirection, policy
 * routing and the sysctls of pod-sysctls.ts) and the host (kubelet probe SNAT). Each renders, checks, applies, verifies
 * (drift), and removes through injected executors, so the CNI agent can target any netns.
 */
import type { CommandExecutor } from './command-executor.ts';
import { TableName } from './constants.ts';
import type { Drift } from './drift.ts';
import { diffRuleset } from './drift.ts';
import { hostProbeRuleset, renderProbeSetUpdate } from './host-probe-ruleset.ts';
import { inpodRuleset } from './inpod-ruleset.ts';
import { NftClient } from './nft-client.ts';
import { applyPodSysctls, removePodSysctls, verifyPodSysctls } from './pod-sysctls.ts';
import { applyPolicyRouting, removePolicyRouting, verifyPolicyRouting } from './policy-routing.ts';
import { resolveInpodOptions } from './redirection-options.ts';
import type { HostProbeOptions, InpodRuleOptions, ResolvedInpodOptions } from './redirection-options.ts';
import type { Ruleset } from './ruleset-model.ts';
import { expectedObjects, renderJsonBatch, renderRemoveScript, renderScript } from './ruleset-model.ts';

/** Every rendering of a ruleset. */
export interface RenderedRuleset {
  /** `nft -f` script that converges the namespace to the ruleset in one transaction. */
  readonly script: string;
  /** The same as a loadable `nft -j -f` batch. */
  readonly json: { nftables: Record<string, unknown>[] };
  /** What `nft -j list ruleset` should show for our tables (no handles). */
  readonly expected: Record<string, unknown>[];
}

export function renderRuleset(ruleset: Ruleset): RenderedRuleset {
  return {
    script: renderScript(ruleset),
    json: renderJsonBatch(ruleset),
    expected: expectedObjects(ruleset),
  };
}

const ALL_POD_TABLES = [TableName.nat, TableName.mangle, TableName.raw];

/** In-pod redirection: the nftables tables, the fwmark rule and table 100, and the pod sysctls. */
export class InpodRedirection {
  readonly options: ResolvedInpodOptions;
  readonly ruleset: Ruleset;
  readonly #executor: CommandExecutor;
  readonly #nft: NftClient;

  /** @param executor runs `nft`, `ip` and `sysctl` inside the pod's network namespace. */
  constructor(executor: CommandExecutor, options: InpodRuleOptions = {}) {
    this.options = resolveInpodOptions(options);
    this.ruleset = inpodRuleset(this.options);
    this.#executor = executor;
    this.#nft = new NftClient(executor);
  }

  render(): RenderedRuleset {
    return renderRuleset(this.ruleset);
  }

  /** Validates the script with `nft -c` (nothing changes). */
  async check(): Promise<void> {
    await this.#nft.check(renderScript(this.ruleset));
  }

  /** Installs (or converges to) the rules, policy routing and sysctls. Applying twice changes nothing. */
  async apply(): Promise<void> {
    await this.#nft.load(renderScript(this.ruleset));
    await applyPolicyRouting(this.#executor, this.options);
    await applyPodSysctls(this.#executor);
  }

  /** Differences between the live namespace and the desired state; empty means none. */
  async diff(): Promise<Drift[]> {
    const listing = await this.#nft.listRuleset();
    return [
      ...diffRuleset(this.ruleset, listing),
      ...(await verifyPolicyRouting(this.#executor, this.options)),
      ...(await verifyPodSysctls(this.#executor)),
    ];
  }

  /** Removes all our tables (whatever options installed them), the policy routing and the sysctls. */
  async remove(): Promise<void> {
    await this.#nft.load(renderRemoveScript(ALL_POD_TABLES));
    await removePolicyRouting(this.#executor, this.options);
    await removePodSysctls(this.#executor);
  }

  /** Anything of ours still in the namespace; empty after a successful remove(). */
  async leftovers(): Promise<Drift[]> {
    const listing = await this.#nft.listRuleset();
    const drifts = diffRuleset({ tables: [], absentTables: ALL_POD_TABLES }, listing);
    return [
      ...drifts,
      ...(await verifyPolicyRouting(this.#executor, this.options, false)),
      ...(await verifyPodSysctls(this.#executor, false)),
    ];
  }
}

/** Host-side kubelet probe SNAT. */
export class HostProbeSnat {
  readonly ruleset: Ruleset;
  readonly #nft: NftClient;

  /** @param executor runs `nft` in the host (node) network namespace. */
  constructor(executor: CommandExecutor, options: HostProbeOptions) {
    this.ruleset = hostProbeRuleset(options);
    this.#nft = new NftClient(executor);
  }

  render(): RenderedRuleset {
    return renderRuleset(this.ruleset);
  }

  async check(): Promise<void> {
    await this.#nft.check(renderScript(this.ruleset));
  }

  /** Installs or converges the chains; the probe sets and their elements are kept. */
  async apply(): Promise<void> {
    await this.#nft.load(renderScript(this.ruleset));
  }

  async diff(): Promise<Drift[]> {
    return diffRuleset(this.ruleset, await this.#nft.listRuleset());
  }

  /** Adds pod IPs to the probe sets (the comment records the pod uid). */
  async addPodIps(entries: readonly { readonly ip: string; readonly podUid?: string }[]): Promise<void> {
    if (entries.length > 0) await this.#nft.load(renderProbeSetUpdate('add', entries));
  }

  /** Removes pod IPs from the probe sets. */
  async removePodIps(ips: readonly string[]): Promise<void> {
    if (ips.length > 0)
      await this.#nft.load(
        renderProbeSetUpdate(
          'delete',
          ips.map(ip => ({ ip })),
        ),
      );
  }

  /** Deletes the host table. */
  async remove(): Promise<void> {
    await this.#nft.load(renderRemoveScript([TableName.nat]));
  }

  /** Anything of ours still on the host; empty after remove(). */
  async leftovers(): Promise<Drift[]> {
    return diffRuleset({ tables: [], absentTables: [TableName.nat] }, await this.#nft.listRuleset());
  }
}
