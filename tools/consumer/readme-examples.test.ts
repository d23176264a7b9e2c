import { describe, expect, it } from 'vitest';
import { NOT_COMPILED_MARKER, extractExamples, importedPackages } from './readme-examples.ts';

describe('extractExamples', () => {
  it('finds ts blocks, indented ones too, and honours the not-compiled marker', () => {
    const md = [
      '# lib',
      '```ts',
      "import { a } from '@x/a';",
      '```',
      '',
      NOT_COMPILED_MARKER,
      '',
      '```ts',
      'fragment();',
      '```',
      '- item',
      '  ```ts',
      '  more();',
      '  ```',
      '```sh',
      'npm test',
      '```',
    ].join('\n');
    const blocks = extractExamples(md);
    expect(blocks.map(b => [b.index, b.line, b.optedOut])).toEqual([
      [1, 2, false],
      [2, 8, true],
      [3, 12, false],
    ]);
    expect(blocks[0]!.code).toBe("import { a } from '@x/a';\n");
  });
});

describe('importedPackages', () => {
  it('lists bare package names, scoped or not, without node built-ins or relative paths', () => {
    const code = [
      "import * as grpc from '@grpc/grpc-js';",
      "import type { ca } from '@ambient-mesh/xds-types';",
      "import { createPodNetns } from '@ambient-mesh/netns/testing';",
      "import tls from 'node:tls';",
      "import './side-effect.ts';",
      "import 'reflect-metadata';",
      "import {\n  a,\n  b,\n} from 'lodash/fp';",
    ].join('\n');
    expect(importedPackages(code).sort()).toEqual([
      '@ambient-mesh/netns',
      '@ambient-mesh/xds-types',
      '@grpc/grpc-js',
      'lodash',
      'reflect-metadata',
    ]);
  });
});
