/**
 * Reaching a pod's loopback-only port (ztunnel's admin 15000) through the apiserver's pod
 * port-forward: a local listener on 127.0.0.1 whose every connection is a port-forward stream
 * (`@kubernetes/client-node`'s PortForward), and one HTTP GET through it. The result is a
 * `PodHttpGet` capability as @ambient-mesh/install's readers take it.
 */
import { request } from 'node:http';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { PortForward, type KubeConfig } from '@kubernetes/client-node';
import type { PodHttpGet, ZtunnelPod } from '@ambient-mesh/install';

export interface PortForwardGetOptions {
  /** Milliseconds before one GET gives up (default 10 s). */
  readonly timeoutMs?: number;
}

/** An HTTP answer from a pod's port. */
export interface PodHttpAnswer {
  readonly status: number;
  readonly body: string;
}

/** Any HTTP request on a pod's port; undefined when the pod does not answer. */
export type PodHttpRequest = (
  pod: ZtunnelPod,
  port: number,
  method: string,
  path: string,
) => Promise<PodHttpAnswer | undefined>;

/** GETs through a port-forward; undefined when the pod does not answer or answers non-200. */
export function portForwardGetter(kubeConfig: KubeConfig, options: PortForwardGetOptions = {}): PodHttpGet {
  const request = portForwardRequester(kubeConfig, options);
  return async (pod, port, path) => {
    const answer = await request(pod, port, 'GET', path);
    return answer?.status === 200 ? answer.body : undefined;
  };
}

/** Requests through a port-forward: a local listener whose connections are forward streams. */
export function portForwardRequester(
  kubeConfig: KubeConfig,
  options: PortForwardGetOptions = {},
): PodHttpRequest {
  const timeoutMs = options.timeoutMs ?? 10_000;
  return async (pod, port, method, path) => {
    const forward = new PortForward(kubeConfig);
    const sockets = new Set<Socket>();
    const server = createServer(socket => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      forward
        .portForward(pod.namespace, pod.name, [port], socket, null, socket)
        .catch(() => socket.destroy());
    });
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', resolve);
      });
      const local = (server.address() as AddressInfo).port;
      return await new Promise<PodHttpAnswer | undefined>(resolve => {
        const req = request({ host: '127.0.0.1', port: local, method, path, timeout: timeoutMs }, res => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
          });
          res.on('error', () => {
            resolve(undefined);
          });
        });
        req.on('timeout', () => req.destroy());
        req.on('error', () => {
          resolve(undefined);
        });
        req.end();
      });
    } catch {
      return undefined;
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>(resolve =>
        server.close(() => {
          resolve();
        }),
      );
    }
  };
}

/** A long-lived local listener whose every connection is forwarded to a pod's port. */
export interface Forwarding {
  /** The local address and port listened on. */
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Opens a port-forward like `kubectl port-forward`: `address:localPort` (0: any) to the pod's port. */
export type PodForward = (
  pod: ZtunnelPod,
  port: number,
  local: { readonly address: string; readonly port: number },
) => Promise<Forwarding>;

export function portForwarder(kubeConfig: KubeConfig): PodForward {
  return async (pod, port, local) => {
    const forward = new PortForward(kubeConfig);
    const sockets = new Set<Socket>();
    const server = createServer(socket => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => socket.destroy());
      forward
        .portForward(pod.namespace, pod.name, [port], socket, null, socket)
        .catch(() => socket.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(local.port, local.address, resolve);
    });
    const bound = server.address() as AddressInfo;
    return {
      address: bound.address,
      port: bound.port,
      close: () =>
        new Promise<void>(resolve => {
          for (const s of sockets) s.destroy();
          server.close(() => {
            resolve();
          });
        }),
    };
  };
}
