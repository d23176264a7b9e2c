/**
 * Reading a ztunnel's `/config_dump` through the apiserver's pod port-forward, as Kiali does:
 * ztunnel's admin port 15000 listens on the pod's localhost, so the apiserver's pod proxy cannot
 * reach it. A loopback listener lives for one GET; its connection is a port-forward stream
 * (`@kubernetes/client-node`'s PortForward, which needs `create` on `pods/portforward`).
 */
import { request } from 'node:http';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { PortForward, type KubeConfig } from '@kubernetes/client-node';
import { Port } from '@ambient-mesh/mesh-api';
import type { ZtunnelDumpReader } from './ztunnel-config.ts';

export function portForwardDumpReader(kubeConfig: KubeConfig, timeoutMs: number): ZtunnelDumpReader {
  return async (namespace, pod) => {
    const forward = new PortForward(kubeConfig);
    const sockets = new Set<Socket>();
    const server = createServer(socket => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      forward.portForward(namespace, pod, [Port.admin], socket, null, socket).catch(() => socket.destroy());
    });
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', resolve);
      });
      const local = (server.address() as AddressInfo).port;
      return await new Promise<string>((resolve, reject) => {
        const req = request(
          { host: '127.0.0.1', port: local, method: 'GET', path: '/config_dump', timeout: timeoutMs },
          res => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              if (res.statusCode === 200) resolve(Buffer.concat(chunks).toString('utf8'));
              else reject(new Error(`HTTP ${res.statusCode ?? 0}`));
            });
            res.on('error', reject);
          },
        );
        req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
        req.on('error', reject);
        req.end();
      });
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>(resolve => {
        server.close(() => {
          resolve();
        });
      });
    }
  };
}
