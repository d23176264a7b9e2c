/**
 * Shell completion scripts (`ambientctl completion bash|zsh`), generated from the command tree:
 * at each position the subcommands (and aliases) of the command typed so far, else its flags.
 */
import type { Command } from 'commander';
import { usageError } from './errors.ts';

export const SHELLS = ['bash', 'zsh'] as const;
export type Shell = (typeof SHELLS)[number];

interface Node {
  readonly path: string;
  readonly words: readonly string[];
}

function walk(cmd: Command, path: string, out: Node[]): void {
  const subs = cmd.commands.filter(c => c.name() !== 'help');
  const flags = cmd.options.flatMap(o => [o.long, o.short].filter((f): f is string => f !== undefined));
  out.push({ path, words: [...subs.flatMap(c => [c.name(), ...c.aliases()]), ...flags, '--help'] });
  for (const c of subs) {
    for (const name of [c.name(), ...c.aliases()]) walk(c, path === '' ? name : `${path} ${name}`, out);
  }
}

/** The completion table: one entry per command path (`''` for the root). */
export function completionTable(program: Command): ReadonlyMap<string, readonly string[]> {
  const nodes: Node[] = [];
  walk(program, '', nodes);
  return new Map(nodes.map(n => [n.path, n.words]));
}

export function completionScript(program: Command, shell: string): string {
  if (shell !== 'bash' && shell !== 'zsh') {
    throw usageError(`unknown shell "${shell}"; use one of ${SHELLS.join(', ')}`);
  }
  const cases = [...completionTable(program)]
    .map(([path, words]) => `    "${path}") words="${words.join(' ')}" ;;`)
    .join('\n');
  const fn = `_ambientctl_complete() {
  local cur path word words i
  cur="\${COMP_WORDS[COMP_CWORD]}"
  path=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="\${COMP_WORDS[i]}"
    case "$word" in -*) continue ;; esac
    if [ -z "$path" ]; then candidate="$word"; else candidate="$path $word"; fi
    case "$candidate" in
${[...completionTable(program).keys()]
  .filter(k => k !== '')
  .map(k => `      "${k}") path="$candidate" ;;`)
  .join('\n')}
    esac
  done
  case "$path" in
${cases}
    *) words="" ;;
  esac
  COMPREPLY=( $(compgen -W "$words" -- "$cur") )
}
complete -F _ambientctl_complete ambientctl
`;
  return shell === 'bash'
    ? `# ambientctl bash completion: source <(ambientctl completion bash)\n${fn}`
    : `#compdef ambientctl\n# ambientctl zsh completion: source <(ambientctl completion zsh)\nautoload -U +X bashcompinit && bashcompinit\n${fn}`;
}
