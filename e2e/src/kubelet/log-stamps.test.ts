import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseLogQuery } from './log-server.ts';
import { LogStamper, readStamps, rfc3339Nano, stampLines } from './log-stamps.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('stampLines', () => {
  it('gives each complete line the first note covering its end and leaves a partial line out', () => {
    const data = Buffer.from('one\ntwo\nthree\npart');
    const { lines, consumed } = stampLines(
      data,
      0,
      [
        [4, 100],
        [14, 200],
      ],
      999,
    );
    expect(lines.map(l => [l.text, l.time])).toEqual([
      ['one\n', 100],
      ['two\n', 200],
      ['three\n', 200],
    ]);
    expect(consumed).toBe(14);
  });

  it('uses the fallback for lines no note covers yet, and honours the start offset', () => {
    const { lines } = stampLines(Buffer.from('late\n'), 10, [[10, 5]], 42);
    expect(lines).toEqual([{ text: 'late\n', end: 15, time: 42 }]);
  });
});

describe('LogStamper', () => {
  it('notes the size each time the file grows, and not when it does not', () => {
    const dir = mkdtempSync(join(tmpdir(), 'stamps-'));
    dirs.push(dir);
    const log = join(dir, 'c.log');
    writeFileSync(log, '');
    let t = 1000;
    const s = new LogStamper(log, () => t);
    writeFileSync(log, 'a\n', { flag: 'a' });
    s.note();
    t = 2000;
    s.note();
    writeFileSync(log, 'bb\n', { flag: 'a' });
    s.stop();
    expect(readStamps(log)).toEqual([
      [2, 1000],
      [5, 2000],
    ]);
  });
});

describe('parseLogQuery and rfc3339Nano', () => {
  it('reads what kubectl logs sends', () => {
    const q = parseLogQuery(
      new URLSearchParams('follow=true&tailLines=5&sinceSeconds=10&timestamps=true&limitBytes=100'),
      50_000,
    );
    expect(q).toEqual({ follow: true, tailLines: 5, since: 40_000, timestamps: true, limitBytes: 100 });
    expect(parseLogQuery(new URLSearchParams('sinceTime=1970-01-01T00:00:01Z'), 0).since).toBe(1000);
    expect(parseLogQuery(new URLSearchParams(''), 0)).toEqual({
      follow: false,
      tailLines: -1,
      since: undefined,
      timestamps: false,
      limitBytes: undefined,
    });
  });

  it('prints nanosecond RFC 3339 like the kubelet', () => {
    expect(rfc3339Nano(Date.UTC(2026, 0, 2, 3, 4, 5, 678))).toBe('2026-01-02T03:04:05.678000000Z');
  });
});
