/**
 * Conversion between plain JSON and `google.protobuf.Struct`, which carries Envoy node metadata
 * and Istio CA request metadata.
 */
import { XdsDecodeError, XdsEncodeError } from './errors.ts';
import { NullValue } from './generated/google/protobuf.ts';
import type * as protobuf from './generated/google/protobuf.ts';

export type JsonValue = null | boolean | number | string | readonly JsonValue[] | JsonObject;
export interface JsonObject {
  readonly [key: string]: JsonValue;
}

/** Same limit as protobufjs's decode recursion limit. */
const MAX_DEPTH = 100;
const STRUCT = 'google.protobuf.Struct';

/**
 * Builds a Struct from a JSON object. Numbers must be finite (Struct numbers are doubles, and
 * JSON has no NaN); anything that is not JSON throws {@link XdsEncodeError} with its path.
 */
export function toStruct(json: JsonObject): protobuf.Struct {
  return structOf(json, '', 0);
}

function structOf(json: unknown, path: string, depth: number): protobuf.Struct {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new XdsEncodeError(STRUCT, path, 'expected a JSON object');
  }
  const fields: Record<string, protobuf.Value> = {};
  for (const [key, value] of Object.entries(json)) {
    fields[key] = valueOf(value, path === '' ? key : `${path}.${key}`, depth + 1);
  }
  return { fields };
}

function valueOf(value: unknown, path: string, depth: number): protobuf.Value {
  if (depth > MAX_DEPTH) throw new XdsEncodeError(STRUCT, path, `nested deeper than ${MAX_DEPTH} levels`);
  if (value === null) return { kind: 'nullValue', nullValue: NullValue.NULL_VALUE };
  switch (typeof value) {
    case 'boolean':
      return { kind: 'boolValue', boolValue: value };
    case 'string':
      return { kind: 'stringValue', stringValue: value };
    case 'number':
      if (!Number.isFinite(value)) throw new XdsEncodeError(STRUCT, path, `${value} is not a JSON number`);
      return { kind: 'numberValue', numberValue: value };
    case 'object':
      if (Array.isArray(value)) {
        return {
          kind: 'listValue',
          listValue: { values: value.map((item: unknown, i) => valueOf(item, `${path}[${i}]`, depth + 1)) },
        };
      }
      return { kind: 'structValue', structValue: structOf(value, path, depth) };
    default:
      throw new XdsEncodeError(STRUCT, path, `${typeof value} is not a JSON value`);
  }
}

/**
 * The JSON object a Struct holds. A Value with no kind set reads as `null` (as in Go's
 * `structpb`); a Value with several kinds set throws {@link XdsDecodeError}.
 */
export function fromStruct(struct: protobuf.StructInit | null | undefined): Record<string, JsonValue> {
  return jsonOfStruct(struct, '', 0);
}

function jsonOfStruct(
  struct: protobuf.StructInit | null | undefined,
  path: string,
  depth: number,
): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = {};
  for (const [key, value] of Object.entries(struct?.fields ?? {})) {
    out[key] = jsonOfValue(value, path === '' ? key : `${path}.${key}`, depth + 1);
  }
  return out;
}

function jsonOfValue(value: protobuf.ValueInit, path: string, depth: number): JsonValue {
  if (depth > MAX_DEPTH) throw new XdsDecodeError(STRUCT, `${path}: nested deeper than ${MAX_DEPTH} levels`);
  const kinds = (
    ['nullValue', 'numberValue', 'stringValue', 'boolValue', 'structValue', 'listValue'] as const
  ).filter(k => value[k] !== undefined);
  if (kinds.length > 1)
    throw new XdsDecodeError(STRUCT, `${path}: more than one kind set (${kinds.join(', ')})`);
  if (value.numberValue !== undefined) return value.numberValue;
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.structValue) return jsonOfStruct(value.structValue, path, depth);
  if (value.listValue) {
    return (value.listValue.values ?? []).map((item, i) => jsonOfValue(item, `${path}[${i}]`, depth + 1));
  }
  return null;
}
