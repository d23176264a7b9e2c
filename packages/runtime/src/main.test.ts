import { describe, expect, it } from 'vitest';
import { ConfigError } from './errors.ts';
import { ExitCode, main } from './main.ts';
import type { MainOptions, ProcessPort, Runnable, Signal } from './main.ts';
import { FakeTimers } from './testing/fake-timers.ts';
import { captureLogs } from './testing/log-capture.ts';

class FakeProcess implements ProcessPort {
  readonly listeners = new Map<Signal, (() => void)[]>();
  stderr = '';
  exitCode: number | undefined;
  exited: number | undefined;

  once(signal: Signal, listener: () => void): void {
    this.listeners.set(signal, [...(this.listeners.get(signal) ?? []), listener]);
  }
  off(signal: Signal, listener: () => void): void {
    this.listeners.set(
      signal,
      (this.listeners.get(signal) ?? []).filter(l => l !== listener),
    );
  }
  writeError(text: string): void {
    this.stderr += text;
  }
  setExitCode(code: number): void {
    this.exitCode = code;
  }
  exit(code: number): void {
    this.exited = code;
  }
  /** Delivers a signal to the current listeners (each is a `once`). */
  signal(signal: Signal): void {
    const current = this.listeners.get(signal) ?? [];
    this.listeners.set(signal, []);
    for (const l of current) l();
  }
  async waitForListener(signal: Signal): Promise<void> {
    while ((this.listeners.get(signal) ?? []).length === 0) await new Promise(r => setImmediate(r));
  }
}

interface FakeApp extends Runnable {
  shutdowns: number;
  finishShutdown(): void;
}

function fakeApp(terminated?: Promise<void>): FakeApp {
  let release: () => void = () => undefined;
  const done = new Promise<void>(resolve => {
    release = resolve;
  });
  const app: FakeApp = {
    shutdowns: 0,
    shutdown: () => {
      app.shutdowns += 1;
      return done;
    },
    finishShutdown: () => {
      release();
    },
    ...(terminated !== undefined ? { terminated } : {}),
  };
  return app;
}

function options(
  proc: FakeProcess,
  timers: FakeTimers,
  overrides: Partial<MainOptions<{ graceMs: number }, string, FakeApp>> = {},
): MainOptions<{ graceMs: number }, string, FakeApp> {
  return {
    name: 'demo',
    loadConfig: () => ({ graceMs: 1_000 }),
    deps: () => 'deps',
    build: () => Promise.resolve(fakeApp()),
    drainDeadlineMs: config => config.graceMs,
    process: proc,
    timers,
    ...overrides,
  };
}

describe('main', () => {
  it('builds with the config and deps, drains on SIGTERM and exits 0', async () => {
    const proc = new FakeProcess();
    const timers = new FakeTimers();
    const app = fakeApp();
    const seen: unknown[] = [];
    const { logs, records } = captureLogs();
    const run = main(
      options(proc, timers, {
        build: (config, deps) => {
          seen.push(config, deps);
          return Promise.resolve(app);
        },
        logger: () => logs.for('main'),
      }),
    );
    await proc.waitForListener('SIGTERM');
    expect(seen).toEqual([{ graceMs: 1_000 }, 'deps']);
    proc.signal('SIGTERM');
    expect(app.shutdowns).toBe(1);
    app.finishShutdown();
    expect(await run).toBe(ExitCode.Ok);
    expect(proc.exitCode).toBe(0);
    expect(records.map(r => r.msg)).toEqual(['shutting down', 'shutdown complete']);
    expect(records[0]).toMatchObject({ reason: 'SIGTERM', deadlineMs: 1_000, component: 'main' });
    // Its signal listeners are gone: the default handling is back.
    expect([...proc.listeners.values()].flat()).toEqual([]);
    // Lingering handles get a bounded time before the process is ended.
    timers.advance(5_000);
    expect(proc.exited).toBe(0);
  });

  it('prints every configuration problem and exits 2 without building', async () => {
    const proc = new FakeProcess();
    let built = false;
    const code = await main(
      options(proc, new FakeTimers(), {
        loadConfig: () => {
          throw new ConfigError([
            { setting: 'POD_NAME', message: 'required' },
            { setting: '--httpAddr', message: '":99999" is not a listen address' },
          ]);
        },
        build: () => {
          built = true;
          return Promise.resolve(fakeApp());
        },
      }),
    );
    expect(code).toBe(ExitCode.ConfigInvalid);
    expect(built).toBe(false);
    expect(proc.stderr).toBe(
      'demo: invalid configuration [RUNTIME_CONFIG_INVALID]; nothing was started. ' +
        'Fix these environment variables / flags and restart:\n' +
        '  - POD_NAME: required\n' +
        '  - --httpAddr: ":99999" is not a listen address\n',
    );
  });

  it('exits 1 with the reason when build fails', async () => {
    const proc = new FakeProcess();
    const code = await main(
      options(proc, new FakeTimers(), { build: () => Promise.reject(new Error('port taken')) }),
    );
    expect(code).toBe(ExitCode.Failed);
    expect(proc.stderr).toBe('demo: failed to start: port taken\n');
  });

  it('exits 1 when loading the config fails for another reason', async () => {
    const proc = new FakeProcess();
    const code = await main(
      options(proc, new FakeTimers(), {
        loadConfig: () => {
          throw new Error('disk');
        },
      }),
    );
    expect(code).toBe(ExitCode.Failed);
    expect(proc.stderr).toContain('cannot read the configuration: disk');
  });

  it('exits 3 when the drain outlives its deadline', async () => {
    const proc = new FakeProcess();
    const timers = new FakeTimers();
    const run = main(options(proc, timers));
    await proc.waitForListener('SIGINT');
    proc.signal('SIGINT');
    timers.advance(1_000);
    expect(await run).toBe(ExitCode.DrainTimeout);
    expect(proc.stderr).toContain('RUNTIME_DRAIN_TIMEOUT');
  });

  it('exits at once on a second SIGINT while draining', async () => {
    const proc = new FakeProcess();
    const run = main(options(proc, new FakeTimers()));
    await proc.waitForListener('SIGINT');
    proc.signal('SIGINT');
    proc.signal('SIGINT');
    expect(await run).toBe(ExitCode.Forced);
    expect(proc.exited).toBe(ExitCode.Forced);
  });

  it('ignores a repeated SIGTERM while draining: the drain runs to its end', async () => {
    const proc = new FakeProcess();
    const app = fakeApp();
    const run = main(options(proc, new FakeTimers(), { build: () => Promise.resolve(app) }));
    await proc.waitForListener('SIGTERM');
    proc.signal('SIGTERM');
    proc.signal('SIGTERM');
    expect(app.shutdowns).toBe(1);
    app.finishShutdown();
    expect(await run).toBe(ExitCode.Ok);
    expect(proc.exited).toBeUndefined();
    expect(proc.stderr).not.toContain('exiting now');
  });

  it('drains when the app terminates itself, and reports a failed shutdown', async () => {
    const proc = new FakeProcess();
    let terminate: () => void = () => undefined;
    const terminated = new Promise<void>(resolve => {
      terminate = resolve;
    });
    const app: Runnable = { shutdown: () => Promise.reject(new Error('stuck')), terminated };
    const run = main({ ...options(proc, new FakeTimers()), build: () => Promise.resolve(app as FakeApp) });
    await proc.waitForListener('SIGTERM');
    terminate();
    expect(await run).toBe(ExitCode.Failed);
    expect(proc.stderr).toContain('shutdown failed');
  });
});
