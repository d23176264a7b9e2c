import { describe, expect, it } from 'vitest';
import { cmdlineMentionsDir } from './reaper.ts';

const cmd = (...args: string[]): string => `${args.join('\0')}\0`;

describe('cmdlineMentionsDir (which processes the reaper of a cluster kills)', () => {
  const dir = '/var/state/ambient-mesh/cluster/con';

  it('matches the state dir itself and paths inside it, as a flag value or an argument', () => {
    expect(cmdlineMentionsDir(cmd('etcd', `--data-dir=${dir}/etcd`), dir)).toBe(true);
    expect(cmdlineMentionsDir(cmd('node', 'harness.ts', dir), dir)).toBe(true);
    expect(cmdlineMentionsDir(cmd('sh', '-c', `exec x --state ${dir} --v=2`), dir)).toBe(true);
  });

  it('does not match the state dir of another cluster whose name starts with the same letters', () => {
    const other = '/var/state/ambient-mesh/cluster/conf104';
    expect(cmdlineMentionsDir(cmd('kube-apiserver', `--cert-dir=${other}/pki`), dir)).toBe(false);
    expect(cmdlineMentionsDir(cmd('node', 'harness.ts', other), dir)).toBe(false);
    // One argument naming both: ours counts.
    expect(cmdlineMentionsDir(cmd(`--a=${other}/x`, `--b=${dir}/y`), dir)).toBe(true);
  });
});
