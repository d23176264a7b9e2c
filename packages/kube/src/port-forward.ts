/**
 * Reaching a pod's port through the apiserver's pod port-forward (`pods/portforward`), as
 * `kubectl port-forward` does: the way to a port that listens only on the pod's localhost
 * (ztunnel's admin 15000, istiod's 15014), which the apiserver's pod proxy cannot reach.
 *
 * A `PortForwarder` opens a loopback listener whose every accepted connection becomes one
 * port-forward WebSocket stream (`@kubernetes/client-node`'s `PortForward`): `request` sends one
 * HTTP request through a listener that lives for that request; `listen` keeps one open until
 * `close()`. Failures are `KubeError`s: the apiserver refusing the forward is a `KubeApiError`
 * (403: RBAC lacks `create` on `pods/portforward`; 404: no such pod), no apiserver a
 * `KubeUnreachableError`, the pod side failing `KUBE_PORT_FORWARD`, no answer in time
 * `KUBE_PORT_FORWARD_TIMEOUT`, and a non-200 answer to `get` `KUBE_PORT_FORWARD_STATUS`.
 */
import { request as httpRequest } from 'node:http';
import type { RequestOptions } from 'node:https';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { KubeConfig, PortForward, type Cluster } from '@kubernetes/client-node';
import { errorMessage } from '@ambient-mesh/errors';
import { KubeApiError, KubeError, KubeErrorCode, KubeUnreachableError } from './errors.ts';
import type { KubeConfigHandle } from './kube-config.ts';

/** The pod a forward goes to. */
export interface PodRef {
  readonly namespace: string;
  readonly name: string;
}

/** An HTTP answer from a pod's port. */
export interface PodHttpAnswer {
  readonly status: number;
  readonly body: string;
}

export interface PodHttpRequestOptions {
  /** Default `GET`. */
  readonly method?: string;
  /** The request path with its query, e.g. `/config_dump` or `/logging?level=debug`. */
  readonly path: string;
  /** Milliseconds before the request gives up; default the forwarder's `timeoutMs`. */
  readonly timeoutMs?: number;
}

export interface PortForwarderOptions {
  /** Milliseconds before one request gives up (default 10 s). */
  readonly timeoutMs?: number;
}

/** The local side of a long-lived forward. */
export interface LocalAddress {
  /** The address to listen on, e.g. `127.0.0.1`. */
  readonly address: string;
  /** The port to listen on; 0 lets the OS pick one. */
  readonly port: number;
}

/** A long-lived local listener whose every connection is forwarded to a pod's port. */
export interface PortForwarding {
  /** The local address and port listened on. */
  readonly address: string;
  readonly port: number;
  /** Stops listening and ends every forwarded connection. */
  close(): Promise<void>;
}

/** The default of `PortForwarderOptions.timeoutMs`. */
export const PORT_FORWARD_TIMEOUT_MS = 10_000;

const where = (pod: PodRef, port: number): string => `${pod.namespace}/${pod.name}:${port}`;

/**
 * The typed error of a port-forward stream that did not open. client-node's WebSocket rejects with
 * an ErrorEvent (not an Error): `Unexpected server response: <status>` when the apiserver answers
 * instead of upgrading, the socket error when nothing answers. An Error is thrown before any
 * connection, by the kubeconfig's cluster or user.
 */
function streamError(pod: PodRef, port: number, event: unknown): KubeError {
  const operation = `port-forward ${where(pod, port)}`;
  if (!(event instanceof Error) && typeof event === 'object' && event !== null && 'target' in event) {
    const inner = (event as { error?: unknown }).error;
    return wsError(operation, pod, inner instanceof Error ? inner : event);
  }
  return new KubeError(
    KubeErrorCode.Config,
    `${operation}: cannot open a port-forward with this kubeconfig (${errorMessage(event)}); check its current cluster (server, CA, insecure-skip-tls-verify) and user`,
    { cause: event },
  );
}

function wsError(operation: string, pod: PodRef, err: unknown): KubeError {
  const message = errorMessage(err);
  const status = /Unexpected server response: (\d{3})/.exec(message)?.[1];
  if (status === undefined) return new KubeUnreachableError(operation, err);
  const code = Number(status);
  const reason =
    code === 403 ? 'Forbidden' : code === 404 ? 'NotFound' : code === 401 ? 'Unauthorized' : 'Unknown';
  const detail =
    code === 403
      ? `the identity may not create pods/portforward in namespace ${pod.namespace}`
      : code === 404
        ? `pod ${pod.namespace}/${pod.name} not found`
        : message;
  return new KubeApiError(code, reason, operation, detail, { cause: err });
}

/**
 * client-node's PortForward opens its WebSocket with only `getCurrentCluster` and
 * `applyToHTTPSOptions`, the two members of `KubeConfigHandle`: any handle serves through this
 * (port-forward.test.ts runs every case through a plain handle).
 */
class HandleKubeConfig extends KubeConfig {
  readonly #handle: KubeConfigHandle;

  constructor(handle: KubeConfigHandle) {
    super();
    this.#handle = handle;
  }

  override getCurrentCluster(): Cluster | null {
    const cluster = this.#handle.getCurrentCluster();
    return cluster === null ? null : { skipTLSVerify: false, ...cluster };
  }

  override applyToHTTPSOptions(options: Parameters<KubeConfig['applyToHTTPSOptions']>[0]): Promise<void> {
    return this.#handle.applyToHTTPSOptions(options as RequestOptions);
  }
}

/** Opens pod port-forwards through the apiserver of a kubeconfig. */
export class PortForwarder {
  readonly #forward: PortForward;
  readonly #timeoutMs: number;

  constructor(kubeConfig: KubeConfigHandle, options: PortForwarderOptions = {}) {
    this.#forward = new PortForward(
      kubeConfig instanceof KubeConfig ? kubeConfig : new HandleKubeConfig(kubeConfig),
    );
    this.#timeoutMs = options.timeoutMs ?? PORT_FORWARD_TIMEOUT_MS;
  }

  /**
   * One HTTP request on the pod's port. Resolves with any answer (any status); rejects with a
   * `KubeError` when no answer comes.
   */
  async request(pod: PodRef, port: number, options: PodHttpRequestOptions): Promise<PodHttpAnswer> {
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    const method = options.method ?? 'GET';
    let failure: KubeError | undefined;
    const listener = await this.#listen(pod, port, { address: '127.0.0.1', port: 0 }, err => {
      failure ??= err;
    });
    try {
      return await new Promise<PodHttpAnswer>((resolve, reject) => {
        const what = `${method} ${where(pod, port)}${options.path}`;
        const req = httpRequest(
          { host: listener.address, port: listener.port, method, path: options.path, agent: false },
          res => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
            });
            res.on('error', err => {
              reject(failure ?? podSideError(what, err));
            });
          },
        );
        req.setTimeout(timeoutMs, () => {
          req.destroy(
            new KubeError(
              KubeErrorCode.PortForwardTimeout,
              `${what}: no answer within ${timeoutMs} ms through the port-forward; check the pod is Running and its container serves port ${port}`,
            ),
          );
        });
        req.on('error', err => {
          reject(failure ?? (err instanceof KubeError ? err : podSideError(what, err)));
        });
        req.end();
      });
    } finally {
      await listener.close();
    }
  }

  /** GETs a path on the pod's port: the body of a 200 answer; any other status rejects. */
  async get(pod: PodRef, port: number, path: string, timeoutMs?: number): Promise<string> {
    const answer = await this.request(pod, port, { path, ...(timeoutMs === undefined ? {} : { timeoutMs }) });
    if (answer.status === 200) return answer.body;
    throw new KubeError(
      KubeErrorCode.PortForwardStatus,
      `GET ${where(pod, port)}${path}: HTTP ${answer.status}: ${answer.body.trim().slice(0, 200) || 'no body'}; check the logs of the pod's container serving port ${port}`,
    );
  }

  /** Listens on `local` (like `kubectl port-forward`) until `close()`; each connection is forwarded. */
  listen(pod: PodRef, port: number, local: LocalAddress): Promise<PortForwarding> {
    return this.#listen(pod, port, local, () => undefined);
  }

  async #listen(
    pod: PodRef,
    port: number,
    local: LocalAddress,
    onError: (err: KubeError) => void,
  ): Promise<PortForwarding> {
    const sockets = new Set<Socket>();
    const server = createServer(socket => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => socket.destroy());
      // The pod side's error channel: text such as "error forwarding port 15000 to pod ...".
      const errors = new Writable({
        write(chunk: Buffer, _enc, done) {
          const text = chunk.toString('utf8').trim();
          if (text !== '') {
            const err = new KubeError(
              KubeErrorCode.PortForward,
              `port-forward ${where(pod, port)}: ${text}; check the pod is Running and listens on port ${port}`,
            );
            onError(err);
            socket.destroy(err);
          }
          done();
        },
      });
      this.#forward.portForward(pod.namespace, pod.name, [port], socket, errors, socket).then(
        ws => {
          // client-node does not end the local side when the stream closes; the pod closed it.
          if (typeof ws !== 'function') ws.on('close', () => socket.end());
        },
        (err: unknown) => {
          const typed = streamError(pod, port, err);
          onError(typed);
          socket.destroy(typed);
        },
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(local.port, local.address, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const bound = server.address() as AddressInfo;
    let closing: Promise<void> | undefined;
    return {
      address: bound.address,
      port: bound.port,
      close: () =>
        (closing ??= new Promise<void>(resolve => {
          for (const s of sockets) s.destroy();
          server.close(() => {
            resolve();
          });
        })),
    };
  }
}

/** The connection through the forward broke before an answer came. */
function podSideError(what: string, err: unknown): KubeError {
  return new KubeError(
    KubeErrorCode.PortForward,
    `${what}: the port-forward closed before an answer (${errorMessage(err)}); check the pod is Running and listens on the port`,
    { cause: err },
  );
}
