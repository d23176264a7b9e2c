import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tarArchive, tarGz } from './tar.ts';

describe('tar writer', () => {
  it('writes ustar blocks: a header per file, content padded to 512, two zero blocks at the end', () => {
    const t = tarArchive([{ name: 'a.txt', content: 'hello' }], new Date(0));
    expect(t.length).toBe(512 * 4);
    expect(t.subarray(257, 263).toString('ascii')).toBe('ustar\0');
    expect(t.subarray(124, 135).toString('ascii')).toBe('00000000005');
    expect(t.subarray(512, 517).toString('utf8')).toBe('hello');
  });

  it('is read back by tar -xzf, long names included', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ambientctl-tar-'));
    try {
      const long = `${'d'.repeat(60)}/${'e'.repeat(60)}/file.log`;
      const archive = join(dir, 'r.tar.gz');
      writeFileSync(
        archive,
        tarGz(
          [
            { name: 'r/one.json', content: '{"a":1}\n' },
            { name: `r/${long}`, content: Buffer.from('x'.repeat(1000)) },
          ],
          new Date('2026-12-05T10:00:00Z'),
        ),
      );
      const r = spawnSync('tar', ['-xzf', archive, '-C', dir], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(readFileSync(join(dir, 'r/one.json'), 'utf8')).toBe('{"a":1}\n');
      expect(readFileSync(join(dir, 'r', long), 'utf8')).toBe('x'.repeat(1000));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a path no ustar header can hold', () => {
    expect(() => tarArchive([{ name: 'x'.repeat(300), content: '' }], new Date(0))).toThrow(
      /too long for a tar header/,
    );
  });
});
