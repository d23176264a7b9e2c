/**
 * Checks an encoding input (a generated `Init` shape) against the reflected message type and
 * turns it into the plain object protobufjs encodes.
 *
 * protobufjs's own `fromObject` coerces silently (`'x' | 0` for an int, base64 for bytes) and its
 * `verify` rejects bigint and decimal strings for 64-bit fields, so this walk does the checking
 * itself, reporting the first problem with its field path (`workload.addresses[1]`), and converts
 * 64-bit integers to `{low, high}` pairs. The result is then passed through protobufjs `verify`.
 *
 * Accepted on top of the Init types, so a decoded value always re-encodes: `null` for a singular
 * message field (absent), `undefined` for any field (absent), and the virtual oneof-case property
 * when it names the member that is set.
 */
import protobuf from 'protobufjs';

/** Matches protobufjs's decode recursion limit (and protoc's default). */
const MAX_DEPTH = 100;

const INT32 = { min: -0x8000_0000, max: 0x7fff_ffff };
const UINT32 = { min: 0, max: 0xffff_ffff };
const INT64 = { min: -(2n ** 63n), max: 2n ** 63n - 1n };
const UINT64 = { min: 0n, max: 2n ** 64n - 1n };

export interface EncodeIssue {
  readonly path: string;
  readonly detail: string;
}

type Prepared = { ok: true; value: unknown } | { ok: false; issue: EncodeIssue };

class EncodeInputError extends Error {
  readonly issue: EncodeIssue;

  constructor(path: string, detail: string) {
    super(`${path}: ${detail}`);
    this.issue = { path, detail };
  }
}

/** Checks `value` against `type` and returns the object to hand to `type.encode`. */
export function prepareForEncode(type: protobuf.Type, value: unknown): Prepared {
  try {
    const prepared = prepareMessage(type, value, '', 0);
    const problem = type.verify(prepared);
    if (problem !== null) {
      const colon = problem.indexOf(':');
      return colon < 0
        ? { ok: false, issue: { path: '', detail: problem } }
        : { ok: false, issue: { path: problem.slice(0, colon), detail: problem.slice(colon + 1).trim() } };
    }
    return { ok: true, value: prepared };
  } catch (err) {
    if (err instanceof EncodeInputError) return { ok: false, issue: err.issue };
    throw err;
  }
}

function join(path: string, name: string): string {
  return path === '' ? name : `${path}.${name}`;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Uint8Array) return 'a Uint8Array';
  return typeof value === 'string' ? 'a string' : `a ${typeof value}`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value);
}

function prepareMessage(
  type: protobuf.Type,
  value: unknown,
  path: string,
  depth: number,
): Record<string, unknown> {
  if (depth > MAX_DEPTH) throw new EncodeInputError(path, `nested deeper than ${MAX_DEPTH} messages`);
  if (!isPlainObject(value)) {
    throw new EncodeInputError(
      path,
      `expected an object for ${type.fullName.slice(1)}, got ${describe(value)}`,
    );
  }
  const out: Record<string, unknown> = {};
  const oneofCases: [protobuf.OneOf, unknown][] = [];
  for (const [key, fieldValue] of Object.entries(value)) {
    if (fieldValue === undefined) continue;
    // Own properties only: 'constructor' or '__proto__' must not resolve through the prototype.
    const field = Object.hasOwn(type.fields, key) ? type.fields[key] : undefined;
    if (field) {
      const prepared = prepareField(field, fieldValue, join(path, key), depth);
      if (prepared !== undefined) out[key] = prepared;
      continue;
    }
    // `oneofs` is undefined on a type without any.
    const oneofs = type.oneofs as Record<string, protobuf.OneOf> | undefined;
    const oneof = oneofs && Object.hasOwn(oneofs, key) ? oneofs[key] : undefined;
    if (oneof) {
      oneofCases.push([oneof, fieldValue]);
      continue;
    }
    throw new EncodeInputError(join(path, key), `no such field in ${type.fullName.slice(1)}`);
  }
  for (const oneof of type.oneofsArray) {
    const set = oneof.fieldsArray.filter(f => out[f.name] !== undefined).map(f => f.name);
    if (set.length > 1) {
      throw new EncodeInputError(
        join(path, oneof.name),
        `oneof has more than one member set (${set.join(', ')})`,
      );
    }
  }
  for (const [oneof, named] of oneofCases) {
    const set = oneof.fieldsArray.find(f => out[f.name] !== undefined)?.name;
    if (named !== set) {
      throw new EncodeInputError(
        join(path, oneof.name),
        `names ${JSON.stringify(named)} but the member set is ${set === undefined ? 'none' : `'${set}'`}`,
      );
    }
  }
  return out;
}

function prepareField(field: protobuf.Field, value: unknown, path: string, depth: number): unknown {
  if (field instanceof protobuf.MapField) {
    if (!isPlainObject(value))
      throw new EncodeInputError(path, `expected an object (map), got ${describe(value)}`);
    const out: Record<string, unknown> = {};
    for (const [key, entry] of Object.entries(value)) {
      const entryPath = `${path}[${JSON.stringify(key)}]`;
      if (field.keyType !== 'string' && !/^-?\d+$/.test(key)) {
        throw new EncodeInputError(entryPath, `map key must be an integer for key type ${field.keyType}`);
      }
      out[key] = prepareElement(field, entry, entryPath, depth);
    }
    return out;
  }
  if (field.repeated) {
    if (!Array.isArray(value)) throw new EncodeInputError(path, `expected an array, got ${describe(value)}`);
    return (value as unknown[]).map((item, i) => prepareElement(field, item, `${path}[${i}]`, depth));
  }
  if (value === null) {
    if (field.resolvedType instanceof protobuf.Type) return undefined;
    throw new EncodeInputError(path, 'null is only allowed for message fields');
  }
  return prepareElement(field, value, path, depth);
}

function prepareElement(field: protobuf.Field, value: unknown, path: string, depth: number): unknown {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) return prepareMessage(resolved, value, path, depth + 1);
  if (resolved instanceof protobuf.Enum) {
    return checkInteger(value, path, INT32, `a value of enum ${resolved.fullName.slice(1)}`);
  }
  switch (field.type) {
    case 'string':
      if (typeof value !== 'string')
        throw new EncodeInputError(path, `expected a string, got ${describe(value)}`);
      return value;
    case 'bool':
      if (typeof value !== 'boolean')
        throw new EncodeInputError(path, `expected a boolean, got ${describe(value)}`);
      return value;
    case 'bytes':
      if (!(value instanceof Uint8Array))
        throw new EncodeInputError(path, `expected a Uint8Array, got ${describe(value)}`);
      return value;
    case 'double':
    case 'float':
      if (typeof value !== 'number')
        throw new EncodeInputError(path, `expected a number, got ${describe(value)}`);
      return value;
    case 'int32':
    case 'sint32':
    case 'sfixed32':
      return checkInteger(value, path, INT32, 'a 32-bit integer');
    case 'uint32':
    case 'fixed32':
      return checkInteger(value, path, UINT32, 'an unsigned 32-bit integer');
    case 'int64':
    case 'sint64':
    case 'sfixed64':
      return toLongBits(value, path, INT64, false);
    case 'uint64':
    case 'fixed64':
      return toLongBits(value, path, UINT64, true);
    default:
      throw new EncodeInputError(path, `BUG: unsupported field type ${field.type}`);
  }
}

function checkInteger(
  value: unknown,
  path: string,
  range: { min: number; max: number },
  what: string,
): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < range.min || value > range.max) {
    throw new EncodeInputError(
      path,
      `expected ${what}, got ${typeof value === 'number' ? String(value) : describe(value)}`,
    );
  }
  return value;
}

/** A 64-bit integer as the `{low, high}` pair protobufjs encodes (and `verify` accepts). */
function toLongBits(
  value: unknown,
  path: string,
  range: { min: bigint; max: bigint },
  unsigned: boolean,
): { low: number; high: number; unsigned: boolean } {
  let big: bigint | undefined;
  if (typeof value === 'bigint') big = value;
  else if (typeof value === 'number' && Number.isInteger(value)) big = BigInt(value);
  else if (typeof value === 'string' && /^-?\d{1,20}$/.test(value)) big = BigInt(value);
  if (big === undefined || big < range.min || big > range.max) {
    const kind = unsigned ? 'an unsigned 64-bit integer' : 'a 64-bit integer';
    const shown =
      typeof value === 'string'
        ? JSON.stringify(value)
        : typeof value === 'number' || typeof value === 'bigint'
          ? String(value)
          : describe(value);
    throw new EncodeInputError(path, `expected ${kind} (number, bigint or decimal string), got ${shown}`);
  }
  return {
    low: Number(BigInt.asIntN(32, big)),
    high: Number(BigInt.asIntN(32, big >> 32n)),
    unsigned,
  };
}
