/**
 * Typed errors of `@ambient-mesh/hbone`. Codes are stable API and all start with `HBONE_`.
 *
 * Everything that crosses an async or event boundary (a tunnel that fails to open, a pooled
 * connection that dies) reaches the caller as one of these, as a rejected promise or an `error`
 * event; nothing here is thrown into the event loop.
 */
import { MeshError } from '@ambient-mesh/errors';

/** A `:authority` value that is not `ip:port`, `[ipv6]:port` or `hostname:port`. */
export class HboneInvalidAuthorityError extends MeshError {
  constructor(detail: string) {
    super(
      'HBONE_INVALID_AUTHORITY',
      `invalid CONNECT authority: ${detail}; expected ip:port, [ipv6]:port or hostname:port (at most 255 characters)`,
    );
  }
}

/** A header value given to a builder that cannot be represented on the wire. */
export class HboneInvalidHeaderError extends MeshError {
  constructor(header: string, detail: string) {
    super('HBONE_INVALID_HEADER', `cannot build the ${header} header: ${detail}`);
  }
}

/** TLS material (certificate chain, key, roots, SPIFFE ID) that cannot be used for HBONE. */
export class HboneTlsConfigError extends MeshError {
  constructor(detail: string, cause?: unknown) {
    super('HBONE_TLS_CONFIG_INVALID', `invalid HBONE TLS identity: ${detail}`, { cause });
  }
}

/** The listener handed to the server is neither a `net.Server` nor a file descriptor. */
export class HboneListenerError extends MeshError {
  constructor(detail: string, cause?: unknown) {
    super('HBONE_LISTENER_INVALID', `cannot serve HBONE on this listener: ${detail}`, { cause });
  }
}

/** The TCP, TLS or HTTP/2 setup towards the next hop failed. */
export class HboneConnectFailedError extends MeshError {
  readonly nextHop: string;
  constructor(nextHop: string, detail: string, cause?: unknown) {
    super(
      'HBONE_CONNECT_FAILED',
      `HBONE connection to ${nextHop} failed: ${detail}; check that the next hop listens on its HBONE port and trusts our CA`,
      { cause },
    );
    this.nextHop = nextHop;
  }
}

/** The connection or the CONNECT did not complete within the configured time. */
export class HboneConnectTimeoutError extends MeshError {
  constructor(what: string, timeoutMs: number) {
    super(
      'HBONE_CONNECT_TIMEOUT',
      `${what} did not complete within ${timeoutMs} ms; check reachability of the next hop and network policy`,
    );
  }
}

/** The server presented no URI SAN matching any expected SPIFFE identity. */
export class HbonePeerIdentityError extends MeshError {
  readonly expected: readonly string[];
  readonly presented: readonly string[];
  constructor(expected: readonly string[], presented: readonly string[]) {
    super(
      'HBONE_PEER_IDENTITY_MISMATCH',
      `peer did not present the expected SAN: expected one of [${expected.join(', ')}], ` +
        `got [${presented.join(', ')}]; check the destination's service account and trust domain`,
    );
    this.expected = expected;
    this.presented = presented;
  }
}

/** The server refused a client's certificate (untrusted, expired, or outside our trust domain). */
export class HbonePeerRejectedError extends MeshError {
  constructor(detail: string, cause?: unknown) {
    super(
      'HBONE_PEER_REJECTED',
      `refused an HBONE client: ${detail}; check that the client's certificate is current and issued by our CA`,
      { cause },
    );
  }
}

/** The server answered the CONNECT with a status other than 200. */
export class HboneConnectRejectedError extends MeshError {
  readonly status: number;
  constructor(authority: string, status: number) {
    super(
      'HBONE_CONNECT_REJECTED',
      `CONNECT ${authority} was answered with status ${status}` +
        (status === 401
          ? ' (denied by authorization policy)'
          : status === 503
            ? ' (destination unavailable)'
            : status === 400
              ? ' (bad request: check the authority)'
              : ''),
    );
    this.status = status;
  }
}

/** A pooled connection stopped answering PINGs and was dropped. */
export class HboneKeepaliveTimeoutError extends MeshError {
  constructor(nextHop: string, timeoutMs: number) {
    super(
      'HBONE_KEEPALIVE_TIMEOUT',
      `HBONE connection to ${nextHop} did not answer a PING within ${timeoutMs} ms and was dropped`,
    );
  }
}

/** The server closed a session (GOAWAY) that carried no tunnel for its idle timeout. */
export class HboneIdleSessionError extends MeshError {
  constructor(peer: string, timeoutMs: number) {
    super(
      'HBONE_SESSION_IDLE',
      `HBONE connection from ${peer} carried no tunnel for ${timeoutMs} ms and was closed (GOAWAY)`,
    );
  }
}

/** The HTTP/2 session closed (GOAWAY, reset, TLS error) before or while the tunnel was in use. */
export class HboneSessionClosedError extends MeshError {
  constructor(nextHop: string, detail: string, cause?: unknown) {
    super('HBONE_SESSION_CLOSED', `HBONE connection to ${nextHop} closed: ${detail}`, { cause });
  }
}

/** The tunnel stream failed after it was opened (reset by the peer, upstream error). */
export class HboneStreamError extends MeshError {
  constructor(detail: string, cause?: unknown) {
    super('HBONE_STREAM_FAILED', `HBONE tunnel failed: ${detail}`, { cause });
  }
}

/**
 * The server did not process our CONNECT: it refused the stream (RST_STREAM REFUSED_STREAM) or
 * its GOAWAY named a last stream below ours (RFC 9113 §8.7). Safe to send again elsewhere;
 * `connect()` does so once on another connection before it surfaces this error.
 */
export class HboneStreamRefusedError extends MeshError {
  constructor(authority: string, nextHop: string) {
    super(
      'HBONE_STREAM_REFUSED',
      `CONNECT ${authority} was not processed by ${nextHop} (REFUSED_STREAM, or GOAWAY before it), also when sent again on a new connection; check whether the next hop is shutting down or overloaded`,
    );
  }
}

/**
 * The `id` of an identity is not among the URI SANs of its own leaf certificate. The id names the
 * identity in logs and checks, while the certificate is what the peer sees, so the two must agree.
 */
export class HboneIdentityMismatchError extends MeshError {
  readonly id: string;
  readonly certificateIds: readonly string[];
  constructor(id: string, certificateIds: readonly string[]) {
    super(
      'HBONE_IDENTITY_MISMATCH',
      `identity id ${id} is not a URI SAN of its own certificate (it names [${certificateIds.join(', ')}]); ` +
        'build the identity as { id, ...workloadCertificate.tlsCredentials } from one certificate',
    );
    this.id = id;
    this.certificateIds = certificateIds;
  }
}

/** A client's TCP or TLS handshake with the server failed (reset, hang-up, protocol error). */
export class HboneHandshakeError extends MeshError {
  constructor(detail: string, cause?: unknown) {
    super('HBONE_HANDSHAKE_FAILED', `HBONE handshake with a client failed: ${detail}`, { cause });
  }
}

/** An accepted HTTP/2 session failed (protocol error, reset, flood protection). */
export class HboneSessionError extends MeshError {
  readonly peer: string;
  constructor(peer: string, detail: string, cause?: unknown) {
    super('HBONE_SESSION_FAILED', `HBONE session with ${peer} failed: ${detail}`, { cause });
    this.peer = peer;
  }
}

/** The server's `onConnect` hook threw or rejected; the CONNECT was answered with 503. */
export class HboneConnectHookError extends MeshError {
  readonly authority: string;
  constructor(authority: string, detail: string, cause?: unknown) {
    super(
      'HBONE_CONNECT_HOOK_FAILED',
      `the onConnect hook failed for CONNECT ${authority}: ${detail}; answered 503`,
      { cause },
    );
    this.authority = authority;
  }
}

/** The upstream of an accepted CONNECT could not be dialled; the CONNECT was answered with 503. */
export class HboneUpstreamConnectError extends MeshError {
  readonly authority: string;
  constructor(authority: string, detail: string, cause?: unknown) {
    super(
      'HBONE_UPSTREAM_CONNECT_FAILED',
      `could not connect the upstream of CONNECT ${authority}: ${detail}; answered 503`,
      { cause },
    );
    this.authority = authority;
  }
}

/** The HTTP/2 server itself reported an error (not tied to one client). */
export class HboneServerFailureError extends MeshError {
  constructor(detail: string, cause?: unknown) {
    super('HBONE_SERVER_FAILED', `HBONE server error: ${detail}`, { cause });
  }
}

/** The pool or server was closed; no new tunnels are accepted. */
export class HboneClosedError extends MeshError {
  constructor(what: string) {
    super('HBONE_CLOSED', `${what} is closed; create a new one`);
  }
}

/**
 * Everything an HboneServer's `onError` receives: each failure is one of these typed errors, and
 * the error Node or OpenSSL reported, if any, is its `cause`.
 */
export type HboneServerError =
  | HboneConnectHookError
  | HboneHandshakeError
  | HboneIdleSessionError
  | HboneKeepaliveTimeoutError
  | HboneListenerError
  | HbonePeerRejectedError
  | HboneServerFailureError
  | HboneSessionError
  | HboneStreamError
  | HboneUpstreamConnectError;
