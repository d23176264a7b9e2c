import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { createLogger } from './logger.ts';
import { createPlatform } from './platform.ts';

describe('createPlatform', () => {
  it('makes a fresh registry per platform, with the process metrics only when asked', async () => {
    const plain = createPlatform({ component: 'a' });
    const proc = createPlatform({ component: 'a', processMetrics: true });
    expect(plain.registry).not.toBe(proc.registry);
    expect(await plain.registry.metrics()).not.toContain('process_cpu');
    expect(await proc.registry.metrics()).toContain('process_cpu');
  });

  it('logs through a given logger, tagging parts with their component', () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = createLogger({ format: 'json', level: 'info', destination });
    createPlatform({ component: 'x', logger }).logs.for('xds').info('hello');
    expect(lines.map(l => JSON.parse(l) as Record<string, unknown>)).toEqual([
      expect.objectContaining({ msg: 'hello', component: 'xds' }),
    ]);
  });
});
