// Timestamps for container log lines. A container writes its log file directly (no pipe through
// the kubelet, so a kubelet restart cannot break it), so the kubelet notes when the file grew:
// a side file `<log>.stamps` of "<size> <epoch ms>" lines, appended from inotify events (fs.watch)
// as the file grows. A line's time is the first note at which the file held all of it: the
// moment the kubelet saw it, normally within a millisecond of the write. Used for
// `kubectl logs --timestamps`, `--since` and `--since-time`.
import { appendFileSync, existsSync, readFileSync, statSync, watch, type FSWatcher } from 'node:fs';

export function stampsFile(logFile: string): string {
  return `${logFile}.stamps`;
}

/** Appends a note each time `logFile` grows, until stop(). */
export class LogStamper {
  private readonly logFile: string;
  private readonly file: string;
  private watcher: FSWatcher | undefined;
  private size = 0;
  private pending = false;

  constructor(logFile: string, now: () => number = Date.now) {
    this.logFile = logFile;
    this.file = stampsFile(logFile);
    this.now = now;
    this.size = statSync(logFile, { throwIfNoEntry: false })?.size ?? 0;
    try {
      this.watcher = watch(logFile, { persistent: false }, () => {
        this.schedule();
      });
      this.watcher.on('error', () => undefined);
    } catch {
      this.watcher = undefined; // no log file: nothing to stamp
    }
  }

  private readonly now: () => number;

  private schedule(): void {
    if (this.pending) return;
    this.pending = true;
    setImmediate(() => {
      this.pending = false;
      this.note();
    });
  }

  /** Records the current size if the file grew. */
  note(): void {
    const size = statSync(this.logFile, { throwIfNoEntry: false })?.size ?? this.size;
    if (size <= this.size) return;
    this.size = size;
    try {
      appendFileSync(this.file, `${size} ${this.now()}\n`);
    } catch {
      // the pod dir is being removed
    }
  }

  stop(): void {
    this.note();
    this.watcher?.close();
    this.watcher = undefined;
  }
}

/** The notes of a log file as [size, epoch ms], in file order. */
export function readStamps(logFile: string): [number, number][] {
  const file = stampsFile(logFile);
  if (!existsSync(file)) return [];
  const out: [number, number][] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const [a, b] = line.split(' ');
    if (a && b) out.push([Number(a), Number(b)]);
  }
  return out;
}

/** A log line with where it ends in the file and when it was written. */
export interface StampedLine {
  readonly text: string;
  readonly end: number;
  readonly time: number;
}

/**
 * Splits `data` (the file's bytes from offset `start`) into complete lines and times them: each
 * gets the first note whose size covers its end, or `fallback` when no note does yet. An
 * incomplete last line is left out; `consumed` says how many bytes the lines used.
 */
export function stampLines(
  data: Buffer,
  start: number,
  stamps: readonly [number, number][],
  fallback: number,
): { lines: StampedLine[]; consumed: number } {
  const lines: StampedLine[] = [];
  let from = 0;
  let s = 0;
  for (;;) {
    const nl = data.indexOf(10, from);
    if (nl < 0) break;
    const end = start + nl + 1;
    while (s < stamps.length && stamps[s]![0] < end) s++;
    lines.push({ text: data.subarray(from, nl + 1).toString('utf8'), end, time: stamps[s]?.[1] ?? fallback });
    from = nl + 1;
  }
  return { lines, consumed: from };
}

/** RFC 3339 with nanoseconds, as the kubelet prints with `timestamps=true`. */
export function rfc3339Nano(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000000Z');
}
