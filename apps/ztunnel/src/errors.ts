/**
 * Typed errors of ztunnel. Codes are prefixed `ZTUNNEL_` and are stable: logs, metrics and tests
 * match on them. Messages say what to check.
 */
import { MeshError } from '@ambient-mesh/errors';
import type { MeshErrorOptions } from '@ambient-mesh/errors';

export const ZtunnelErrorCode = {
  ConfigInvalid: 'ZTUNNEL_CONFIG_INVALID',
  ResourceInvalid: 'ZTUNNEL_RESOURCE_INVALID',
  XdsStream: 'ZTUNNEL_XDS_STREAM',
  ZdsProtocol: 'ZTUNNEL_ZDS_PROTOCOL',
  ZdsPeerRejected: 'ZTUNNEL_ZDS_PEER_REJECTED',
  CaRequestFailed: 'ZTUNNEL_CA_REQUEST_FAILED',
  TokenUnreadable: 'ZTUNNEL_TOKEN_UNREADABLE',
  BindFailed: 'ZTUNNEL_BIND_FAILED',
  WorkloadUnavailable: 'ZTUNNEL_WORKLOAD_UNAVAILABLE',
} as const;
export type ZtunnelErrorCode = (typeof ZtunnelErrorCode)[keyof typeof ZtunnelErrorCode];

/**
 * One or more environment variables have values ztunnel cannot use: the runtime's `ConfigError`,
 * thrown with code `ZTUNNEL_CONFIG_INVALID` and one `problems` line per variable.
 */
export { ConfigError } from '@ambient-mesh/runtime';

/** A WDS resource that failed validation; `problems` carry field paths. */
export class ResourceInvalidError extends MeshError {
  readonly resourceName: string;
  readonly problems: readonly string[];

  constructor(resourceName: string, problems: readonly string[]) {
    super(
      ZtunnelErrorCode.ResourceInvalid,
      `resource ${JSON.stringify(resourceName)} rejected: ${problems.join(', ')}`,
    );
    this.resourceName = resourceName;
    this.problems = Object.freeze([...problems]);
  }
}

/** The delta xDS stream to istiod failed; the client reconnects with backoff. */
export class XdsStreamError extends MeshError {
  constructor(message: string, options?: MeshErrorOptions) {
    super(
      ZtunnelErrorCode.XdsStream,
      `${message}; check XDS_ADDRESS, the root certificate and that istiod is reachable`,
      options,
    );
  }
}

/** The CNI agent broke the ZDS protocol (docs/protocols.md#zds-handshake); ztunnel NACKs and drops the connection. */
export class ZdsProtocolError extends MeshError {
  constructor(message: string, options?: MeshErrorOptions) {
    super(ZtunnelErrorCode.ZdsProtocol, `ZDS protocol error: ${message}`, options);
  }
}

/** A CreateCertificate call failed or returned an unusable chain. */
/** The process serving the ZDS socket is not root (the cni-agent): ztunnel will not take pods from it. */
export class ZdsPeerRejectedError extends MeshError {
  constructor(path: string, peer: { readonly pid: number; readonly uid: number }) {
    super(
      ZtunnelErrorCode.ZdsPeerRejected,
      `the ZDS socket ${path} is served by pid ${peer.pid} running as uid ${peer.uid}, not by the cni-agent (root); check what created the socket`,
    );
  }
}

export class CaRequestError extends MeshError {
  constructor(message: string, options?: MeshErrorOptions) {
    super(
      ZtunnelErrorCode.CaRequestFailed,
      `certificate request failed: ${message}; check CA_ADDRESS, CA_TRUSTED_NODE_ACCOUNTS on istiod and the token`,
      options,
    );
  }
}

/** The projected service-account token could not be read. */
export class TokenUnreadableError extends MeshError {
  constructor(path: string, options?: MeshErrorOptions) {
    super(
      ZtunnelErrorCode.TokenUnreadable,
      `cannot read the istio-ca token at ${path}; check the projected volume 'istio-token' is mounted`,
      options,
    );
  }
}

/** A listener could not bind its address. */
export class BindError extends MeshError {
  constructor(what: string, address: string, options?: MeshErrorOptions) {
    super(
      ZtunnelErrorCode.BindFailed,
      `cannot bind the ${what} listener on ${address}; check no other process (or a second ztunnel) holds the port`,
      options,
    );
  }
}

/**
 * A connection reached a pod's proxy before its WDS workload or certificate was known, and the
 * state did not arrive within the bound; the connection is closed.
 */
export class WorkloadUnavailableError extends MeshError {
  constructor(message: string, options?: MeshErrorOptions) {
    super(ZtunnelErrorCode.WorkloadUnavailable, message, options);
  }
}
