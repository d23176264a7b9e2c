/** The printable addresses of an accepted socket, for access-log fields (`ip:port`, `unknown`). */
import type { Socket } from 'node:net';
import { formatSocketAddress } from '@ambient-mesh/hbone';

export function remoteAddress(socket: Socket): string {
  const { remoteAddress: ip, remotePort: port } = socket;
  return ip === undefined || port === undefined ? 'unknown' : formatSocketAddress(ip, port);
}
