import { describe, expect, it } from 'vitest';
import { NodeCodec, StructCodec, XdsDecodeError, XdsEncodeError, fromStruct, toStruct } from './index.ts';
import type { JsonObject } from './index.ts';

describe('toStruct / fromStruct', () => {
  const metadata: JsonObject = {
    NAME: 'ztunnel-abc',
    NAMESPACE: 'istio-system',
    INSTANCE_IPS: '10.0.0.7',
    DNS_CAPTURE: true,
    PORTS: [15001, 15006, 15008],
    NESTED: { a: null, b: [{ c: 'd' }], e: -0.5 },
  };

  it('round-trips JSON through Struct bytes', () => {
    const struct = toStruct(metadata);
    expect(struct.fields['NAME']).toEqual({ kind: 'stringValue', stringValue: 'ztunnel-abc' });
    const decoded = StructCodec.decode(StructCodec.encode(struct));
    expect(fromStruct(decoded)).toEqual(metadata);
  });

  it('carries node metadata the way ztunnel sends it', () => {
    const bytes = NodeCodec.encode({
      id: 'ztunnel~10.0.0.7~ztunnel-abc.istio-system~istio-system.svc.cluster.local',
      metadata: toStruct({ NAME: 'ztunnel-abc', CLUSTER_ID: 'Kubernetes' }),
    });
    const node = NodeCodec.decode(bytes);
    expect(fromStruct(node.metadata)).toEqual({ NAME: 'ztunnel-abc', CLUSTER_ID: 'Kubernetes' });
    expect(fromStruct(null)).toEqual({});
  });

  it('rejects values that are not JSON, naming the path', () => {
    const bad = [
      [{ a: { b: Number.NaN } }, 'a.b'],
      [{ list: [1, undefined] }, 'list[1]'],
      [{ fn: () => 1 }, 'fn'],
      [{ big: 1n }, 'big'],
    ] as const;
    for (const [value, path] of bad) {
      let thrown: unknown;
      try {
        toStruct(value as unknown as JsonObject);
      } catch (err) {
        thrown = err;
      }
      expect(thrown, path).toBeInstanceOf(XdsEncodeError);
      expect((thrown as XdsEncodeError).path).toBe(path);
    }
  });

  it('bounds nesting (and so cycles) instead of overflowing the stack', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    expect(() => toStruct(cyclic as JsonObject)).toThrow(XdsEncodeError);
  });

  it('reads a Value with no kind as null and rejects one with two kinds', () => {
    expect(fromStruct({ fields: { a: {} } })).toEqual({ a: null });
    expect(() => fromStruct({ fields: { a: { stringValue: 'x', boolValue: true } } })).toThrow(
      XdsDecodeError,
    );
  });
});
