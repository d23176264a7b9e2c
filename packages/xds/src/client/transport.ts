/**
 * The streams a client runs on: the slice of a grpc-js `ClientDuplexStream` it uses, and
 * factories that open ADS calls on a grpc-js `Client` with per-call metadata.
 */
import type * as grpc from '@grpc/grpc-js';
import { AggregatedDiscoveryService, type discovery } from '@ambient-mesh/xds-types';

/** The slice of a grpc-js `ClientDuplexStream` the client uses. */
export interface AdsStream<Req, Res> {
  write(request: Req): boolean;
  on(event: 'data', listener: (response: Res) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: 'end' | 'close', listener: () => void): this;
  cancel(): void;
}

export type DeltaStream = AdsStream<discovery.DeltaDiscoveryRequestInit, discovery.DeltaDiscoveryResponse>;
export type SotwStream = AdsStream<discovery.DiscoveryRequestInit, discovery.DiscoveryResponse>;
export type DeltaStreamFactory = () => DeltaStream;
export type SotwStreamFactory = () => SotwStream;

/** Metadata of each new call (read again per call, e.g. a rotated bearer token). */
export type CallMetadata = () => grpc.Metadata;

/** Opens a `DeltaAggregatedResources` call per invocation. */
export function deltaStreamFactory(client: grpc.Client, metadata: CallMetadata): DeltaStreamFactory {
  const method = AggregatedDiscoveryService.DeltaAggregatedResources;
  return () =>
    client.makeBidiStreamRequest(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      metadata(),
    );
}

/** Opens a `StreamAggregatedResources` call per invocation. */
export function sotwStreamFactory(client: grpc.Client, metadata: CallMetadata): SotwStreamFactory {
  const method = AggregatedDiscoveryService.StreamAggregatedResources;
  return () =>
    client.makeBidiStreamRequest(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      metadata(),
    );
}
