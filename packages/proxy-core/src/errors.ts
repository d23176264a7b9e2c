/** Typed errors of `@ambient-mesh/proxy-core`. Codes are stable API and start with `PROXY_`. */
import { MeshError } from '@ambient-mesh/errors';

/** A connection was waiting (for state, for an identity) when the proxy began to drain. */
export class ProxyDrainingError extends MeshError {
  constructor() {
    super('PROXY_DRAINING', 'the proxy is draining');
  }
}

/** The client went away while its connection waited for the proxy's state. */
export class ClientGoneError extends MeshError {
  constructor() {
    super('PROXY_CLIENT_GONE', 'the client closed while waiting for the workload state');
  }
}
