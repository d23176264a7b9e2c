/**
 * The gRPC service of the `ambient-mesh/grpc-echo` image and its client (`grpc-client.ts`):
 * `test.Echo` with a unary and a bidirectional-streaming method, JSON-encoded messages (no
 * protobuf compiler needed; gRPC's framing and HTTP/2 are the real thing).
 */
import type { ServiceDefinition } from '@grpc/grpc-js';

export interface EchoMessage {
  readonly text: string;
  /** Set by the server: who answered. */
  readonly pod?: string;
  readonly version?: string;
  /** Set by the server: the message's number within its call. */
  readonly seq?: number;
  /** Set by the server (unary): the most unary calls it held at once so far. */
  readonly maxInFlight?: number;
}

const serialize = (v: EchoMessage): Buffer => Buffer.from(JSON.stringify(v));
const deserialize = (b: Buffer): EchoMessage => JSON.parse(b.toString('utf8')) as EchoMessage;

const method = (name: string, requestStream: boolean, responseStream: boolean) => ({
  path: `/test.Echo/${name}`,
  requestStream,
  responseStream,
  requestSerialize: serialize,
  requestDeserialize: deserialize,
  responseSerialize: serialize,
  responseDeserialize: deserialize,
});

export const ECHO_SERVICE = {
  unary: method('Unary', false, false),
  bidi: method('Bidi', true, true),
} satisfies ServiceDefinition;

export const GRPC_ECHO_PORT = 7070;
