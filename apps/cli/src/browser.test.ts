import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { browserCommand, launchBrowser } from './browser.ts';
import { readEnv } from './config.ts';

const dir = mkdtempSync(join(tmpdir(), 'ambientctl-browser-'));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('opening a browser', () => {
  it('uses $BROWSER first, then the platform opener, and none on a headless Linux', () => {
    expect(
      browserCommand({ browser: 'firefox --new-tab:chromium', display: false, platform: 'linux' }),
    ).toEqual(['firefox', '--new-tab']);
    expect(browserCommand({ display: false, platform: 'darwin' })).toEqual(['open']);
    expect(browserCommand({ display: false, platform: 'win32' })).toEqual(['cmd', '/c', 'start', '""']);
    expect(browserCommand({ display: true, platform: 'linux' })).toEqual(['xdg-open']);
    expect(browserCommand({ browser: ' ', display: false, platform: 'linux' })).toBeUndefined();
    expect(readEnv({ WAYLAND_DISPLAY: 'wayland-0' }, false, 'linux').browser).toEqual({
      browser: undefined,
      display: true,
      platform: 'linux',
    });
  });

  it('starts the browser command detached with the URL, and says false when it is not installed', async () => {
    const got = join(dir, 'opened');
    const script = join(dir, 'fake-browser');
    writeFileSync(script, `#!/bin/sh\necho "$@" > ${got}.tmp && mv ${got}.tmp ${got}\n`);
    chmodSync(script, 0o755);
    expect(await launchBrowser([script, '--new-window'], 'http://127.0.0.1:9090/')).toBe(true);
    // The browser runs on its own; wait (bounded) for it to have been given the URL.
    for (let i = 0; i < 200 && !existsSync(got); i++) await new Promise(r => setTimeout(r, 25));
    expect(readFileSync(got, 'utf8')).toBe('--new-window http://127.0.0.1:9090/\n');
    expect(await launchBrowser([join(dir, 'no-such-browser')], 'http://x/')).toBe(false);
  });
});
