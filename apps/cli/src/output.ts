/**
 * Output formats (`-o table|json|yaml`) and the table writer. Tables are laid out like Go's
 * tabwriter with padding 1, as istioctl prints them: each column as wide as its widest cell plus
 * one space, the last column unpadded.
 */
import { stringify } from 'yaml';
import { usageError } from './errors.ts';

export const OUTPUT_FORMATS = ['table', 'json', 'yaml'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export function parseOutputFormat(value: string): OutputFormat {
  const found = OUTPUT_FORMATS.find(f => f === value);
  if (found === undefined) {
    throw usageError(`unknown output format "${value}"; use one of ${OUTPUT_FORMATS.join(', ')}`);
  }
  return found;
}

/** Renders rows under a header; every line ends with a newline. */
export function renderTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd((widths[i] ?? 0) + 1)))
      .join('')
      .trimEnd();
  return [header, ...rows].map(line).join('\n') + '\n';
}

/** JSON (indented 4, as istioctl) or YAML of any data. */
export function renderData(data: unknown, format: 'json' | 'yaml'): string {
  return format === 'json' ? JSON.stringify(data, null, 4) + '\n' : stringify(data);
}
