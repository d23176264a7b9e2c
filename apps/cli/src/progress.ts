/**
 * Progress on anything that waits, written to stderr so stdout stays parseable. On a terminal a
 * step is rewritten in place; otherwise (pipes, CI, `NO_COLOR`) each step is its own line.
 */
export interface Progress {
  /** A step started or advanced: `enrolling sample: 2/3 pods redirected`. */
  step(message: string): void;
  /** The wait finished; `ok` false prints a failure mark. */
  done(message: string, ok?: boolean): void;
}

export interface ProgressSink {
  write(text: string): void;
}

export function createProgress(sink: ProgressSink, plain: boolean): Progress {
  let last = '';
  return {
    step(message) {
      if (message === last) return;
      last = message;
      sink.write(plain ? `… ${message}\n` : `\r\x1b[K… ${message}`);
    },
    done(message, ok = true) {
      last = '';
      sink.write(`${plain ? '' : '\r\x1b[K'}${ok ? '✔' : '✘'} ${message}\n`);
    },
  };
}

/** A Progress that prints nothing (`--quiet`, tests). */
export const silentProgress: Progress = { step: () => undefined, done: () => undefined };
