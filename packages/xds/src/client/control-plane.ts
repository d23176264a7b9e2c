/**
 * The gRPC channel to a control plane (istiod) that every data-plane client needs, written once:
 * `https://` targets use TLS with a given root (and an optional alternate name to verify),
 * `http://` targets are plaintext (tests and local development only); keepalive and a connect
 * timeout find a vanished peer; per-call metadata carries the bearer token (re-read on every
 * call, so a rotated token is picked up), `clusterid` and extra headers.
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { unrefTimers, type Logger } from '@ambient-mesh/runtime';
import { XdsError, XdsErrorCode } from '../errors.ts';
import type { TimerHandle, Timers } from '../timers.ts';
import { deltaStreamFactory, type DeltaStreamFactory } from './transport.ts';

export interface GrpcTarget {
  /** `https://host:port` or `http://host:port`. */
  readonly address: string;
  /** PEM root for https targets. */
  readonly rootCaPem?: Buffer | undefined;
  /**
   * The file `rootCaPem` was read from. `ControlPlaneChannel` re-reads it when a connection
   * attempt fails and dials again with the new roots if they changed, so roots rotated in place
   * (a ConfigMap volume the kubelet refreshes, e.g. during a root migration) are used without a
   * restart.
   */
  readonly rootCaPath?: string | undefined;
  /** Alternate name to verify the server certificate against. */
  readonly altHostname?: string | undefined;
}

export interface CallIdentity {
  /** Path of the bearer token, re-read on every call; undefined sends none. */
  readonly tokenPath: string | undefined;
  readonly clusterId: string;
  /** Extra metadata on every call (`XDS_HEADER_*`, `CA_HEADER_*`). */
  readonly headers: Readonly<Record<string, string>>;
  /**
   * Makes the error an unreadable token file fails the call with (an app's own stable code);
   * default an `XdsError` `XDS_TOKEN_UNREADABLE`.
   */
  readonly tokenError?: (path: string, cause: unknown) => Error;
}

/**
 * How the channels to istiod detect a dead peer and come back. grpc-js has no TCP connect
 * timeout: a SYN to a pod that vanished (conntrack still pointing at it) waits for the kernel's
 * retries, over a minute. `ControlPlaneChannel` bounds that with `connectTimeoutMs`; HTTP/2
 * keepalive pings find an established connection whose peer went silent.
 */
export interface ChannelSettings {
  /** Longest a channel may stay CONNECTING before it is replaced by a fresh one. */
  readonly connectTimeoutMs: number;
  /** Interval of HTTP/2 keepalive pings, sent with or without calls in flight. */
  readonly keepaliveTimeMs: number;
  /** How long a ping may go unanswered before the connection counts as dead. */
  readonly keepaliveTimeoutMs: number;
  /** First and largest gap between grpc-js's own connection attempts. */
  readonly initialReconnectBackoffMs: number;
  readonly maxReconnectBackoffMs: number;
}

export const DEFAULT_CHANNEL_SETTINGS: ChannelSettings = Object.freeze({
  connectTimeoutMs: 5_000,
  keepaliveTimeMs: 10_000,
  keepaliveTimeoutMs: 5_000,
  initialReconnectBackoffMs: 500,
  maxReconnectBackoffMs: 5_000,
});

/** The grpc-js channel options for `settings` (one place for every control-plane channel). */
export function channelOptions(settings: ChannelSettings): grpc.ChannelOptions {
  return {
    'grpc.max_receive_message_length': 200 * 1024 * 1024,
    'grpc.keepalive_time_ms': settings.keepaliveTimeMs,
    'grpc.keepalive_timeout_ms': settings.keepaliveTimeoutMs,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.initial_reconnect_backoff_ms': settings.initialReconnectBackoffMs,
    'grpc.max_reconnect_backoff_ms': settings.maxReconnectBackoffMs,
    // A replaced channel must not pick up the stuck subchannel again from the shared pool.
    'grpc.use_local_subchannel_pool': 1,
  };
}

export function createGrpcClient(
  target: GrpcTarget,
  settings: ChannelSettings = DEFAULT_CHANNEL_SETTINGS,
): grpc.Client {
  const url = new URL(target.address);
  const port = url.port === '' ? (url.protocol === 'https:' ? '443' : '80') : url.port;
  const host = `${url.hostname}:${port}`;
  const options = channelOptions(settings);
  if (url.protocol === 'https:') {
    if (target.altHostname !== undefined) options['grpc.ssl_target_name_override'] = target.altHostname;
    return new grpc.Client(host, grpc.credentials.createSsl(target.rootCaPem ?? null), options);
  }
  return new grpc.Client(host, grpc.credentials.createInsecure(), options);
}

export interface ControlPlaneChannelOptions {
  readonly target: GrpcTarget;
  readonly settings?: ChannelSettings;
  readonly timers?: Timers;
  readonly logger?: Pick<Logger, 'warn' | 'info'>;
  /** Called after each replacement (e.g. to count it): `connect-timeout` or `roots-changed`. */
  readonly onReplaced?: (reason: string) => void;
  /** Makes the channel; tests may wrap it. Default `createGrpcClient`. */
  readonly create?: (target: GrpcTarget, settings: ChannelSettings) => grpc.Client;
  /** Reads `target.rootCaPath`; tests may replace it. Default `readFileSync`. */
  readonly readRoots?: (path: string) => Buffer;
}

/**
 * One logical channel to istiod that replaces its grpc-js client when a connection attempt
 * outlasts `connectTimeoutMs`. Closing the old client fails the calls queued on it
 * (UNAVAILABLE), so their owners (the xDS client's backoff, the CA's retries) try again on the
 * new one, which resolves the address afresh and dials a new connection, reaching a live
 * replica behind the Service instead of the vanished pod. Callers read `client` per call.
 *
 * With `target.rootCaPath`, a failed connection attempt also re-reads the roots; when they
 * changed (istiod's serving certificate moved to a new root that the file now holds), the client
 * is replaced by one built with them.
 */
export class ControlPlaneChannel {
  readonly #o: ControlPlaneChannelOptions;
  #target: GrpcTarget;
  readonly #settings: ChannelSettings;
  readonly #timers: Timers;
  #client: grpc.Client;
  #connectTimer: TimerHandle | undefined;
  #closed = false;
  #replacements = 0;
  /** Replacements since the last READY: each doubles the next timeout (up to 8x), so a slow but
   * live istiod (a loaded node, a long TLS handshake) is still reached. */
  #consecutive = 0;

  constructor(options: ControlPlaneChannelOptions) {
    this.#o = options;
    this.#target = options.target;
    this.#settings = options.settings ?? DEFAULT_CHANNEL_SETTINGS;
    this.#timers = options.timers ?? unrefTimers;
    this.#client = this.#create();
    this.#watch(this.#client);
  }

  /** The client to start the next call on. */
  get client(): grpc.Client {
    return this.#client;
  }

  /** How many times the channel was replaced (after a connect timeout, or for changed roots). */
  get replacements(): number {
    return this.#replacements;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#timers.clearTimeout(this.#connectTimer);
    this.#client.close();
  }

  #create(): grpc.Client {
    return (this.#o.create ?? createGrpcClient)(this.#target, this.#settings);
  }

  /**
   * Arms the connect timer whenever `client` enters CONNECTING, and while it is in
   * TRANSIENT_FAILURE with a roots file, a timer that re-reads the roots; disarms them on any
   * other state.
   */
  #watch(client: grpc.Client): void {
    if (this.#closed || client !== this.#client) return;
    const channel = client.getChannel();
    const state = channel.getConnectivityState(false);
    this.#timers.clearTimeout(this.#connectTimer);
    this.#connectTimer = undefined;
    if (state === grpc.connectivityState.SHUTDOWN) return;
    if (state === grpc.connectivityState.READY) this.#consecutive = 0;
    if (state === grpc.connectivityState.TRANSIENT_FAILURE && this.#target.rootCaPath !== undefined) {
      if (this.#rootsChanged()) {
        this.#swap(client, 'roots-changed');
        return;
      }
      this.#checkRootsLater(client);
    }
    if (state === grpc.connectivityState.CONNECTING) {
      const timeoutMs = this.#settings.connectTimeoutMs * 2 ** Math.min(this.#consecutive, 3);
      this.#connectTimer = this.#timers.setTimeout(() => {
        this.#replace(client, timeoutMs);
      }, timeoutMs);
    }
    channel.watchConnectivityState(state, Infinity, () => {
      this.#watch(client);
    });
  }

  /** grpc-js stays in TRANSIENT_FAILURE while it retries: re-read the roots every longest backoff. */
  #checkRootsLater(client: grpc.Client): void {
    this.#connectTimer = this.#timers.setTimeout(() => {
      this.#connectTimer = undefined;
      if (this.#closed || client !== this.#client) return;
      const now = client.getChannel().getConnectivityState(false);
      // Another state: the connectivity watch has taken over.
      if (now !== grpc.connectivityState.TRANSIENT_FAILURE) return;
      if (this.#rootsChanged()) this.#swap(client, 'roots-changed');
      else this.#checkRootsLater(client);
    }, this.#settings.maxReconnectBackoffMs);
  }

  #replace(stuck: grpc.Client, timeoutMs: number): void {
    if (this.#closed || stuck !== this.#client) return;
    this.#consecutive++;
    this.#o.logger?.warn(
      { address: this.#target.address, connectTimeoutMs: timeoutMs },
      'no connection to istiod within the connect timeout; dialling again on a fresh channel',
    );
    this.#swap(stuck, 'connect-timeout');
  }

  /**
   * Re-reads `rootCaPath` (after a failed attempt); true when the roots differ from those the
   * current client was built with, which then become the target's. An unreadable file keeps them.
   */
  #rootsChanged(): boolean {
    const path = this.#target.rootCaPath;
    if (path === undefined || !this.#target.address.startsWith('https:')) return false;
    let fresh: Buffer;
    try {
      fresh = (this.#o.readRoots ?? readFileSync)(path);
    } catch {
      return false;
    }
    const current = this.#target.rootCaPem;
    if (fresh.length === 0 || (current !== undefined && fresh.equals(current))) return false;
    this.#target = { ...this.#target, rootCaPem: fresh };
    this.#o.logger?.info(
      { address: this.#target.address, path },
      'the control-plane roots changed; dialling again with them',
    );
    return true;
  }

  #swap(stuck: grpc.Client, reason: string): void {
    if (this.#closed || stuck !== this.#client) return;
    this.#replacements++;
    this.#timers.clearTimeout(this.#connectTimer);
    this.#connectTimer = undefined;
    this.#client = this.#create();
    this.#watch(this.#client);
    stuck.close();
    this.#o.onReplaced?.(reason);
  }
}

function defaultTokenError(path: string, cause: unknown): Error {
  return new XdsError(
    XdsErrorCode.TokenUnreadable,
    `cannot read the control-plane token at ${path}; check the projected service-account token volume is mounted`,
    { cause },
  );
}

/**
 * Builds the metadata of one call; throws what `identity.tokenError` makes (default
 * `XDS_TOKEN_UNREADABLE`) if the token file cannot be read.
 */
export function callMetadata(identity: CallIdentity): grpc.Metadata {
  const metadata = new grpc.Metadata();
  if (identity.tokenPath !== undefined) {
    let token: string;
    try {
      token = readFileSync(identity.tokenPath, 'utf8').trim();
    } catch (err) {
      throw (identity.tokenError ?? defaultTokenError)(identity.tokenPath, err);
    }
    metadata.set('authorization', `Bearer ${token}`);
  }
  metadata.set('clusterid', identity.clusterId);
  for (const [name, value] of Object.entries(identity.headers)) metadata.set(name, value);
  return metadata;
}

/**
 * Opens a `DeltaAggregatedResources` stream per call of the returned factory, with fresh
 * `callMetadata(identity)`; on a `ControlPlaneChannel`, each stream on its current client.
 */
export function controlPlaneDeltaStreams(
  client: grpc.Client | ControlPlaneChannel,
  identity: CallIdentity,
): DeltaStreamFactory {
  if (!(client instanceof ControlPlaneChannel))
    return deltaStreamFactory(client, () => callMetadata(identity));
  // The channel may have been replaced since the last stream: open each one on the current client.
  return () => deltaStreamFactory(client.client, () => callMetadata(identity))();
}
