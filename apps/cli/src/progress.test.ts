import { describe, expect, it } from 'vitest';
import { createProgress } from './progress.ts';

describe('progress on stderr', () => {
  it('prints each step on its own line when plain, once per distinct message', () => {
    let out = '';
    const p = createProgress({ write: t => (out += t) }, true);
    p.step('1/2 pods redirected');
    p.step('1/2 pods redirected');
    p.step('2/2 pods redirected');
    p.done('namespace enrolled');
    p.done('timed out', false);
    expect(out).toBe('… 1/2 pods redirected\n… 2/2 pods redirected\n✔ namespace enrolled\n✘ timed out\n');
  });

  it('rewrites the line in place on a terminal', () => {
    let out = '';
    const p = createProgress({ write: t => (out += t) }, false);
    p.step('waiting');
    p.done('ok');
    expect(out).toBe('\r\x1b[K… waiting\r\x1b[K✔ ok\n');
  });
});
