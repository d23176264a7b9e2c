import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AddressCodec,
  AuthorizationCodec,
  DeltaDiscoveryRequestCodec,
  DeltaDiscoveryResponseCodec,
  IstioCertificateRequestCodec,
  NodeCodec,
  StructCodec,
  WorkloadCodec,
  WorkloadRequestCodec,
  WorkloadResponseCodec,
  XdsDecodeError,
  XdsEncodeError,
  XdsUnknownMessageTypeError,
  ZdsHelloCodec,
  codecFor,
  messageTypeNames,
  security,
  workload,
  zds,
} from './index.ts';
import type { MessageCodec } from './index.ts';

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes)
    .toString('hex')
    .replace(/(..)(?!$)/g, '$1 ');
}

function fromHex(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text.replace(/\s+/g, ''), 'hex'));
}

function concat(...parts: (Uint8Array | string)[]): Uint8Array {
  return new Uint8Array(
    Buffer.concat(parts.map(p => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p)))),
  );
}

function expectDecodeError(codec: MessageCodec<unknown, unknown>, bytes: Uint8Array): XdsDecodeError {
  let thrown: unknown;
  try {
    codec.decode(bytes);
  } catch (err) {
    thrown = err;
  }
  expect(thrown, `decoding ${hex(bytes)}`).toBeInstanceOf(XdsDecodeError);
  const err = thrown as XdsDecodeError;
  expect(err.code).toBe('XDS_DECODE_FAILED');
  expect(err.typeName).toBe(codec.typeName);
  return err;
}

function expectEncodeError(encode: () => unknown, path: string): XdsEncodeError {
  let thrown: unknown;
  try {
    encode();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(XdsEncodeError);
  const err = thrown as XdsEncodeError;
  expect(err.code).toBe('XDS_ENCODE_INVALID');
  expect(err.path).toBe(path);
  return err;
}

const POD_UID = 'Kubernetes//Pod/default/pod-a';

const podAddress: workload.AddressInit = {
  workload: {
    uid: POD_UID,
    name: 'pod-a',
    namespace: 'default',
    addresses: [new Uint8Array([10, 0, 0, 1]), new Uint8Array(16).fill(0xfd, 0, 1)],
    tunnelProtocol: workload.TunnelProtocol.HBONE,
  },
};

describe('ZDS golden bytes', () => {
  it("encodes ztunnel's hello ZdsHello{version: V1} as 08 01", () => {
    const bytes = ZdsHelloCodec.encode({ version: zds.Version.V1 });
    expect(hex(bytes)).toBe('08 01');
    expect(ZdsHelloCodec.decode(fromHex('08 01'))).toEqual({ version: zds.Version.V1 });
  });

  it('encodes the ACK WorkloadResponse{ack: {}} as 0a 00', () => {
    expect(hex(WorkloadResponseCodec.encode({ ack: {} }))).toBe('0a 00');
    expect(WorkloadResponseCodec.decode(fromHex('0a 00'))).toEqual({ ack: { error: '' }, payload: 'ack' });
  });

  it('encodes a NACK with the error text on Ack tag 1', () => {
    expect(hex(WorkloadResponseCodec.encode({ ack: { error: 'no' } }))).toBe('0a 04 0a 02 6e 6f');
  });

  it('puts DelWorkload.uid on tag 2, not 1', () => {
    expect(hex(codecFor('istio.workload.zds.DelWorkload').encode({ uid: 'u1' }))).toBe('12 02 75 31');
    // WorkloadRequest.del is tag 2 as well.
    const bytes = WorkloadRequestCodec.encode({ del: { uid: 'u1' } });
    expect(hex(bytes)).toBe('12 04 12 02 75 31');
    expect(WorkloadRequestCodec.decode(bytes)).toEqual({ del: { uid: 'u1' }, payload: 'del' });
    // A uid on tag 1 is an unknown field of DelWorkload: skipped, not read as the uid.
    expect(codecFor('istio.workload.zds.DelWorkload').decode(fromHex('0a 02 75 31'))).toEqual({ uid: '' });
  });

  it('encodes SnapshotSent and a keep by their oneof tags 3 and 5', () => {
    expect(hex(WorkloadRequestCodec.encode({ snapshotSent: {} }))).toBe('1a 00');
    expect(hex(WorkloadRequestCodec.encode({ keep: { uid: 'k' } }))).toBe('2a 03 0a 01 6b');
  });
});

describe('Address{workload}', () => {
  const expectedBytes = concat(
    fromHex('0a 4a'), // Address.workload (1), length 74
    fromHex('0a 05'),
    'pod-a', // name (1)
    fromHex('12 07'),
    'default', // namespace (2)
    fromHex('1a 04 0a 00 00 01'), // addresses (3): 10.0.0.1
    fromHex('1a 10 fd 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00'), // addresses (3): fd00::
    fromHex('28 01'), // tunnel_protocol (5): HBONE
    fromHex('a2 01 1d'),
    POD_UID, // uid (20): tag (20 << 3 | 2) = 162 = varint a2 01
  );

  it('encodes to the canonical bytes, with uid on tag 20', () => {
    const bytes = AddressCodec.encode(podAddress);
    expect(hex(bytes)).toBe(hex(expectedBytes));
    expect(hex(bytes)).toContain(`a2 01 1d ${hex(Buffer.from(POD_UID))}`);
  });

  it('decodes field for field, with every other field at its default', () => {
    const decoded = AddressCodec.decode(expectedBytes);
    expect(decoded.type).toBe('workload');
    expect(decoded.service).toBeUndefined();
    const w = decoded.workload!;
    expect(w.uid).toBe(POD_UID);
    expect(w.name).toBe('pod-a');
    expect(w.namespace).toBe('default');
    expect(w.addresses.map(a => [...a])).toEqual([
      [10, 0, 0, 1],
      [0xfd, ...new Array<number>(15).fill(0)],
    ]);
    expect(w.tunnelProtocol).toBe(workload.TunnelProtocol.HBONE);
    expect(w.serviceAccount).toBe('');
    expect(w.waypoint).toBeNull();
    expect(w.capacity).toBeNull();
    expect(w.services).toEqual({});
    expect(w.authorizationPolicies).toEqual([]);
    expect(w.workloadType).toBe(workload.WorkloadType.DEPLOYMENT);
  });

  it('rejects every truncation of the bytes with XdsDecodeError', () => {
    for (let len = 1; len < expectedBytes.length; len++) {
      expectDecodeError(AddressCodec, expectedBytes.subarray(0, len));
    }
  });
});

describe('decoding tolerates what newer peers send', () => {
  const base = AddressCodec.encode(podAddress);

  it('skips unknown fields of every wire type', () => {
    const withUnknown = concat(
      base,
      fromHex('f8 07 2a'), // field 127, varint
      fromHex('fa 07 03 61 62 63'), // field 127, length-delimited "abc"
      fromHex('f1 07 01 02 03 04 05 06 07 08'), // field 126, fixed64
      fromHex('ed 07 01 02 03 04'), // field 125, fixed32
    );
    expect(AddressCodec.decode(withUnknown)).toEqual(AddressCodec.decode(base));
  });

  it('keeps enum values it does not know (open proto3 enums)', () => {
    // TunnelProtocol 2 (LEGACY_ISTIO_MTLS) exists only after 1.27.
    expect(WorkloadCodec.decode(fromHex('28 02')).tunnelProtocol).toBe(2);
  });
});

describe('malformed input', () => {
  it.each([
    ['a length past the end', '0a 05 61'],
    ['an unterminated varint', '08 ff ff'],
    ['an over-long varint', '08 ff ff ff ff ff ff ff ff ff ff ff'],
    ['wire type 7', '0f 00'],
    ['wire type 6', '0e 00'],
    ['an end-group tag with no start', '0c'],
    ['field number 0', '00 01'],
  ])('gives XdsDecodeError for %s', (_what, text) => {
    expectDecodeError(AddressCodec, fromHex(text));
  });

  it('gives XdsDecodeError for nesting deeper than the recursion limit', () => {
    const listValue = codecFor('google.protobuf.ListValue');
    // ListValue.values (1) → Value.list_value (6) → ListValue → ...
    const nest = (levels: number): Uint8Array => {
      let inner: Uint8Array = new Uint8Array(0);
      for (let i = 0; i < levels; i++) {
        const tag = i % 2 === 0 ? 0x32 : 0x0a;
        inner = concat(new Uint8Array([tag]), varint(inner.length), inner);
      }
      return inner;
    };
    expect(listValue.decode(nest(20)).values).toHaveLength(1);
    expectDecodeError(listValue, nest(300));
  });

  it('gives XdsDecodeError, never another error, for random bytes (fuzz)', () => {
    const codecs: MessageCodec<unknown, unknown>[] = [
      AddressCodec,
      AuthorizationCodec,
      DeltaDiscoveryRequestCodec,
      DeltaDiscoveryResponseCodec,
      WorkloadRequestCodec,
      NodeCodec,
      StructCodec,
    ];
    fc.assert(
      fc.property(fc.constantFrom(...codecs), fc.uint8Array({ maxLength: 300 }), (codec, bytes) => {
        try {
          const value = codec.decode(bytes);
          expect(typeof value).toBe('object');
        } catch (err) {
          expect(err).toBeInstanceOf(XdsDecodeError);
        }
      }),
      { numRuns: 4000, seed: 20251125 },
    );
  });

  it('gives XdsDecodeError for mutations of valid bytes (fuzz)', () => {
    const valid = DeltaDiscoveryResponseCodec.encode({
      typeUrl: 'type.googleapis.com/istio.workload.Address',
      nonce: 'n-1',
      resources: [
        { name: POD_UID, version: 'v1', resource: { type_url: 'x', value: AddressCodec.encode(podAddress) } },
      ],
      removedResources: ['gone'],
    });
    fc.assert(
      fc.property(
        fc.nat({ max: valid.length - 1 }),
        fc.integer({ min: 0, max: 255 }),
        fc.nat({ max: valid.length }),
        (at, byte, cut) => {
          const mutated = new Uint8Array(valid);
          mutated[at] = byte;
          try {
            DeltaDiscoveryResponseCodec.decode(mutated.subarray(0, cut));
          } catch (err) {
            expect(err).toBeInstanceOf(XdsDecodeError);
          }
        },
      ),
      { numRuns: 2000, seed: 7 },
    );
  });

  it('rejects a non-Uint8Array input with XdsDecodeError', () => {
    expectDecodeError(AddressCodec, 'not bytes' as unknown as Uint8Array);
  });
});

describe('encode validation', () => {
  it('names the field path of a wrongly typed value', () => {
    expectEncodeError(() => WorkloadCodec.encode({ uid: 5 as unknown as string }), 'uid');
    expectEncodeError(
      () =>
        AddressCodec.encode({
          workload: { addresses: [new Uint8Array(4), '10.0.0.1' as unknown as Uint8Array] },
        }),
      'workload.addresses[1]',
    );
    expectEncodeError(
      () => WorkloadCodec.encode({ services: { 'ns/svc': { ports: [{ servicePort: -1 }] } } }),
      'services["ns/svc"].ports[0].servicePort',
    );
    expectEncodeError(
      () => WorkloadCodec.encode({ nativeTunnel: 'yes' as unknown as boolean }),
      'nativeTunnel',
    );
  });

  it('rejects unknown fields, two oneof members, and a wrong oneof case', () => {
    const err = expectEncodeError(() => WorkloadCodec.encode({ uidd: 'x' } as workload.WorkloadInit), 'uidd');
    expect(err.message).toContain('no such field');
    // Keys that exist on Object.prototype are unknown fields too.
    expectEncodeError(
      () => WorkloadCodec.encode({ constructor: 'x' } as workload.WorkloadInit),
      'constructor',
    );
    expectEncodeError(
      () => WorkloadCodec.encode(JSON.parse('{"__proto__": {"uid": "x"}}') as workload.WorkloadInit),
      '__proto__',
    );
    expectEncodeError(() => AddressCodec.encode({ workload: {}, service: {} }), 'type');
    expectEncodeError(() => AddressCodec.encode({ workload: {}, type: 'service' }), 'type');
    expectEncodeError(
      () => codecFor('istio.security.StringMatch').encode({ exact: 'a', prefix: 'b' }),
      'matchType',
    );
  });

  it('accepts null for absent message fields and the matching oneof case', () => {
    expect(hex(AddressCodec.encode({ workload: { waypoint: null, name: 'a' }, type: 'workload' }))).toBe(
      '0a 03 0a 01 61',
    );
  });

  it('writes an empty oneof string (explicit presence) but omits zero scalars', () => {
    const match = codecFor('istio.security.StringMatch');
    expect(hex(match.encode({ exact: '' }))).toBe('0a 00');
    expect(hex(match.encode({ presence: {} }))).toBe('22 00');
    expect(match.decode(fromHex('22 00'))).toEqual({ presence: {}, matchType: 'presence' });
    expect(
      hex(WorkloadCodec.encode({ name: '', nativeTunnel: false, status: workload.WorkloadStatus.HEALTHY })),
    ).toBe('');
  });

  it('accepts int64 as number, bigint or decimal string and checks the range', () => {
    for (const validityDuration of [86_400, 86_400n, '86400']) {
      expect(hex(IstioCertificateRequestCodec.encode({ validityDuration }))).toBe('18 80 a3 05');
    }
    const negative = IstioCertificateRequestCodec.encode({ validityDuration: -1n });
    expect(IstioCertificateRequestCodec.decode(negative).validityDuration).toBe(-1);
    expectEncodeError(
      () => IstioCertificateRequestCodec.encode({ validityDuration: '9223372036854775808' }),
      'validityDuration',
    );
    expectEncodeError(
      () => IstioCertificateRequestCodec.encode({ validityDuration: 1.5 }),
      'validityDuration',
    );
  });

  it('checks 32-bit ranges', () => {
    const port = codecFor('istio.workload.Port');
    expect(port.decode(port.encode({ servicePort: 0xffff_ffff })).servicePort).toBe(0xffff_ffff);
    expectEncodeError(() => port.encode({ servicePort: 2 ** 32 }), 'servicePort');
    expectEncodeError(() => codecFor('google.rpc.Status').encode({ code: 2 ** 31 }), 'code');
  });

  it('encodes an Authorization with its repeated rules, clauses and matches', () => {
    const policy: security.AuthorizationInit = {
      name: 'allow-frontend',
      namespace: 'shop',
      scope: security.Scope.WORKLOAD_SELECTOR,
      action: security.Action.ALLOW,
      rules: [
        {
          clauses: [
            {
              matches: [
                {
                  principals: [{ exact: 'spiffe://cluster.local/ns/shop/sa/frontend' }],
                  destinationPorts: [8080],
                },
              ],
            },
          ],
        },
      ],
    };
    const decoded = AuthorizationCodec.decode(AuthorizationCodec.encode(policy));
    expect(decoded.scope).toBe(security.Scope.WORKLOAD_SELECTOR);
    expect(decoded.rules[0]?.clauses[0]?.matches[0]?.principals[0]).toEqual({
      exact: 'spiffe://cluster.local/ns/shop/sa/frontend',
      matchType: 'exact',
    });
    expect(decoded.rules[0]?.clauses[0]?.matches[0]?.destinationPorts).toEqual([8080]);
  });
});

describe('codecFor', () => {
  it('knows every generated message type and rejects other names', () => {
    for (const name of messageTypeNames) expect(codecFor(name).typeName).toBe(name);
    expect(() => codecFor('istio.workload.Nope')).toThrow(XdsUnknownMessageTypeError);
    expect(() => codecFor('istio.workload')).toThrow(XdsUnknownMessageTypeError);
    expect(() => codecFor('Workload')).toThrow(XdsUnknownMessageTypeError);
  });
});

function varint(n: number): Uint8Array {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return new Uint8Array(out);
}
