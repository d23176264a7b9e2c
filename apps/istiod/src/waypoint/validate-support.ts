/** Small helpers shared by the waypoint validators: field paths, typed reads, durations, regexes. */
import type { FieldIssue } from './types.ts';

export type Rec = Readonly<Record<string, unknown>>;

export function isRec(v: unknown): v is Rec {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Collects issues while reading one object. */
export class Issues {
  readonly list: FieldIssue[] = [];
  add(path: string, message: string): void {
    this.list.push({ path, message });
  }
}

export function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

export function int(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) ? v : undefined;
}

export function arr(v: unknown): readonly unknown[] {
  return Array.isArray(v) ? v : [];
}

export function rec(v: unknown): Rec {
  return isRec(v) ? v : {};
}

/** Object metadata the waypoint code reads. */
export interface Meta {
  readonly namespace: string;
  readonly name: string;
  readonly generation: number;
  readonly creationTimestamp: string;
}

export function readMeta(obj: unknown, issues: Issues): Meta | undefined {
  const meta = rec(rec(obj).metadata);
  const name = str(meta.name) ?? '';
  const namespace = str(meta.namespace) ?? '';
  if (name === '') issues.add('metadata.name', 'is required');
  if (namespace === '') issues.add('metadata.namespace', 'is required');
  if (name === '' || namespace === '') return undefined;
  const ts = meta.creationTimestamp;
  return {
    name,
    namespace,
    generation: int(meta.generation) ?? 0,
    creationTimestamp: ts instanceof Date ? ts.toISOString() : (str(ts) ?? ''),
  };
}

/**
 * An RE2-compatible regex check. Envoy uses RE2; JavaScript's engine accepts a superset
 * (lookaround, backreferences) that RE2 refuses, so those are rejected here too.
 */
export function regexProblem(pattern: string): string | undefined {
  if (/\(\?[=!<]|\(\?<[=!]|\\[1-9]/.test(pattern)) {
    return `regex ${JSON.stringify(pattern)} uses lookaround or a backreference, which RE2 (Envoy) does not support`;
  }
  try {
    new RegExp(pattern, 'u');
    return undefined;
  } catch (err) {
    return `invalid regex ${JSON.stringify(pattern)}: ${err instanceof Error ? err.message : String(err)}`;
  }
}

/** Gateway API / Istio durations (`1h2m3s4ms`, `1.5s`) to milliseconds; undefined when malformed. */
export function parseDurationMs(v: unknown): number | undefined {
  if (typeof v !== 'string' || v === '') return undefined;
  const re = /(\d+(?:\.\d+)?)(h|ms|m|s)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(v); m !== null; m = re.exec(v)) {
    const n = Number(m[1]);
    const unit = m[2];
    total += unit === 'h' ? n * 3_600_000 : unit === 'm' ? n * 60_000 : unit === 's' ? n * 1000 : n;
    consumed = re.lastIndex;
  }
  return consumed === v.length ? Math.round(total) : undefined;
}

export function readDuration(v: unknown, path: string, issues: Issues): number | undefined {
  if (v === undefined) return undefined;
  const ms = parseDurationMs(v);
  if (ms === undefined) issues.add(path, `invalid duration ${JSON.stringify(v)} (use e.g. "10s", "500ms")`);
  return ms;
}
