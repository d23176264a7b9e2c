/**
 * Upstream connections: an undici `Pool` per endpoint whose `connect` opens an HBONE tunnel
 * (mTLS with the waypoint's identity to `<endpoint>:15008`, CONNECT `<endpoint ip>:<port>`;
 * the endpoint must present its SPIFFE ID from the metadata, else any ID of the trust domain).
 * undici speaks HTTP/1.1 inside the tunnel; the HBONE client pools the HTTP/2 connections under
 * it. `max_connections` bounds each pool.
 *
 * Endpoints outside the mesh are dialled directly: plain TCP, or TLS (`tlsConnect`) when their
 * cluster originates TLS.
 *
 * Clusters that ask for HTTP/2 get h2c (prior knowledge) inside the tunnel instead: one
 * `node:http2` session per endpoint, multiplexing its requests as streams. A session that got
 * GOAWAY or closed is dropped from the pool (its open streams finish; streams the peer refused
 * fail as resets) and the next request opens a new one.
 */
import { connect as h2connect, constants as h2constants } from 'node:http2';
import type {
  ClientHttp2Session,
  ClientHttp2Stream,
  IncomingHttpHeaders,
  OutgoingHttpHeaders,
} from 'node:http2';
import { connect as netConnect } from 'node:net';
import { connect as nodeTlsConnect } from 'node:tls';
import { Readable } from 'node:stream';
import type { Duplex } from 'node:stream';
import { Pool } from 'undici';
import type { Dispatcher } from 'undici';
import type { HboneClient, HboneIdentity } from '@ambient-mesh/hbone';
import { buildSecureContextOptions } from '@ambient-mesh/spiffe-certs';
import type { Endpoint, UpstreamTls } from '../config/types.ts';
import { immediatePair } from './stream-pair.ts';

export interface UpstreamOptions {
  readonly hbone: HboneClient;
  /** The waypoint's own identity, presented to every upstream; read per connection (rotation). */
  readonly identity: () => HboneIdentity;
  /** The mesh's trust domain: an endpoint without `istio.identity` may present any ID in it. */
  readonly trustDomain: string;
  /** Idle pooled HTTP/1.1 connections are closed after this long (default 30 s). */
  readonly keepAliveMs?: number;
}

export class EndpointIdentityMissingError extends Error {
  readonly code = 'WAYPOINT_ENDPOINT_IDENTITY_MISSING';
  constructor(endpoint: string) {
    super(
      `endpoint ${endpoint} has no SPIFFE identity (endpoint metadata istio.identity); the waypoint cannot verify it`,
    );
  }
}

/**
 * Opens the HBONE tunnel to an endpoint: a Duplex carrying the endpoint's plaintext. An endpoint
 * outside the mesh (`plaintext`: DNS and original-dst clusters) gets a plain TCP connection.
 */
export function tunnelTo(options: UpstreamOptions, endpoint: Endpoint): Promise<Duplex> {
  if (endpoint.plaintext === true)
    return endpoint.tls === undefined
      ? plainConnect(endpoint)
      : tlsConnect(endpoint, endpoint.tls, options.identity);
  const host = endpoint.hboneAddress.includes(':') ? `[${endpoint.hboneAddress}]` : endpoint.hboneAddress;
  const target = endpoint.address.includes(':')
    ? `[${endpoint.address}]:${endpoint.port}`
    : `${endpoint.address}:${endpoint.port}`;
  return options.hbone.connect({
    target,
    nextHop: `${host}:${endpoint.hbonePort}`,
    identity: options.identity(),
    // Upstream's waypoint accepts any identity of the trust domain; a known one is pinned.
    expectedIdentities: [endpoint.identity ?? `spiffe://${options.trustDomain}/*`],
  });
}

/** A plain TCP connection to `endpoint` (outside the mesh), resolved once connected. */
export function plainConnect(endpoint: Endpoint, timeoutMs = 10_000): Promise<Duplex> {
  return new Promise<Duplex>((resolve, reject) => {
    const socket = netConnect({ host: endpoint.address, port: endpoint.port });
    const timer = setTimeout(() => {
      socket.destroy(new Error(`connect to ${endpoint.address}:${endpoint.port} timed out`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', err => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/**
 * TLS origination failed (handshake, certificate verification or SAN match): Envoy's TLS error
 * on connect, a `UF` failure.
 */
export class UpstreamTlsError extends Error {
  readonly code = 'WAYPOINT_UPSTREAM_TLS_FAILED';
  /** Node's or OpenSSL's reason (`UNABLE_TO_VERIFY_LEAF_SIGNATURE`, `SAN_MISMATCH`, ...). */
  readonly reason: string;
  constructor(endpoint: Endpoint, reason: string, detail: string, options?: { cause?: unknown }) {
    super(
      `TLS to ${endpoint.address}:${endpoint.port} failed (${reason}): ${detail}; check the DestinationRule tls settings (credentialName CA, subjectAltNames, sni) against the server's certificate`,
      options,
    );
    this.reason = reason;
  }
}

/** Node's `subjectaltname` text (`DNS:a, URI:b, IP Address:c`) as typed entries. */
export function parseSubjectAltNames(text: string | undefined): { type: string; value: string }[] {
  if (text === undefined || text === '') return [];
  const out: { type: string; value: string }[] = [];
  for (const part of text.split(/,\s*/)) {
    const i = part.indexOf(':');
    if (i <= 0) continue;
    const label = part.slice(0, i);
    let value = part.slice(i + 1);
    if (value.startsWith('"') && value.endsWith('"')) {
      try {
        value = JSON.parse(value) as string;
      } catch {
        continue;
      }
    }
    const type =
      label === 'DNS'
        ? 'DNS'
        : label === 'URI'
          ? 'URI'
          : label === 'IP Address'
            ? 'IP_ADDRESS'
            : label === 'email'
              ? 'EMAIL'
              : label;
    out.push({ type, value });
  }
  return out;
}

/** Whether one of `matchers` matches one of the certificate's SANs (no matchers: any). */
export function subjectAltNamesMatch(
  matchers: UpstreamTls['subjectAltNames'],
  sans: readonly { type: string; value: string }[],
): boolean {
  if (matchers.length === 0) return true;
  return matchers.some(m =>
    sans.some(san => {
      if (m.type !== undefined && m.type !== san.type) return false;
      const match = m.match;
      if (match.kind === 'regex') return match.regex.test(san.value);
      const value = match.ignoreCase ? san.value.toLowerCase() : san.value;
      const want = match.ignoreCase ? match.value.toLowerCase() : match.value;
      switch (match.kind) {
        case 'exact':
          return value === want;
        case 'prefix':
          return value.startsWith(want);
        case 'suffix':
          return value.endsWith(want);
        case 'contains':
          return value.includes(want);
      }
    }),
  );
}

/**
 * A TLS connection to `endpoint` (outside the mesh) as the cluster's `UpstreamTlsContext` says:
 * SNI, the CA (or the system roots; none: unverified, as Envoy without a validation context),
 * the SAN matchers, the client certificate and ALPN. Like Envoy, the certificate's names are
 * not checked against the host unless SAN matchers ask. Resolved once the handshake and the
 * checks passed; a failure after the TCP connect is an `UpstreamTlsError`.
 */
export function tlsConnect(
  endpoint: Endpoint,
  tls: UpstreamTls,
  identity?: () => HboneIdentity,
  timeoutMs = 10_000,
): Promise<Duplex> {
  return new Promise<Duplex>((resolve, reject) => {
    const verify = tls.trustedCa !== undefined;
    let tcpConnected = false;
    // SDS `default`/`ROOTCA` (ISTIO_MUTUAL): the waypoint's own certificate and mesh roots.
    const mesh =
      tls.clientCertificate?.kind === 'workload' || tls.trustedCa?.kind === 'mesh'
        ? identity === undefined
          ? undefined
          : buildSecureContextOptions(identity())
        : undefined;
    if (
      mesh === undefined &&
      (tls.clientCertificate?.kind === 'workload' || tls.trustedCa?.kind === 'mesh')
    ) {
      reject(
        new UpstreamTlsError(
          endpoint,
          'NO_IDENTITY',
          'the waypoint has no workload identity for ISTIO_MUTUAL',
        ),
      );
      return;
    }
    const ca =
      tls.trustedCa?.kind === 'pem'
        ? tls.trustedCa.pem
        : tls.trustedCa?.kind === 'mesh'
          ? mesh?.ca
          : undefined;
    const client =
      tls.clientCertificate?.kind === 'inline'
        ? { cert: tls.clientCertificate.certificateChain, key: tls.clientCertificate.privateKey }
        : tls.clientCertificate?.kind === 'workload'
          ? { cert: mesh?.cert, key: mesh?.key }
          : {};
    const socket = nodeTlsConnect({
      host: endpoint.address,
      port: endpoint.port,
      ...(tls.sni !== undefined ? { servername: tls.sni } : {}),
      ...(ca !== undefined ? { ca } : {}),
      rejectUnauthorized: verify,
      checkServerIdentity: () => undefined,
      ...client,
      ...(tls.alpn.length > 0 ? { ALPNProtocols: [...tls.alpn] } : {}),
    });
    const fail = (err: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    const timer = setTimeout(() => {
      fail(new Error(`connect to ${endpoint.address}:${endpoint.port} timed out`));
    }, timeoutMs);
    socket.once('connect', () => {
      tcpConnected = true;
    });
    socket.once('error', (err: Error) => {
      const code = (err as { code?: string }).code ?? '';
      fail(
        tcpConnected
          ? new UpstreamTlsError(endpoint, code === '' ? 'TLS_ERROR' : code, err.message, { cause: err })
          : err,
      );
    });
    socket.once('secureConnect', () => {
      if (verify && tls.subjectAltNames.length > 0) {
        const sans = parseSubjectAltNames(socket.getPeerCertificate().subjectaltname);
        if (!subjectAltNamesMatch(tls.subjectAltNames, sans)) {
          fail(
            new UpstreamTlsError(
              endpoint,
              'SAN_MISMATCH',
              `the certificate's SANs (${sans.map(s => `${s.type}:${s.value}`).join(', ') || 'none'}) match no subjectAltNames`,
            ),
          );
          return;
        }
      }
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
  });
}

/** The pool key of an endpoint: next hop, authority and expected identity (or plain TCP / TLS). */
export function poolKey(endpoint: Endpoint): string {
  if (endpoint.plaintext === true && endpoint.tls !== undefined)
    return `tls|${endpoint.address}:${endpoint.port}|${endpoint.tls.key}`;
  if (endpoint.plaintext === true) return `tcp|${endpoint.address}:${endpoint.port}`;
  return `${endpoint.hboneAddress}:${endpoint.hbonePort}|${endpoint.address}:${endpoint.port}|${endpoint.identity ?? ''}`;
}

/** A response from either protocol, in one shape for the proxy. */
export interface UpstreamResponse {
  readonly protocol: 'http1' | 'http2';
  readonly statusCode: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Readable;
  /** The response is its headers alone (HTTP/2 HEADERS with END_STREAM: gRPC trailers-only). */
  readonly endAfterHeaders: boolean;
  /** Calls `listener` with the response trailers (HTTP/2) before `body` ends. */
  onTrailers(listener: (trailers: Record<string, string | string[]>) => void): void;
  /** Drops the rest of the response (before a retry). */
  discard(): Promise<void>;
  /** The HTTP/2 RST_STREAM code the upstream closed the stream with, if it reset it. */
  resetCode(): number | undefined;
  /**
   * After `body` ended: resolves with the RST_STREAM code when the upstream reset the stream
   * (Node ends an HTTP/2 body on RST_STREAM like a finished one, and closes the stream after).
   */
  endedByReset(): Promise<number | undefined>;
}

/** An HTTP/2 stream failure, with Node's code (`ERR_HTTP2_STREAM_ERROR`, ...). */
export class UpstreamH2Error extends Error {
  readonly code: string;
  constructor(message: string, code: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

function plainHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !name.startsWith(':')) out[name] = value;
  }
  return out;
}

/** Wraps an undici response. */
export function fromUndici(response: Dispatcher.ResponseData): UpstreamResponse {
  return {
    protocol: 'http1',
    statusCode: response.statusCode,
    headers: response.headers,
    body: response.body,
    endAfterHeaders: false,
    onTrailers: () => undefined,
    discard: () => response.body.dump().catch(() => undefined),
    resetCode: () => undefined,
    endedByReset: () => Promise.resolve(undefined),
  };
}

/**
 * Sends one request as a stream of `session`; resolves at the response headers. `signal`
 * cancels the stream (before or after the headers). A `Readable` body is streamed (piped as it
 * comes, its end is the request's END_STREAM) and may outlive the response headers
 * (bidirectional streaming); `onBodyStarted` runs when the stream takes it.
 */
export function h2Request(
  session: ClientHttp2Session,
  headers: OutgoingHttpHeaders,
  body: Buffer | Readable | null,
  signal: AbortSignal,
  onStreamClose: () => void = () => undefined,
  onBodyStarted: () => void = () => undefined,
): Promise<UpstreamResponse> {
  return new Promise<UpstreamResponse>((resolve, reject) => {
    let stream: ClientHttp2Stream;
    try {
      stream = session.request(headers, { endStream: body === null, signal });
      stream.once('close', onStreamClose);
    } catch (err) {
      onStreamClose();
      reject(
        new UpstreamH2Error(`HTTP/2 request failed: ${String(err)}`, 'ERR_HTTP2_REQUEST', { cause: err }),
      );
      return;
    }
    const trailerListeners: ((t: Record<string, string | string[]>) => void)[] = [];
    // Kept for listeners added later: headers, body and trailers that arrive in one read emit
    // `response` and `trailers` in the same tick, before the caller has seen the response.
    let received: Record<string, string | string[]> | undefined;
    stream.on('trailers', (trailers: IncomingHttpHeaders) => {
      received = plainHeaders(trailers);
      for (const l of trailerListeners) l(received);
    });
    const onEarlyError = (err: Error): void => {
      const code = (err as { code?: string }).code ?? 'ERR_HTTP2_STREAM_ERROR';
      reject(new UpstreamH2Error(`HTTP/2 stream failed: ${err.message}`, code, { cause: err }));
    };
    const onEarlyClose = (): void => {
      reject(
        new UpstreamH2Error(
          `HTTP/2 stream closed before the response (RST_STREAM code ${stream.rstCode})`,
          'ERR_HTTP2_STREAM_CLOSED',
        ),
      );
    };
    const resetCode = (): number | undefined =>
      stream.closed && stream.rstCode !== h2constants.NGHTTP2_NO_ERROR ? stream.rstCode : undefined;
    stream.once('error', onEarlyError);
    stream.once('close', onEarlyClose);
    stream.once('response', (responseHeaders: IncomingHttpHeaders, flags: number) => {
      // HEADERS with END_STREAM (`endAfterHeaders` is not yet set when this event runs).
      const headersOnly = stream.endAfterHeaders || (flags & h2constants.NGHTTP2_FLAG_END_STREAM) !== 0;
      stream.off('error', onEarlyError);
      stream.off('close', onEarlyClose);
      resolve({
        protocol: 'http2',
        statusCode: Number(responseHeaders[':status'] ?? 0),
        headers: plainHeaders(responseHeaders),
        // A headers-only response (gRPC's trailers-only errors): the stream may close without
        // an `end` event, which a pipeline would take for a premature close.
        body: headersOnly ? Readable.from([]) : stream,
        endAfterHeaders: headersOnly,
        onTrailers: listener => {
          if (received !== undefined) listener(received);
          else trailerListeners.push(listener);
        },
        discard: async () => {
          stream.close(h2constants.NGHTTP2_CANCEL);
          await Promise.resolve();
        },
        // Set when the peer sent RST_STREAM; a stream we closed ourselves has its own code.
        resetCode,
        // Trailers mean a complete response; otherwise the stream's close tells.
        endedByReset: () =>
          new Promise<number | undefined>(resolve => {
            if (received !== undefined || stream.closed)
              resolve(received !== undefined ? undefined : resetCode());
            else
              stream.once('close', () => {
                resolve(resetCode());
              });
          }),
      });
    });
    if (body instanceof Readable) {
      onBodyStarted();
      body.pipe(stream);
      // The client's own stream failed: the upstream stream is reset (the proxy also aborts
      // `signal` when the downstream closes).
      body.once('error', () => {
        stream.close(h2constants.NGHTTP2_CANCEL);
      });
    } else if (body !== null) stream.end(body);
  });
}

interface H2Entry {
  readonly session: Promise<ClientHttp2Session>;
  /** Set once the session must take no new streams (GOAWAY, error, close). */
  stale: boolean;
}

export class UpstreamPools {
  readonly #options: UpstreamOptions;
  readonly #pools = new Map<string, { pool: Pool; connections: number }>();
  readonly #h2 = new Map<string, H2Entry>();
  /** HTTP/2 sessions opened so far (for tests and stats). */
  h2SessionsOpened = 0;

  constructor(options: UpstreamOptions) {
    this.#options = options;
  }

  /** The pool of `endpoint`, created on first use with at most `connections` connections. */
  pool(endpoint: Endpoint, connections: number): Dispatcher & { readonly stats: Pool['stats'] } {
    const key = poolKey(endpoint);
    const existing = this.#pools.get(key);
    if (existing !== undefined && existing.connections === connections) return existing.pool;
    if (existing !== undefined) void existing.pool.close().catch(() => undefined);
    const origin = `http://${endpoint.address.includes(':') ? `[${endpoint.address}]` : endpoint.address}:${endpoint.port}`;
    const pool = new Pool(origin, {
      connections,
      pipelining: 1,
      keepAliveTimeout: this.#options.keepAliveMs ?? 30_000,
      connect: (_opts, callback) => {
        tunnelTo(this.#options, endpoint).then(
          stream => {
            callback(null, stream as never);
          },
          (err: unknown) => {
            callback(err instanceof Error ? err : new Error(String(err)), null);
          },
        );
      },
    });
    this.#pools.set(key, { pool, connections });
    return pool;
  }

  /**
   * The HTTP/2 session of `endpoint` (h2c prior knowledge inside an HBONE tunnel), opened on
   * first use and shared by all its requests until GOAWAY, an error or close.
   */
  h2Session(endpoint: Endpoint): Promise<ClientHttp2Session> {
    const key = poolKey(endpoint);
    const existing = this.#h2.get(key);
    if (existing !== undefined && !existing.stale) return existing.session;
    const entry: H2Entry = { session: this.#openH2(endpoint, () => entry), stale: false };
    this.#h2.set(key, entry);
    entry.session.catch(() => {
      entry.stale = true;
      if (this.#h2.get(key) === entry) this.#h2.delete(key);
    });
    return entry.session;
  }

  /**
   * A new HTTP/2 session to `endpoint`, owned by the caller (a cluster's pool, `h2-pool.ts`): not
   * shared, not closed by `retain` or `close`.
   */
  openH2Session(endpoint: Endpoint): Promise<ClientHttp2Session> {
    const own: H2Entry = { session: Promise.resolve(undefined as never), stale: false };
    return this.#openH2(endpoint, () => own);
  }

  async #openH2(endpoint: Endpoint, entry: () => H2Entry): Promise<ClientHttp2Session> {
    // A plain TCP endpoint is dialled the same way; the stream pair keeps one code path.
    const tunnel = await tunnelTo(this.#options, endpoint);
    // Node's HTTP/2 over a JS stream needs writes that complete at once (see stream-pair.ts).
    const [near, socket] = immediatePair();
    tunnel.pipe(near);
    near.pipe(tunnel);
    tunnel.once('close', () => near.destroy());
    near.once('close', () => tunnel.destroy());
    tunnel.on('error', () => near.destroy());
    const authority = endpoint.address.includes(':') ? `[${endpoint.address}]` : endpoint.address;
    const session = h2connect(`http://${authority}:${endpoint.port}`, {
      createConnection: () => socket,
      maxSessionMemory: 10,
    });
    this.h2SessionsOpened++;
    const key = poolKey(endpoint);
    const retire = (): void => {
      const e = entry();
      e.stale = true;
      if (this.#h2.get(key) === e) this.#h2.delete(key);
    };
    session.on('goaway', retire);
    session.on('error', retire);
    session.on('close', () => {
      retire();
      socket.destroy();
    });
    // Idle: no frames for the keep-alive time and no open stream.
    session.setTimeout(this.#options.keepAliveMs ?? 30_000, () => {
      if ((this.#h2Active.get(session) ?? 0) > 0) return;
      retire();
      session.close();
    });
    return session;
  }

  readonly #h2Active = new WeakMap<ClientHttp2Session, number>();

  /** One request over the endpoint's HTTP/2 session (opened or reused). */
  async h2Request(
    endpoint: Endpoint,
    headers: OutgoingHttpHeaders,
    body: Buffer | Readable | null,
    signal: AbortSignal,
    onBodyStarted?: () => void,
  ): Promise<UpstreamResponse> {
    const session = await this.h2Session(endpoint);
    signal.throwIfAborted();
    this.#h2Active.set(session, (this.#h2Active.get(session) ?? 0) + 1);
    let done = false;
    const finished = (): void => {
      if (done) return;
      done = true;
      this.#h2Active.set(session, (this.#h2Active.get(session) ?? 1) - 1);
    };
    return h2Request(session, headers, body, signal, finished, onBodyStarted);
  }

  /** Closes (gracefully) the pools of endpoints no longer in `keys`: called on config changes. */
  retain(keys: ReadonlySet<string>): void {
    for (const [key, entry] of this.#pools) {
      if (keys.has(key)) continue;
      this.#pools.delete(key);
      void entry.pool.close().catch(() => undefined);
    }
    for (const [key, entry] of this.#h2) {
      if (keys.has(key)) continue;
      this.#h2.delete(key);
      entry.stale = true;
      entry.session.then(
        s => {
          s.close();
        },
        () => undefined,
      );
    }
  }

  get size(): number {
    return this.#pools.size + this.#h2.size;
  }

  async close(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    const sessions = [...this.#h2.values()];
    this.#h2.clear();
    await Promise.all([
      ...pools.map(p => p.pool.destroy().catch(() => undefined)),
      ...sessions.map(e =>
        e.session.then(
          s => {
            s.destroy();
          },
          () => undefined,
        ),
      ),
    ]);
  }
}
