/**
 * What every command receives: output sinks, the cluster connection (made lazily from the global
 * flags, so `-f` and `--help` never touch a cluster), progress on stderr, the clock and timers.
 * Tests build one with fakes; `main.ts` builds the real one.
 */
import type { Cluster, ClusterFlags } from './cluster.ts';
import { parseOutputFormat, type OutputFormat } from './output.ts';
import type { Progress } from './progress.ts';

export interface CommandContext {
  /** Writes to stdout. */
  out(text: string): void;
  /** Writes to stderr (warnings). */
  err(text: string): void;
  /** The cluster of the global flags; throws a typed error when unusable. */
  cluster(): Cluster;
  /** Records the global flags of the command about to run (a preAction hook calls it). */
  useFlags(flags: ClusterFlags): void;
  readonly progress: Progress;
  now(): Date;
  /** Waits `ms` (injected so tests drive waits). */
  sleep(ms: number): Promise<void>;
  readStdin(): Promise<string>;
  /** Resolves when the user interrupts (Ctrl-C, SIGTERM): long-running commands stop then. */
  interrupted(): Promise<void>;
  /** Parses `-o`. */
  format(value: string): OutputFormat;
  /**
   * Opens a URL in the user's browser; resolves false when no browser is available here
   * (headless, nothing installed).
   */
  openUrl(url: string): Promise<boolean>;
}

export interface ContextParts {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly cluster: (flags: ClusterFlags) => Cluster;
  readonly progress: Progress;
  readonly now?: () => Date;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly readStdin?: () => Promise<string>;
  readonly interrupted?: () => Promise<void>;
  readonly openUrl?: (url: string) => Promise<boolean>;
}

export function createContext(parts: ContextParts): CommandContext {
  let cached: Cluster | undefined;
  let flags: ClusterFlags = {};
  return {
    out: parts.out,
    err: parts.err,
    cluster: () => (cached ??= parts.cluster(flags)),
    useFlags: f => {
      flags = f;
      cached = undefined;
    },
    progress: parts.progress,
    now: parts.now ?? (() => new Date()),
    sleep: parts.sleep ?? (ms => new Promise(resolve => setTimeout(resolve, ms))),
    readStdin: parts.readStdin ?? (() => Promise.resolve('')),
    interrupted: parts.interrupted ?? (() => Promise.resolve()),
    format: parseOutputFormat,
    openUrl: parts.openUrl ?? (() => Promise.resolve(false)),
  };
}
