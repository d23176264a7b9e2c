/**
 * The bundles the proxy is built from (upstream ztunnel's `ProxyInputs`):
 * - `ProxyInputs`: what the app hands the per-pod proxy factory, shared by every pod;
 * - `PodInputs`: what the outbound, inbound and inbound-passthrough parts of one pod's proxy
 *   share: the pod, its sockets, and the pod's connection manager.
 */
import type { AccessLog } from '../access-log.ts';
import type { Config } from '../config.ts';
import type { CertManager } from '../identity/cert-manager.ts';
import type { Logger } from '@ambient-mesh/runtime';
import type { ZtunnelMetrics } from '../metrics.ts';
import type { ProxyStateReader } from '../state/proxy-state.ts';
import type { Timers } from '@ambient-mesh/runtime';
import type { ConnectionManager } from '@ambient-mesh/proxy-core';
import type { ZtunnelConnection } from './connection-sink.ts';
import type { LocalWorkload } from './local-workload.ts';
import type { PodSockets } from './pod-sockets.ts';
import type { ConnectionContext } from './rbac.ts';

/** The hardening limits of one pod's proxy (from `Config`; docs/operations.md#ztunnel-limits). */
export interface ProxyLimits {
  readonly hboneHandshakeTimeoutMs: number;
  readonly upstreamConnectTimeoutMs: number;
  /** 0: never. */
  readonly connectionIdleTimeoutMs: number;
  /** 0: never. */
  readonly hboneIdleSessionTimeoutMs: number;
  /** 0: no limit. */
  readonly maxConnectionsPerSource: number;
}

export function proxyLimits(config: ProxyLimits): ProxyLimits {
  return {
    hboneHandshakeTimeoutMs: config.hboneHandshakeTimeoutMs,
    upstreamConnectTimeoutMs: config.upstreamConnectTimeoutMs,
    connectionIdleTimeoutMs: config.connectionIdleTimeoutMs,
    hboneIdleSessionTimeoutMs: config.hboneIdleSessionTimeoutMs,
    maxConnectionsPerSource: config.maxConnectionsPerSource,
  };
}

/** What the per-pod proxy factory gets from the app. */
export interface ProxyInputs {
  readonly config: Config;
  readonly state: ProxyStateReader;
  readonly certificates: CertManager;
  readonly metrics: ZtunnelMetrics;
  readonly accessLog: AccessLog;
  readonly logger: Logger;
  readonly timers: Timers;
}

/** The connection manager of one pod: ztunnel's connection records, L4 policy contexts. */
export type PodConnections = ConnectionManager<ZtunnelConnection, ConnectionContext>;

/** What each part of one pod's proxy works with. */
export interface PodInputs {
  /** The pod as ZDS described it; its WDS workload and certificate are awaited per connection. */
  readonly local: LocalWorkload;
  readonly state: ProxyStateReader;
  readonly sockets: PodSockets;
  readonly certificates: CertManager;
  readonly connections: PodConnections;
  /** Whether inbound delivery keeps the client's source IP (`ENABLE_ORIG_SRC` not false). */
  readonly spoofSource: boolean;
  readonly limits: ProxyLimits;
  readonly logger: Logger;
}
