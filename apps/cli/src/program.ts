/**
 * The `ambientctl` command tree and `run(argv)`: global flags as kubectl's, `-o`, every command
 * registered, and the mapping of any failure to a documented exit code with a message on stderr.
 */
import { Command, CommanderError, Option } from 'commander';
import { completionScript } from './completion.ts';
import type { CommandContext } from './context.ts';
import { describeError, exitCodeFor, ExitCode } from './errors.ts';
import { OUTPUT_FORMATS } from './output.ts';
import { registerZtunnelConfig } from './commands/ztunnel-config.ts';
import { registerDataplane } from './commands/dataplane.ts';
import { registerWaypoint } from './commands/waypoint.ts';
import { registerAuthz } from './commands/authz-explain.ts';
import { registerPrecheck } from './commands/precheck.ts';
import { registerAnalyze } from './commands/analyze.ts';
import { registerProxyStatus } from './commands/proxy-status.ts';
import { registerInstall } from './commands/install.ts';
import { registerDashboard } from './commands/dashboard.ts';
import { registerBugReport } from './commands/bug-report.ts';

export const CLI_VERSION = '0.1.0';

export interface GlobalFlags {
  readonly kubeconfig?: string;
  readonly context?: string;
  readonly namespace?: string;
  readonly output: string;
}

export function buildProgram(ctx: CommandContext): Command {
  const program = new Command('ambientctl')
    .description('Inspect and operate an Ambient Mesh: ztunnel state, enrollment, waypoints, authorization')
    .option('--kubeconfig <file>', 'the kubeconfig file (default $KUBECONFIG, then ~/.kube/config)')
    .option('--context <name>', 'the kubeconfig context to use')
    .option('-n, --namespace <namespace>', 'the namespace (default: the context namespace)')
    .addOption(new Option('-o, --output <format>', 'output format').choices(OUTPUT_FORMATS).default('table'))
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({
      writeOut: s => {
        ctx.out(s);
      },
      writeErr: s => {
        ctx.err(s);
      },
    })
    .exitOverride()
    .addHelpText(
      'after',
      `\nExamples:
  ambientctl ztunnel-config workload
  ambientctl dataplane enroll sample
  ambientctl waypoint apply -n sample --enroll-namespace --wait
  ambientctl x authz explain --from sample/client --to echo:8080

ambientctl --version prints the version.
Exit codes: 0 ok, 1 failure, 2 bad usage, 3 cluster unreachable, 4 not found,
5 forbidden, 6 timeout, 7 a mesh component did not answer (docs/cli.md).`,
    );
  program.hook('preAction', (_root, action) => {
    const o = action.optsWithGlobals<GlobalFlags>();
    ctx.useFlags({ kubeconfig: o.kubeconfig, context: o.context, namespace: o.namespace });
  });
  registerZtunnelConfig(program, ctx);
  registerDataplane(program, ctx);
  registerWaypoint(program, ctx);
  registerAnalyze(program, ctx);
  registerProxyStatus(program, ctx);
  registerInstall(program, ctx);
  registerDashboard(program, ctx);
  registerBugReport(program, ctx);
  const x = program
    .command('x')
    .description('Experimental commands')
    .addHelpText('after', '\nExamples:\n  ambientctl x authz explain --from sample/client --to echo:8080');
  registerAuthz(x, ctx);
  registerPrecheck(x, ctx);
  program
    .command('completion <shell>')
    .description('Print a shell completion script (bash or zsh)')
    .addHelpText(
      'after',
      '\nExamples:\n  source <(ambientctl completion bash)\n  ambientctl completion zsh > "${fpath[1]}/_ambientctl"',
    )
    .action((shell: string) => {
      ctx.out(completionScript(program, shell));
    });
  // Every command reports errors through run(): no commander process.exit anywhere.
  const override = (cmd: Command): void => {
    cmd.exitOverride().configureOutput({
      writeOut: s => {
        ctx.out(s);
      },
      writeErr: s => {
        ctx.err(s);
      },
    });
    cmd.commands.forEach(override);
  };
  override(program);
  return program;
}

/** Runs the CLI on user arguments (without `node` and the script); resolves to the exit code. */
export async function run(argv: readonly string[], ctx: CommandContext): Promise<ExitCode> {
  // `ambientctl --version` (or -V) alone prints the version. The root declares no `--version`
  // option: commander would then take `install|upgrade --version <v>` away from those commands.
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
    ctx.out(`${CLI_VERSION}\n`);
    return ExitCode.Ok;
  }
  const program = buildProgram(ctx);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return ExitCode.Ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return ExitCode.Ok; // --help, --version
      return ExitCode.Usage; // commander printed the message already
    }
    ctx.err(`Error: ${describeError(err)}\n`);
    return exitCodeFor(err);
  }
}
