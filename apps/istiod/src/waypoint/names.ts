/**
 * Upstream istiod's resource names for a waypoint. One `inbound-vip` cluster (and route
 * configuration and filter chain) per Service port, as upstream names them:
 * `inbound-vip|<port>|<protocol>|<hostname>`, subsets `inbound-vip|<port>|<protocol>/<subset>|<hostname>`.
 */
import type { ServiceProtocol } from './resolve-route.ts';

export const MAIN_INTERNAL = 'main_internal';
export const CONNECT_TERMINATE = 'connect_terminate';
/** Envoy answers 500 for routes to it (a backendRef that did not resolve); it never exists. */
export const BACKEND_NOT_FOUND_CLUSTER = 'BackendNotFound';

/** `http` for HTTP and gRPC ports (both through the HTTP connection manager), else `tcp`. */
export function protocolSegment(protocol: ServiceProtocol): 'http' | 'tcp' {
  return protocol === 'tcp' ? 'tcp' : 'http';
}

export function inboundVipName(
  port: number,
  protocol: ServiceProtocol,
  hostname: string,
  subset?: string,
): string {
  const proto = protocolSegment(protocol);
  return `inbound-vip|${port}|${subset === undefined ? proto : `${proto}/${subset}`}|${hostname}`;
}

export function serviceHostname(namespace: string, name: string, domain: string): string {
  return `${name}.${namespace}.svc.${domain}`;
}
