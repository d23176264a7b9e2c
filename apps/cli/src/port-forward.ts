/**
 * Reaching a pod's loopback-only port (ztunnel's admin 15000) through the apiserver's pod
 * port-forward: a local listener on 127.0.0.1 whose every connection is a port-forward stream
 * (`@kubernetes/client-node`'s PortForward), and one HTTP GET through it. The result is a
 * `PodHttpGet` capability as @ambient-mesh/install's readers take it.
 */
import { request } from 'node:http';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { PortForward } from '@kubernetes/client-node';
import type { KubeClient } from '@ambient-mesh/kube';
import type { PodHttpGet } from '@ambient-mesh/install';

export interface PortForwardGetOptions {
  /** Milliseconds before one GET gives up (default 10 s). */
  readonly timeoutMs?: number;
}

/** GETs through a port-forward; undefined when the pod does not answer. */
export function portForwardGetter(client: KubeClient, options: PortForwardGetOptions = {}): PodHttpGet {
  const timeoutMs = options.timeoutMs ?? 10_000;
  return async (pod, port, path) => {
    const forward = new PortForward(client.config);
    const sockets = new Set<Socket>();
    const server = createServer(socket => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      forward.portForward(pod.namespace, pod.name, [port], socket, null, socket).catch(() => socket.destroy());
    });
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', resolve);
      });
      const local = (server.address() as AddressInfo).port;
      return await new Promise<string | undefined>(resolve => {
        const req = request({ host: '127.0.0.1', port: local, path, timeout: timeoutMs }, res => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => { resolve(res.statusCode === 200 ? Buffer.concat(chunks).toString('utf8') : undefined); },
          );
          res.on('error', () => { resolve(undefined); });
        });
        req.on('timeout', () => req.destroy());
        req.on('error', () => { resolve(undefined); });
        req.end();
      });
    } catch {
      return undefined;
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>(resolve => server.close(() => { resolve(); }));
    }
  };
}
