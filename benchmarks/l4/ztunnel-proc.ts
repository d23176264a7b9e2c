// CPU time and memory of the ztunnel processes of a local cluster, read from /proc: a ztunnel
// process is one whose command line runs the ztunnel app and whose network namespace is its pod's.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat's utime and stime. */
export const CLOCK_TICKS: number = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

export interface ProcSample {
  /** User + system CPU seconds of the matching processes. */
  readonly cpuSeconds: number;
  /** Resident set size, bytes. */
  readonly rss: number;
  /** Peak resident set size (VmHWM), bytes. */
  readonly peakRss: number;
  readonly pids: readonly number[];
}

function statusField(status: string, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  return m === null ? 0 : Number(m[1]) * 1024;
}

/** The processes in the netns `/run/netns/<netns>` whose command line contains `marker`. */
export function findProcesses(netns: string, marker: string): number[] {
  const inode = statSync(`/run/netns/${netns}`).ino;
  const wanted = `net:[${inode}]`;
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/ns/net`) !== wanted) continue;
      if (!readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(marker)) continue;
      pids.push(Number(entry));
    } catch {
      // The process exited while we looked.
    }
  }
  return pids;
}

/** Sums CPU and memory over `pids` (processes that are gone count as zero). */
export function sampleProcesses(pids: readonly number[]): ProcSample {
  let ticks = 0;
  let rss = 0;
  let peakRss = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      rss += statusField(status, 'VmRSS');
      peakRss += statusField(status, 'VmHWM');
    } catch {
      // Gone.
    }
  }
  return { cpuSeconds: ticks / CLOCK_TICKS, rss, peakRss, pids };
}
