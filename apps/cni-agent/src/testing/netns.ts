/** Namespaced-test helpers: uniquely named network namespaces, removed at cleanup. */
import { execFileSync } from 'node:child_process';

let counter = 0;

export function run(command: string, ...args: string[]): string {
  return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Creates `<label>-<pid>-<n>` with lo up; returns its name, bind-mount path and a remover. */
export function createNetns(label: string): { readonly name: string; readonly path: string; remove(): void } {
  counter += 1;
  const name = `${label}-${process.pid}-${counter}`;
  run('ip', 'netns', 'add', name);
  const remove = (): void => {
    try {
      run('ip', 'netns', 'del', name);
    } catch {
      // Already gone.
    }
  };
  try {
    run('ip', '-n', name, 'link', 'set', 'lo', 'up');
  } catch (err) {
    remove();
    throw err;
  }
  return { name, path: `/var/run/netns/${name}`, remove };
}

/** Our nftables tables inside netns `name`. */
export function ambientTables(name: string): string[] {
  return run('ip', 'netns', 'exec', name, 'nft', 'list', 'tables')
    .split('\n')
    .map(l => l.trim())
    .filter(l => l.includes('istio-ambient'))
    .sort();
}

/** Number of rules in netns `name` (duplicates would raise it). */
export function ruleCount(name: string): number {
  const listing = JSON.parse(run('ip', 'netns', 'exec', name, 'nft', '-j', 'list', 'ruleset')) as {
    nftables: Record<string, unknown>[];
  };
  return listing.nftables.filter(o => 'rule' in o).length;
}

export function fwmarkRules(name: string): string[] {
  return run('ip', '-n', name, 'rule', 'show')
    .split('\n')
    .filter(l => l.includes('fwmark 0x111/0xfff'));
}
