// @ambient-mesh/xds: an ADS server (delta and SotW) and a reconnecting client over grpc-js.

// Resource types.
export { ResourceTypeRegistry, resourceType } from './resource-types.ts';
export type { ResourceType } from './resource-types.ts';

// NACKs.
export { NACK_CODE, nackMessage, isNack } from './nack.ts';
export type { Rejection } from './nack.ts';

// Time.
export { Backoff, systemTimers } from './timers.ts';
export type { BackoffOptions, Timers } from './timers.ts';

// Server.
export { AdsServer } from './server/ads-server.ts';
export type {
  AdsServerObserver,
  AdsServerOptions,
  AuthDecision,
  Authenticate,
  ConnectionInfo,
  GenerateFor,
  StreamAuthRequest,
} from './server/ads-server.ts';
export { DeltaStream } from './server/delta-stream.ts';
export type { DeltaSend } from './server/delta-stream.ts';
export { SotwStream, RESOURCE_WRAPPER_TYPE_URL } from './server/sotw-stream.ts';
export type { SotwSend } from './server/sotw-stream.ts';
export { PushQueue } from './server/push-queue.ts';
export { MemoryResourceSource } from './server/memory-source.ts';
export type { PushBatch, PushQueueOptions, ResourceChanges } from './server/push-queue.ts';
export type {
  Generate,
  GeneratedResponse,
  ResourceSource,
  StreamEvents,
  StreamServices,
  VersionedResource,
} from './server/resource-source.ts';
export type { AdsProtocol, ConnectionSyncStatus, SyncState, TypeSyncStatus } from './server/sync-status.ts';

// Client.
export { XdsClient } from './client/xds-client.ts';
export type {
  KnownResources,
  ResponseRecord,
  XdsClientObserver,
  XdsClientOptions,
  XdsLogger,
} from './client/xds-client.ts';
export { typedHandler } from './client/handlers.ts';
export type {
  DecodedResource,
  IncomingResource,
  ResourceHandler,
  TypedHandlerOptions,
} from './client/handlers.ts';
export { deltaStreamFactory, sotwStreamFactory } from './client/transport.ts';
export type {
  AdsStream,
  CallMetadata,
  DeltaStream as DeltaClientStream,
  DeltaStreamFactory,
  SotwStream as SotwClientStream,
  SotwStreamFactory,
} from './client/transport.ts';
export {
  ControlPlaneChannel,
  DEFAULT_CHANNEL_SETTINGS,
  callMetadata,
  channelOptions,
  controlPlaneDeltaStreams,
  createGrpcClient,
} from './client/control-plane.ts';
export type {
  CallIdentity,
  ChannelSettings,
  ControlPlaneChannelOptions,
  GrpcTarget,
} from './client/control-plane.ts';

// Errors.
export { XdsError, XdsErrorCode } from './errors.ts';
