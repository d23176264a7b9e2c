/**
 * The production `ZdsConnector`: SEQPACKET + SCM_RIGHTS through `@ambient-mesh/netns`. The socket's
 * server must run as root (the cni-agent) or as ztunnel's own uid (SO_PEERCRED); another is
 * closed before ztunnel says anything, and the connect fails with `ZdsPeerRejectedError`.
 */
import { closeFd, netnsInode, SeqpacketSocket } from '@ambient-mesh/netns';
import { ZdsPeerRejectedError } from '../errors.ts';
import type { ZdsConnection, ZdsConnector } from './zds-client.ts';
import { ZDS_MAX_MESSAGE } from './zds-client.ts';

export const netnsZdsConnector: ZdsConnector = {
  connect(path: string): ZdsConnection {
    // One byte more than the limit, so an over-long record shows up as truncated.
    const socket = SeqpacketSocket.connect(path, { maxMessageSize: ZDS_MAX_MESSAGE + 1 });
    const peer = socket.peerCredentials();
    if (peer.uid !== 0 && peer.uid !== process.getuid?.()) {
      socket.close();
      throw new ZdsPeerRejectedError(path, peer);
    }
    return {
      send: data => {
        socket.send(data);
      },
      onMessage: listener => {
        socket.on('message', message => {
          listener({
            data: message.data,
            fds: message.fds,
            truncated: message.truncated || message.size > ZDS_MAX_MESSAGE,
          });
        });
      },
      onClose: listener => {
        socket.on('error', err => {
          listener(err);
        });
        socket.on('close', () => {
          listener();
        });
      },
      close: () => {
        socket.close();
      },
    };
  },
  netns(fd: number) {
    const inode = String(netnsInode(fd));
    let open = true;
    return {
      inode,
      fd,
      close: () => {
        if (!open) return;
        open = false;
        closeFd(fd);
      },
    };
  },
  closeFd(fd: number): void {
    try {
      closeFd(fd);
    } catch {
      // Already closed.
    }
  },
};
