// Wire types (generated from proto/), one namespace per proto package.
import * as workload from './generated/istio/workload.ts';
import * as security from './generated/istio/security.ts';
import * as zds from './generated/istio/workload/zds.ts';
import * as ca from './generated/istio/v1/auth.ts';
import * as discovery from './generated/envoy/service/discovery/v3.ts';
import * as core from './generated/envoy/config/core/v3.ts';
import * as status from './generated/envoy/service/status/v3.ts';
import * as admin from './generated/envoy/admin/v3.ts';
import * as rpc from './generated/google/rpc.ts';
import * as protobuf from './generated/google/protobuf.ts';

export { workload, security, zds, ca, discovery, core, status, admin, rpc, protobuf };
export type { MessageTypes } from './generated/registry.ts';
export { messageTypeNames } from './generated/registry.ts';

// Codecs.
export {
  DECODE_OPTIONS,
  codecFor,
  isMessageTypeName,
  AddressCodec,
  WorkloadCodec,
  ServiceCodec,
  AuthorizationCodec,
  DeltaDiscoveryRequestCodec,
  DeltaDiscoveryResponseCodec,
  DiscoveryRequestCodec,
  DiscoveryResponseCodec,
  ZdsHelloCodec,
  WorkloadRequestCodec,
  WorkloadResponseCodec,
  IstioCertificateRequestCodec,
  IstioCertificateResponseCodec,
  NodeCodec,
  ClientConfigCodec,
  StatusCodec,
  StructCodec,
} from './codec.ts';
export type { MessageCodec, MessageTypeName, Decoded, Init } from './codec.ts';

// Type URLs and Any.
export { TYPE_URL_PREFIX, TypeUrl, typeUrlOf, typeNameOfUrl } from './type-url.ts';
export type { MessageTypeUrl } from './type-url.ts';
export { packAny, unpackAny } from './any.ts';

// Struct.
export { toStruct, fromStruct } from './struct.ts';
export type { JsonValue, JsonObject } from './struct.ts';

// gRPC service definitions (structurally grpc-js ServiceDefinitions).
export {
  AggregatedDiscoveryService,
  IstioCertificateService,
  ADS_SERVICE_NAME,
  CA_SERVICE_NAME,
} from './grpc-services.ts';
export type { GrpcMethodDefinition } from './grpc-services.ts';

// Errors.
export {
  XdsErrorCode,
  XdsDecodeError,
  XdsEncodeError,
  XdsTypeUrlMismatchError,
  XdsUnknownTypeUrlError,
  XdsUnknownMessageTypeError,
} from './errors.ts';
