/**
 * The `nft` binary behind an injected executor: syntax check, atomic load, JSON listing.
 */
import type { CommandExecutor } from './command-executor.ts';
import { commandLine } from './command-executor.ts';
import { parseNftListing } from './drift.ts';
import { CommandFailedError } from './errors.ts';

export class NftClient {
  readonly #executor: CommandExecutor;

  constructor(executor: CommandExecutor) {
    this.#executor = executor;
  }

  async #run(args: readonly string[], input?: string): Promise<string> {
    const result = await this.#executor.run('nft', args, input);
    if (result.exitCode !== 0)
      throw new CommandFailedError(commandLine('nft', args), result.exitCode, result.stderr);
    return result.stdout;
  }

  /** `nft -c -f -`: parses and validates against the kernel without changing anything. */
  async check(script: string): Promise<void> {
    await this.#run(['-c', '-f', '-'], script);
  }

  // JSON goes as an argument: nft reads `-f -` JSON through /dev/stdin, which cannot be opened
  // when stdin is a socket (as Node's child-process pipes are).

  /** `nft -j -c '<batch>'` for a JSON batch. */
  async checkJson(batch: unknown): Promise<void> {
    await this.#run(['-j', '-c', JSON.stringify(batch)]);
  }

  /** `nft -f -`: applies the script as one transaction. */
  async load(script: string): Promise<void> {
    await this.#run(['-f', '-'], script);
  }

  /** `nft -j '<batch>'` for a JSON batch, as one transaction. */
  async loadJson(batch: unknown): Promise<void> {
    await this.#run(['-j', JSON.stringify(batch)]);
  }

  /** `nft -j list ruleset`, parsed. */
  async listRuleset(): Promise<Record<string, unknown>[]> {
    return parseNftListing(await this.#run(['-j', 'list', 'ruleset']));
  }
}
