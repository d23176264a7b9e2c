import { describe, expect, it } from 'vitest';
import {
  AddressCodec,
  DeltaDiscoveryResponseCodec,
  TypeUrl,
  XdsDecodeError,
  XdsTypeUrlMismatchError,
  XdsUnknownTypeUrlError,
  packAny,
  typeUrlOf,
  unpackAny,
  workload,
} from './index.ts';
import type { MessageTypeUrl, protobuf } from './index.ts';

const address: workload.AddressInit = {
  workload: {
    uid: 'Kubernetes//Pod/default/pod-a',
    name: 'pod-a',
    namespace: 'default',
    serviceAccount: 'sa-a',
    node: 'node-1',
    addresses: [new Uint8Array([10, 244, 1, 5])],
    tunnelProtocol: workload.TunnelProtocol.HBONE,
  },
};

function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

describe('packAny / unpackAny', () => {
  it('wraps a resource with its type URL and unwraps it from a decoded DeltaDiscoveryResponse', () => {
    const any = packAny(TypeUrl.ADDRESS, address);
    expect(any.type_url).toBe('type.googleapis.com/istio.workload.Address');
    expect([...any.value]).toEqual([...AddressCodec.encode(address)]);

    const wire = DeltaDiscoveryResponseCodec.encode({
      typeUrl: TypeUrl.ADDRESS,
      nonce: 'nonce-1',
      systemVersionInfo: 'v1',
      resources: [{ name: 'Kubernetes//Pod/default/pod-a', version: 'v1', resource: any }],
    });
    const response = DeltaDiscoveryResponseCodec.decode(wire);
    const resource = response.resources[0]!;
    const decoded = unpackAny(resource.resource, TypeUrl.ADDRESS);
    expect(decoded.type).toBe('workload');
    expect(decoded.workload?.uid).toBe('Kubernetes//Pod/default/pod-a');
    expect(decoded.workload?.serviceAccount).toBe('sa-a');
    expect([...decoded.workload!.addresses[0]!]).toEqual([10, 244, 1, 5]);
  });

  it('packs any message of the package by its type.googleapis.com URL', () => {
    const url = typeUrlOf('istio.security.Authorization');
    expect(url).toBe(TypeUrl.AUTHORIZATION);
    const any = packAny(url, { name: 'p', namespace: 'ns' });
    expect(unpackAny(any, TypeUrl.AUTHORIZATION)).toMatchObject({ name: 'p', namespace: 'ns' });
  });

  it('throws XDS_TYPE_URL_MISMATCH for an Any of another type or a missing Any', () => {
    const any = packAny(TypeUrl.ADDRESS, address);
    const err = thrownBy(() => unpackAny(any, TypeUrl.AUTHORIZATION));
    expect(err).toBeInstanceOf(XdsTypeUrlMismatchError);
    expect((err as XdsTypeUrlMismatchError).code).toBe('XDS_TYPE_URL_MISMATCH');
    expect((err as XdsTypeUrlMismatchError).expected).toBe(TypeUrl.AUTHORIZATION);
    expect((err as XdsTypeUrlMismatchError).actual).toBe(TypeUrl.ADDRESS);
    expect(thrownBy(() => unpackAny(null, TypeUrl.ADDRESS))).toBeInstanceOf(XdsTypeUrlMismatchError);
    // Same message name under another prefix is still a different type URL.
    const other: protobuf.Any = { type_url: 'example.com/istio.workload.Address', value: any.value };
    expect(thrownBy(() => unpackAny(other, TypeUrl.ADDRESS))).toBeInstanceOf(XdsTypeUrlMismatchError);
  });

  it('throws XDS_UNKNOWN_TYPE_URL for a type URL naming no message of the package', () => {
    const unknown = 'type.googleapis.com/istio.workload.Nope' as MessageTypeUrl;
    const err = thrownBy(() => unpackAny({ type_url: unknown, value: new Uint8Array(0) }, unknown));
    expect(err).toBeInstanceOf(XdsUnknownTypeUrlError);
    expect((err as XdsUnknownTypeUrlError).code).toBe('XDS_UNKNOWN_TYPE_URL');
    expect(thrownBy(() => packAny(unknown, {}))).toBeInstanceOf(XdsUnknownTypeUrlError);
  });

  it('throws XDS_DECODE_FAILED for a payload that is not a valid message', () => {
    const broken: protobuf.Any = { type_url: TypeUrl.ADDRESS, value: new Uint8Array([0x0a, 0x05, 0x01]) };
    const err = thrownBy(() => unpackAny(broken, TypeUrl.ADDRESS));
    expect(err).toBeInstanceOf(XdsDecodeError);
    expect((err as XdsDecodeError).code).toBe('XDS_DECODE_FAILED');
    expect((err as XdsDecodeError).typeName).toBe('istio.workload.Address');
  });
});
