import type { CommandExecutor, CommandResult } from '../command-executor.ts';

export interface RecordedCommand {
  readonly command: string;
  readonly args: readonly string[];
  readonly input: string | undefined;
}

/** An executor that records every command and answers from `respond` (default: success, no output). */
export function fakeExecutor(
  respond: (cmd: RecordedCommand) => Partial<CommandResult> = () => ({}),
): CommandExecutor & { readonly calls: RecordedCommand[] } {
  const calls: RecordedCommand[] = [];
  return {
    calls,
    run(command, args, input) {
      const cmd = { command, args: [...args], input };
      calls.push(cmd);
      const r = respond(cmd);
      return Promise.resolve({ exitCode: r.exitCode ?? 0, stdout: r.stdout ?? '', stderr: r.stderr ?? '' });
    },
  };
}
