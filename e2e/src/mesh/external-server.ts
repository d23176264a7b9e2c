/**
 * A server outside the mesh for egress scenarios: listens on one of the cluster's own addresses
 * (so pods reach it the way they would reach an external host) on an ephemeral port. `close()`
 * also ends the connections still open, so a test's `afterAll` never waits on keep-alives.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ListeningServer {
  readonly port: number;
  close(): Promise<void>;
}

/** Starts `server` (HTTP or HTTPS) on `host`, an ephemeral port. */
export async function listenOn(server: Server, host: string): Promise<ListeningServer> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>(resolve => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}
