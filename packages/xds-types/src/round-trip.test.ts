import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { codecFor } from './codec.ts';
import type { Decoded, Init, MessageTypeName } from './codec.ts';
import { messageTypeNames } from './generated/registry.ts';
import { lookupMessageType } from './message-root.ts';

// Compile-time: every decoded shape can be passed back to encode (relaying a decoded resource).
type NotReencodable = { [N in MessageTypeName]: Decoded<N> extends Init<N> ? never : N }[MessageTypeName];
const everyDecodedIsAnInit: [NotReencodable] extends [never] ? true : NotReencodable = true;

/** Recursive types (Struct, Value, ListValue) stop nesting messages at this depth. */
const MAX_SAMPLE_DEPTH = 3;

type Sample = { init: Record<string, unknown>; expected: Record<string, unknown> };

function typeOf(name: string): protobuf.Type {
  const type = lookupMessageType(name);
  if (!type) throw new Error(`no type ${name}`);
  return type;
}

/** What decode returns for a message with nothing set, derived from reflection. */
function defaultsOf(type: protobuf.Type): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of type.fieldsArray) {
    if (field.partOf) continue;
    if (field instanceof protobuf.MapField) out[field.name] = {};
    else if (field.repeated) out[field.name] = [];
    else if (field.resolvedType instanceof protobuf.Type) out[field.name] = null;
    else if (field.resolvedType instanceof protobuf.Enum) out[field.name] = 0;
    else out[field.name] = scalarDefault(field.type);
  }
  return out;
}

function scalarDefault(type: string): unknown {
  if (type === 'string') return '';
  if (type === 'bool') return false;
  if (type === 'bytes') return new Uint8Array(0);
  return 0;
}

/** A non-default value for a scalar or enum field, as encode input and as decoded. */
function scalarSample(field: protobuf.Field, n: number): { init: unknown; expected: unknown } {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Enum) {
    const values = Object.values(resolved.values);
    const value = values[values.length - 1] ?? 0;
    return { init: value, expected: value };
  }
  switch (field.type) {
    case 'string':
      return { init: `${field.name}-${n}-é✓`, expected: `${field.name}-${n}-é✓` };
    case 'bool':
      return { init: true, expected: true };
    case 'bytes':
      return { init: new Uint8Array([n, 2, 0, 255]), expected: new Uint8Array([n, 2, 0, 255]) };
    case 'double':
      return { init: 1.5 + n, expected: 1.5 + n };
    case 'float':
      return { init: 0.5, expected: 0.5 };
    case 'uint32':
    case 'fixed32':
      return { init: 4_000_000_000 - n, expected: 4_000_000_000 - n };
    case 'int32':
    case 'sint32':
    case 'sfixed32':
      return { init: -5 - n, expected: -5 - n };
    default:
      // 64-bit: alternate the accepted input forms; decode gives numbers (longs: Number).
      return n % 2 === 0
        ? { init: 2n ** 40n + BigInt(n), expected: 2 ** 40 + n }
        : { init: String(2 ** 40 + n), expected: 2 ** 40 + n };
  }
}

function elementSample(
  field: protobuf.Field,
  n: number,
  depth: number,
): { init: unknown; expected: unknown } {
  if (field.resolvedType instanceof protobuf.Type) {
    const s = sampleOf(field.resolvedType, depth + 1, n);
    return { init: s.init, expected: s.expected };
  }
  return scalarSample(field, n);
}

/** A message with every field set (and oneof member number `variant` chosen). */
function sampleOf(type: protobuf.Type, depth: number, variant: number): Sample {
  const init: Record<string, unknown> = {};
  const expected = defaultsOf(type);
  const deep = depth >= MAX_SAMPLE_DEPTH;
  for (const field of type.fieldsArray) {
    if (field.partOf) continue;
    const isMessage = field.resolvedType instanceof protobuf.Type;
    if (deep && isMessage) continue;
    if (field instanceof protobuf.MapField) {
      const a = elementSample(field, 1, depth);
      const b = elementSample(field, 2, depth);
      init[field.name] = { 'ns/a.example': a.init, '': b.init };
      expected[field.name] = { 'ns/a.example': a.expected, '': b.expected };
    } else if (field.repeated) {
      const items = [elementSample(field, 1, depth), elementSample(field, 2, depth)];
      init[field.name] = items.map(i => i.init);
      expected[field.name] = items.map(i => i.expected);
    } else {
      const s = elementSample(field, 0, depth);
      init[field.name] = s.init;
      expected[field.name] = s.expected;
    }
  }
  for (const oneof of type.oneofsArray) {
    const member = oneof.fieldsArray[variant % oneof.fieldsArray.length]!;
    const resolved = member.resolvedType;
    // At the depth limit a message member is set to an empty message: still present on the wire.
    const s =
      deep && resolved instanceof protobuf.Type
        ? { init: {}, expected: defaultsOf(resolved) }
        : elementSample(member, 0, depth);
    init[member.name] = s.init;
    expected[member.name] = s.expected;
    expected[oneof.name] = member.name;
  }
  return { init, expected };
}

function variantsOf(type: protobuf.Type): number {
  return Math.max(1, ...type.oneofsArray.map(o => o.fieldsArray.length));
}

/** Buffers (what protobufjs gives on Node) compared as plain Uint8Arrays. */
function plain(value: unknown): unknown {
  if (value instanceof Uint8Array) return new Uint8Array(value);
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

describe('every message type', () => {
  it('covers all the proto packages of the package', () => {
    expect(everyDecodedIsAnInit).toBe(true);
    const packages = new Set(messageTypeNames.map(n => n.slice(0, n.lastIndexOf('.'))));
    for (const pkg of [
      'istio.workload',
      'istio.security',
      'istio.workload.zds',
      'istio.v1.auth',
      'envoy.config.core.v3',
      'envoy.service.discovery.v3',
      'google.rpc',
      'google.protobuf',
    ]) {
      expect(packages, pkg).toContain(pkg);
    }
    expect(messageTypeNames.length).toBeGreaterThan(40);
  });

  it.each(messageTypeNames)('%s decodes empty bytes to the documented default shape', name => {
    const codec = codecFor(name);
    const type = typeOf(name);
    expect(plain(codec.decode(new Uint8Array(0)))).toEqual(plain(defaultsOf(type)));
    expect(codec.encode({})).toHaveLength(0);
  });

  it.each(messageTypeNames)('%s round-trips a sample with every field set', name => {
    const codec = codecFor(name);
    const type = typeOf(name);
    for (let variant = 0; variant < variantsOf(type); variant++) {
      const { init, expected } = sampleOf(type, 0, variant);
      const bytes = codec.encode(init);
      const decoded = codec.decode(bytes);
      expect(plain(decoded), `variant ${variant}`).toEqual(plain(expected));
      // Canonical: the decoded value re-encodes to the same bytes.
      expect(plain(codec.encode(decoded as never)), `variant ${variant}`).toEqual(plain(bytes));
    }
  });
});
