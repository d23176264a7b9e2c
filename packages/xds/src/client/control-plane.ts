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
  readonly logger?: Pick<Logger, 'warn'>;
  /** Called after each replacement (e.g. to count it). */
  readonly onReplaced?: (reason: string) => void;
  /** Makes the channel; tests may wrap it. Default `createGrpcClient`. */
  readonly create?: (target: GrpcTarget, settings: ChannelSettings) => grpc.Client;
}

/**
 * One logical channel to istiod that replaces its grpc-js client when a connection attempt
 * outlasts `connectTimeoutMs`. Closing the old client fails the calls queued on it
 * (UNAVAILABLE), so their owners (the xDS client's backoff, the CA's retries) try again on the
 * new one, which resolves the address afresh and dials a new connection, reaching a live
 * replica behind the Service instead of the vanished pod. Callers read `client` per call.
 */
export class ControlPlaneChannel {
  readonly #o: ControlPlaneChannelOptions;
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
    this.#settings = options.settings ?? DEFAULT_CHANNEL_SETTINGS;
    this.#timers = options.timers ?? unrefTimers;
    this.#client = this.#create();
    this.#watch(this.#client);
  }

  /** The client to start the next call on. */
  get client(): grpc.Client {
    return this.#client;
  }

  /** How many times the channel was replaced after a connect timeout. */
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
    return (this.#o.create ?? createGrpcClient)(this.#o.target, this.#settings);
  }

  /** Arms the connect timer whenever `client` enters CONNECTING; disarms it on any other state. */
  #watch(client: grpc.Client): void {
    if (this.#closed || client !== this.#client) return;
    const channel = client.getChannel();
    const state = channel.getConnectivityState(false);
    this.#timers.clearTimeout(this.#connectTimer);
    this.#connectTimer = undefined;
    if (state === grpc.connectivityState.SHUTDOWN) return;
    if (state === grpc.connectivityState.READY) this.#consecutive = 0;
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

  #replace(stuck: grpc.Client, timeoutMs: number): void {
    if (this.#closed || stuck !== this.#client) return;
    this.#replacements++;
    this.#consecutive++;
    this.#o.logger?.warn(
      { address: this.#o.target.address, connectTimeoutMs: timeoutMs },
      'no connection to istiod within the connect timeout; dialling again on a fresh channel',
    );
    this.#client = this.#create();
    this.#watch(this.#client);
    stuck.close();
    this.#o.onReplaced?.('connect-timeout');
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
