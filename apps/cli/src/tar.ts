/**
 * A minimal writer of gzip-compressed tar archives (POSIX ustar): regular files only, names up to
 * 255 bytes (split into prefix and name at a `/`), mode 0644, one fixed modification time. Enough
 * for `bug-report`, readable by `tar -xzf` everywhere.
 */
import { gzipSync } from 'node:zlib';
import { usageError } from './errors.ts';

export interface TarEntry {
  /** Path inside the archive, `/`-separated, relative. */
  readonly name: string;
  readonly content: string | Buffer;
}

const BLOCK = 512;

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

function splitName(name: string): { prefix: string; name: string } {
  if (Buffer.byteLength(name) <= 100) return { prefix: '', name };
  for (let i = name.lastIndexOf('/'); i > 0; i = name.lastIndexOf('/', i - 1)) {
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) <= 100) return { prefix, name: rest };
  }
  throw usageError(`the archive path "${name}" is too long for a tar header`);
}

function header(name: string, size: number, mtime: number): Buffer {
  const h = Buffer.alloc(BLOCK, 0);
  const parts = splitName(name);
  h.write(parts.name, 0, 100, 'utf8');
  h.write(octal(0o644, 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii');
  h.write(octal(0, 8), 116, 'ascii');
  h.write(octal(size, 12), 124, 'ascii');
  h.write(octal(mtime, 12), 136, 'ascii');
  h.write('        ', 148, 'ascii'); // the checksum counts itself as spaces
  h.write('0', 156, 'ascii');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  h.write(parts.prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return h;
}

/** The tar archive of the entries (uncompressed). */
export function tarArchive(entries: readonly TarEntry[], mtime: Date): Buffer {
  const seconds = Math.floor(mtime.getTime() / 1000);
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const data = typeof e.content === 'string' ? Buffer.from(e.content, 'utf8') : e.content;
    blocks.push(header(e.name, data.length, seconds), data);
    const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
    if (pad > 0) blocks.push(Buffer.alloc(pad, 0));
  }
  blocks.push(Buffer.alloc(2 * BLOCK, 0));
  return Buffer.concat(blocks);
}

/** The `.tar.gz` of the entries. */
export function tarGz(entries: readonly TarEntry[], mtime: Date): Buffer {
  return gzipSync(tarArchive(entries, mtime));
}
