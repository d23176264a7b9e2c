/**
 * Where a proxy reports its connections: the sink writes the metrics and the access log (each app
 * brings its own, with its own labels and fields). Only the connection manager calls it, so every
 * connection is reported through one path: `opened` once when it is established, `completed`
 * exactly once when it ended or was refused, `failed` for a connection given up before the proxy
 * knew enough to describe it.
 *
 * `C` is the app's description of one connection (for ztunnel: the parties for the traffic labels
 * and the access-log ends); the manager never looks inside it.
 */

/** Istio's `response_flags` for a connection refused before any byte flowed. */
export const ResponseFlag = {
  /** Denied by an authorization policy. */
  denied: 'DENY',
  /** The upstream could not be reached. */
  connectFailed: 'CONNECT',
} as const;
export type ResponseFlag = (typeof ResponseFlag)[keyof typeof ResponseFlag];

export type Direction = 'inbound' | 'outbound';

/** The two addresses of a connection, for a failure logged before it could be described. */
export interface ConnectionAddresses {
  readonly src: string;
  readonly dst: string;
  readonly direction: Direction;
}

/** How one connection ended, counted from the client application's side. */
export interface ConnectionOutcome {
  /** Request bytes: client → server. */
  readonly fromClient: number;
  /** Response bytes: server → client. */
  readonly toClient: number;
  readonly durationMs: number;
  /** Why it ended abnormally (a relay error, a policy change, a drain), or why it was refused. */
  readonly error?: string | undefined;
  /** Set when it was refused before it was established (no byte flowed, `opened` was not called). */
  readonly refused?: ResponseFlag | undefined;
}

export interface ConnectionSink<C> {
  /** The connection is established: both ends are up. Called at most once. */
  opened(connection: C): void;
  /** Called exactly once per connection: when it ended, or when it was refused. */
  completed(connection: C, outcome: ConnectionOutcome): void;
  /** A connection given up before it could be described (no state, no destination): logged only. */
  failed(addresses: ConnectionAddresses, error: string): void;
}
