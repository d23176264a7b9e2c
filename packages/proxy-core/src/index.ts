// Connection manager
export { ConnectionManager, idleClosure } from './connection-manager.ts';
export type {
  AdoptedUpstream,
  ConnectionManagerOptions,
  DrainOptions,
  DrainOutcome,
  Established,
  RelayStreams,
} from './connection-manager.ts';
export { ResponseFlag } from './connection-sink.ts';
export type { ConnectionAddresses, ConnectionOutcome, ConnectionSink, Direction } from './connection-sink.ts';
export { policyChangeClosure, policyRejection } from './policy-check.ts';
export type { PolicyCheck, PolicyVerdict } from './policy-check.ts';

// Inbound HBONE
export { InboundHbone } from './inbound-hbone.ts';
export type {
  DialRequest,
  InboundClassification,
  InboundHboneOptions,
  InboundTarget,
  SecureContextProvider,
} from './inbound-hbone.ts';

// Errors
export { ClientGoneError, ProxyDrainingError } from './errors.ts';
