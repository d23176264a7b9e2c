/**
 * gRPC service definitions for `@grpc/grpc-js`, without depending on it: each object has the
 * shape of grpc-js's `ServiceDefinition` (method name → `path`, stream flags, serializers,
 * `originalName`), so it can be passed to `server.addService`, `makeGenericClientConstructor`,
 * or the `Client.make*Request` methods.
 *
 * Serializers take the `Init` shapes; deserializers return the decoded shapes and throw
 * `XdsDecodeError` on malformed bytes (grpc-js turns that into an INTERNAL status).
 */
import { codecFor } from './codec.ts';
import type { MessageCodec } from './codec.ts';
import type * as discovery from './generated/envoy/service/discovery/v3.ts';
import type * as ca from './generated/istio/v1/auth.ts';

export interface GrpcMethodDefinition<RequestInit, Request, ResponseInit, Response> {
  readonly path: string;
  readonly requestStream: boolean;
  readonly responseStream: boolean;
  /** The lowerCamelCase method name grpc-js also exposes on generated clients. */
  readonly originalName: string;
  readonly requestSerialize: (value: RequestInit) => Buffer;
  readonly requestDeserialize: (bytes: Buffer) => Request;
  readonly responseSerialize: (value: ResponseInit) => Buffer;
  readonly responseDeserialize: (bytes: Buffer) => Response;
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function method<ReqI, Req, ResI, Res>(
  service: string,
  name: string,
  streams: { request: boolean; response: boolean },
  request: () => MessageCodec<Req, ReqI>,
  response: () => MessageCodec<Res, ResI>,
): GrpcMethodDefinition<ReqI, Req, ResI, Res> {
  return {
    path: `/${service}/${name}`,
    requestStream: streams.request,
    responseStream: streams.response,
    originalName: name.charAt(0).toLowerCase() + name.slice(1),
    requestSerialize: value => toBuffer(request().encode(value)),
    requestDeserialize: bytes => request().decode(bytes),
    responseSerialize: value => toBuffer(response().encode(value)),
    responseDeserialize: bytes => response().decode(bytes),
  };
}

export const ADS_SERVICE_NAME = 'envoy.service.discovery.v3.AggregatedDiscoveryService';
export const CA_SERVICE_NAME = 'istio.v1.auth.IstioCertificateService';

/**
 * ADS: `/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources` (delta)
 * and `.../StreamAggregatedResources` (state of the world).
 */
export const AggregatedDiscoveryService: {
  readonly StreamAggregatedResources: GrpcMethodDefinition<
    discovery.DiscoveryRequestInit,
    discovery.DiscoveryRequest,
    discovery.DiscoveryResponseInit,
    discovery.DiscoveryResponse
  >;
  readonly DeltaAggregatedResources: GrpcMethodDefinition<
    discovery.DeltaDiscoveryRequestInit,
    discovery.DeltaDiscoveryRequest,
    discovery.DeltaDiscoveryResponseInit,
    discovery.DeltaDiscoveryResponse
  >;
} = {
  StreamAggregatedResources: method(
    ADS_SERVICE_NAME,
    'StreamAggregatedResources',
    { request: true, response: true },
    () => codecFor('envoy.service.discovery.v3.DiscoveryRequest'),
    () => codecFor('envoy.service.discovery.v3.DiscoveryResponse'),
  ),
  DeltaAggregatedResources: method(
    ADS_SERVICE_NAME,
    'DeltaAggregatedResources',
    { request: true, response: true },
    () => codecFor('envoy.service.discovery.v3.DeltaDiscoveryRequest'),
    () => codecFor('envoy.service.discovery.v3.DeltaDiscoveryResponse'),
  ),
};

/** Istio CA: `/istio.v1.auth.IstioCertificateService/CreateCertificate` (unary). */
export const IstioCertificateService: {
  readonly CreateCertificate: GrpcMethodDefinition<
    ca.IstioCertificateRequestInit,
    ca.IstioCertificateRequest,
    ca.IstioCertificateResponseInit,
    ca.IstioCertificateResponse
  >;
} = {
  CreateCertificate: method(
    CA_SERVICE_NAME,
    'CreateCertificate',
    { request: false, response: false },
    () => codecFor('istio.v1.auth.IstioCertificateRequest'),
    () => codecFor('istio.v1.auth.IstioCertificateResponse'),
  ),
};
