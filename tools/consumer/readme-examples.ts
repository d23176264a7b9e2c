/**
 * Finds the TypeScript examples of a library README: every ```ts fenced block, in order, unless
 * the block is directly preceded (blank lines aside) by the marker `<!-- not-compiled -->`.
 *
 * The marker is for fragments only (a snippet that continues another one, or shows a shape
 * rather than a program); every complete example is compiled and run by consumer.test.ts.
 */

export const NOT_COMPILED_MARKER = '<!-- not-compiled -->';

export interface ReadmeExample {
  /** 1-based index among the README's ```ts blocks (opted-out blocks keep their number). */
  readonly index: number;
  /** 1-based line of the opening fence. */
  readonly line: number;
  readonly code: string;
  /** True when the block carries the not-compiled marker. */
  readonly optedOut: boolean;
}

const FENCE_OPEN = /^```(ts|typescript)\s*$/;
const FENCE_CLOSE = /^```\s*$/;

/** Every ```ts block of a Markdown text, with its opt-out flag. */
export function extractExamples(markdown: string): ReadmeExample[] {
  const lines = markdown.split(/\r?\n/);
  const out: ReadmeExample[] = [];
  let index = 0;
  for (let i = 0; i < lines.length; i++) {
    if (!FENCE_OPEN.test(lines[i]!.trim())) continue;
    const start = i;
    const body: string[] = [];
    i++;
    while (i < lines.length && !FENCE_CLOSE.test(lines[i]!.trim())) {
      body.push(lines[i]!);
      i++;
    }
    index++;
    let previous = start - 1;
    while (previous >= 0 && lines[previous]!.trim() === '') previous--;
    const optedOut = previous >= 0 && lines[previous]!.trim() === NOT_COMPILED_MARKER;
    out.push({ index, line: start + 1, code: `${body.join('\n')}\n`, optedOut });
  }
  return out;
}

const IMPORT_FROM = /^\s*(?:import|export)\b[^'"]*?\bfrom\s+['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]/gm;

/** The npm package names a block imports (bare specifiers; `node:` built-ins left out). */
export function importedPackages(code: string): string[] {
  const names = new Set<string>();
  for (const match of code.matchAll(IMPORT_FROM)) {
    const specifier = match[1] ?? match[2]!;
    if (specifier.startsWith('node:') || specifier.startsWith('.') || specifier.startsWith('/')) continue;
    const parts = specifier.split('/');
    names.add(specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!);
  }
  return [...names];
}
