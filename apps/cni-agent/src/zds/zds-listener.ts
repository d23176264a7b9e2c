/**
 * The ZDS transport: a SOCK_SEQPACKET listener (via `@ambient-mesh/netns`) that hands each accepted
 * ztunnel connection to a `ZdsServer`. Records are read into a 1024-byte buffer, so a longer one
 * arrives flagged `truncated` and is a protocol error.
 *
 * Whoever gets this socket receives every enrolled pod's network namespace, so two locks guard it:
 * the socket file is the owner's only (mode 0600), and each connection's peer process, as the
 * kernel recorded it (SO_PEERCRED), must run as an allowed uid; another is refused, logged and
 * closed before it is told anything.
 */
import { chmodSync, mkdirSync } from 'node:fs';
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

/** Mode of the ZDS socket file: only its owner (root, like ztunnel) may connect. */
export const ZDS_SOCKET_MODE = 0o600;

export interface ZdsListenOptions {
  /** User ids whose processes may connect (besides this process's own); default root only. */
  readonly allowedUids?: readonly number[];
  /** Told about each refused peer (metrics). */
  readonly onRefused?: () => void;
}

export type PeerVerdict = { readonly kind: 'allow' } | { readonly kind: 'refuse'; readonly reason: string };

/** Whether a peer running as `uid` may speak ZDS, given the allowed uids and our own. */
export function checkZdsPeer(uid: number, allowed: ReadonlySet<number>): PeerVerdict {
  return allowed.has(uid)
    ? { kind: 'allow' }
    : {
        kind: 'refuse',
        reason: `uid ${uid} is not allowed to connect as ztunnel (allowed: ${[...allowed].join(', ')}; set ZDS_ALLOWED_UIDS)`,
      };
}

/** Removes a stale socket file at `path`, listens, and feeds connections to `server`. */
export function listenZds(
  path: string,
  server: ZdsServer,
  logger: Logger,
  options: ZdsListenOptions = {},
): ZdsListener {
  mkdirSync(dirname(path), { recursive: true });
  const listener = SeqpacketServer.listen(path, { maxMessageSize: ZDS_MAX_MESSAGE, removeStale: true });
  // Between bind and chmod the file has the umask's mode; the peer check below covers that window.
  chmodSync(path, ZDS_SOCKET_MODE);
  const allowed = new Set([...(options.allowedUids ?? [0]), process.getuid?.() ?? 0]);
  listener.on('error', err => {
    logger.error({ err: errorMessage(err), path }, 'ZDS listener error');
  });
  listener.on('connection', (socket: SeqpacketSocket) => {
    let verdict: PeerVerdict;
    let peer: { pid: number; uid: number; gid: number } | undefined;
    try {
      peer = socket.peerCredentials();
      verdict = checkZdsPeer(peer.uid, allowed);
    } catch (err) {
      verdict = { kind: 'refuse', reason: `peer credentials unavailable: ${errorMessage(err)}` };
    }
    if (verdict.kind === 'refuse') {
      logger.warn(
        {
          path,
          ...(peer === undefined ? {} : { pid: peer.pid, uid: peer.uid, gid: peer.gid }),
          reason: verdict.reason,
        },
        'refused a ZDS connection from a process that is not an allowed ztunnel',
      );
      options.onRefused?.();
      socket.close();
      return;
    }
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
