/**
 * Command-line flags as Go's flag package reads them: `--name=value`, `--name value`, a single
 * leading dash too, and bare `--name` for boolean flags. Unknown flags and missing values are
 * problems, collected rather than thrown.
 */
import type { ConfigProblem } from './errors.ts';

export interface FlagSpec {
  /** A bare `--name` means `true`. */
  readonly boolean?: boolean;
}

export type FlagSpecs = Readonly<Record<string, FlagSpec>>;

export interface ParsedFlags {
  /** Values by flag name (without dashes); the last occurrence wins. */
  readonly values: ReadonlyMap<string, string>;
  /** Arguments that are not flags (e.g. a `discovery` sub-command). */
  readonly positionals: readonly string[];
  readonly problems: readonly ConfigProblem[];
}

export function parseFlags(argv: readonly string[], specs: FlagSpecs): ParsedFlags {
  const values = new Map<string, string>();
  const positionals: string[] = [];
  const problems: ConfigProblem[] = [];
  const known = Object.keys(specs);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq === -1 ? body : body.slice(0, eq);
    const spec = Object.hasOwn(specs, name) ? specs[name] : undefined;
    if (spec === undefined) {
      problems.push({
        setting: `--${name}`,
        message: `unknown flag; known: ${known.map(k => `--${k}`).join(', ')}`,
      });
      continue;
    }
    if (eq !== -1) {
      values.set(name, body.slice(eq + 1));
    } else if (spec.boolean === true) {
      values.set(name, 'true');
    } else {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('-')) {
        problems.push({ setting: `--${name}`, message: 'needs a value' });
      } else {
        values.set(name, next);
        i++;
      }
    }
  }
  return { values, positionals, problems };
}
