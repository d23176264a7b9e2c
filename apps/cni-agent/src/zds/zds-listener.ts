/**
 * The ZDS transport: a SOCK_SEQPACKET listener (via `@ambient-mesh/netns`) that hands each accepted
 * ztunnel connection to a `ZdsServer`. Records are read into a 1024-byte buffer, so a longer one
 * arrives flagged `truncated` and is a protocol error.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { errorMessage } from '@ambient-mesh/errors';
import { SeqpacketServer } from '@ambient-mesh/netns';
import type { SeqpacketSocket } from '@ambient-mesh/netns';
import type { Logger } from '@ambient-mesh/runtime';
import { ZDS_MAX_MESSAGE } from './zds-server.ts';
import type { ZdsServer } from './zds-server.ts';

export interface ZdsListener {
  readonly path: string;
  close(): void;
}

/** Removes a stale socket file at `path`, listens, and feeds connections to `server`. */
export function listenZds(path: string, server: ZdsServer, logger: Logger): ZdsListener {
  mkdirSync(dirname(path), { recursive: true });
  const listener = SeqpacketServer.listen(path, { maxMessageSize: ZDS_MAX_MESSAGE, removeStale: true });
  listener.on('error', err => {
    logger.error({ err: errorMessage(err), path }, 'ZDS listener error');
  });
  listener.on('connection', (socket: SeqpacketSocket) => {
    const handle = server.accept({
      send: (data, fds) => {
        socket.send(data, fds);
      },
      close: () => {
        socket.close();
      },
    });
    socket.on('message', message => {
      handle.receive(message);
    });
    socket.on('error', err => {
      handle.closed(errorMessage(err));
    });
    socket.on('close', () => {
      handle.closed('socket closed by ztunnel');
    });
  });
  logger.info({ path }, 'ZDS listening for ztunnel');
  return {
    path,
    close: () => {
      listener.close();
    },
  };
}
