/**
 * Walking a decoded proto object with every problem collected: typed getters, durations and
 * wrappers, and the check that a message carries no field the waypoint does not implement
 * (reported, so the resource is NACKed, rather than silently ignored).
 */
import type { ProtoObject } from '../xds/envoy-protos.ts';

export class ProtoReader {
  readonly problems: string[] = [];

  problem(path: string, message: string): void {
    this.problems.push(`${path}: ${message}`);
  }

  /**
   * Reports each set field of `obj` that is neither `supported` nor `ignored` (fields with no
   * effect on a waypoint, listed where they are read).
   */
  only(obj: ProtoObject, path: string, supported: readonly string[], ignored: readonly string[] = []): void {
    for (const key of Object.keys(obj)) {
      if (key === '@type' || supported.includes(key) || ignored.includes(key)) continue;
      this.problem(path === '' ? key : `${path}.${key}`, 'is not supported by the waypoint');
    }
  }

  string(obj: ProtoObject, key: string): string | undefined {
    const v = obj[key];
    return typeof v === 'string' ? v : undefined;
  }

  number(obj: ProtoObject, key: string): number | undefined {
    const v = obj[key];
    return typeof v === 'number' ? v : undefined;
  }

  bool(obj: ProtoObject, key: string): boolean | undefined {
    const v = obj[key];
    return typeof v === 'boolean' ? v : undefined;
  }

  object(obj: ProtoObject, key: string): ProtoObject | undefined {
    const v = obj[key];
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as ProtoObject) : undefined;
  }

  list(obj: ProtoObject, key: string): ProtoObject[] {
    const v = obj[key];
    return Array.isArray(v) ? (v.filter(x => x !== null && typeof x === 'object') as ProtoObject[]) : [];
  }

  strings(obj: ProtoObject, key: string): string[] {
    const v = obj[key];
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  }

  /** A `google.protobuf.*Value` wrapper's value. */
  wrapped(obj: ProtoObject, key: string): number | boolean | undefined {
    const w = this.object(obj, key);
    if (w === undefined) return undefined;
    const v = w.value;
    if (typeof v === 'number' || typeof v === 'boolean') return v;
    return typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v === undefined ? 0 : undefined;
  }

  /** A `BoolValue`: present without a value means false (proto3 drops default values). */
  wrappedBool(obj: ProtoObject, key: string): boolean | undefined {
    const w = this.object(obj, key);
    if (w === undefined) return undefined;
    return w.value === true;
  }

  wrappedNumber(obj: ProtoObject, key: string): number | undefined {
    const v = this.wrapped(obj, key);
    return typeof v === 'number' ? v : v === undefined ? undefined : Number(v);
  }

  /** A `google.protobuf.Duration` in milliseconds. */
  durationMs(obj: ProtoObject, key: string, path: string): number | undefined {
    const d = this.object(obj, key);
    if (d === undefined) return undefined;
    const seconds = Number(d.seconds ?? 0);
    const nanos = Number(d.nanos ?? 0);
    if (!Number.isFinite(seconds) || !Number.isFinite(nanos) || seconds < 0 || nanos < 0) {
      this.problem(`${path}.${key}`, 'must be a non-negative duration');
      return undefined;
    }
    return seconds * 1000 + nanos / 1e6;
  }

  /** Compiles a RE2-style regex; RE2 syntax is close enough to JS for the patterns Istio emits. */
  regex(pattern: string, path: string, flags = ''): RegExp | undefined {
    try {
      return new RegExp(`^(?:${pattern})$`, flags);
    } catch (err) {
      this.problem(path, `invalid regex ${JSON.stringify(pattern)} (${(err as Error).message})`);
      return undefined;
    }
  }
}
