/**
 * How `nft` and `ip` are run. The executor is injected everywhere, so rendering and logic tests
 * use a fake, and namespaced tests or the CNI agent run the real binaries inside a pod's
 * network namespace (`ip netns exec <name>` or `nsenter --net=<path>`).
 */
import { spawn } from 'node:child_process';

export interface CommandResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CommandExecutor {
  /** Runs `command args...`, writing `input` to its stdin; never rejects for a non-zero exit. */
  run(command: string, args: readonly string[], input?: string): Promise<CommandResult>;
}

/** Which network namespace commands run in; `null` is the executor's own. */
export type NetnsTarget =
  { readonly name: string } | { readonly path: string } | { readonly pid: number } | null;

export interface SpawnExecutorOptions {
  /** Kill a command that runs longer than this. Default 30 s. */
  readonly timeoutMs?: number;
}

/** Runs commands as child processes of this one. */
export function spawnExecutor(options: SpawnExecutorOptions = {}): CommandExecutor {
  const timeout = options.timeoutMs ?? 30_000;
  return {
    run(command, args, input) {
      return new Promise<CommandResult>(resolve => {
        const child = spawn(command, [...args], { stdio: ['pipe', 'pipe', 'pipe'], timeout });
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
        child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
        child.stdin.on('error', () => {
          // The command exited before reading its input; its exit code tells the story.
        });
        child.on('error', (e: NodeJS.ErrnoException) => {
          resolve({
            exitCode: e.code === 'ENOENT' ? 127 : 126,
            stdout: '',
            stderr: `${command}: ${e.message}`,
          });
        });
        child.on('close', (code, signal) => {
          const stderr = Buffer.concat(err).toString('utf8');
          resolve({
            exitCode: code ?? 128,
            stdout: Buffer.concat(out).toString('utf8'),
            stderr: signal === null ? stderr : `${stderr}\n${command} killed by ${signal}`,
          });
        });
        child.stdin.end(input ?? '');
      });
    },
  };
}

/** The argv prefix that runs a command in `target`. */
export function netnsPrefix(target: NetnsTarget): string[] {
  if (target === null) return [];
  if ('name' in target) return ['ip', 'netns', 'exec', target.name];
  const path = 'path' in target ? target.path : `/proc/${target.pid}/ns/net`;
  return ['nsenter', `--net=${path}`, '--'];
}

/** Wraps `base` so every command runs inside the network namespace `target`. */
export function netnsExecutor(target: NetnsTarget, base: CommandExecutor = spawnExecutor()): CommandExecutor {
  const prefix = netnsPrefix(target);
  if (prefix.length === 0) return base;
  const [head, ...rest] = prefix as [string, ...string[]];
  return {
    run: (command, args, input) => base.run(head, [...rest, command, ...args], input),
  };
}

/** Renders a command line for messages. */
export function commandLine(command: string, args: readonly string[]): string {
  return [command, ...args].join(' ');
}
