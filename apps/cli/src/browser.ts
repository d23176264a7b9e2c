/**
 * Opening a URL in the user's browser (`dashboard`): `$BROWSER` when set (as `xdg-open` and
 * Python's `webbrowser` honour it), `open` on macOS, `start` on Windows, `xdg-open` on Linux when
 * a display is there (`$DISPLAY` or `$WAYLAND_DISPLAY`); none on a headless machine, where the
 * printed URL is all there is. `browserCommand` is pure; `launchBrowser` starts it detached.
 */
import { spawn } from 'node:child_process';

export interface BrowserEnv {
  /** `$BROWSER`. */
  readonly browser?: string | undefined;
  /** `$DISPLAY` or `$WAYLAND_DISPLAY` set. */
  readonly display: boolean;
  /** `process.platform`. */
  readonly platform: string;
}

/** The command line (the URL goes last) that opens a browser here, or undefined when none can. */
export function browserCommand(env: BrowserEnv): readonly string[] | undefined {
  const b = env.browser?.trim();
  if (b !== undefined && b !== '') {
    // $BROWSER may list several commands separated by ':'; the first is used.
    const first = b.split(':')[0]?.trim() ?? '';
    if (first !== '') return first.split(/\s+/);
  }
  if (env.platform === 'darwin') return ['open'];
  if (env.platform === 'win32') return ['cmd', '/c', 'start', '""'];
  if (env.display) return ['xdg-open'];
  return undefined;
}

/**
 * Starts the browser on `url`, detached (it outlives the CLI); resolves false when the command
 * cannot be started (not installed).
 */
export function launchBrowser(command: readonly string[], url: string): Promise<boolean> {
  const [bin, ...args] = command;
  if (bin === undefined) return Promise.resolve(false);
  return new Promise(resolve => {
    const child = spawn(bin, [...args, url], { detached: true, stdio: 'ignore' });
    child.once('error', () => {
      resolve(false);
    });
    child.once('spawn', () => {
      child.unref();
      resolve(true);
    });
  });
}
