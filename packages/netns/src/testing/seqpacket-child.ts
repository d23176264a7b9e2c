/**
 * Child process for the SEQPACKET tests. Modes:
 * - `throw <path>`: connect to <path>; the 'message' listener throws. Prints `surfaced:<msg>` from
 *   the uncaughtException handler, which proves the exception was not swallowed.
 * - `listen <path> <host>`: connect to <path>; the first message carries a netns fd. Open a TCP
 *   listener on <host>:0 in that namespace, report `{inode, address, port}`, accept one
 *   connection, greet it, and exit.
 */
import net from 'node:net';
import { closeFd, netnsInode } from '../netns-handle.ts';
import { createTcpListener } from '../netns-sockets.ts';
import { SeqpacketSocket } from '../seqpacket.ts';
import { getLocalAddress } from '../socket-options.ts';

const [mode, path, host] = process.argv.slice(2);
if (path === undefined) throw new Error('usage: seqpacket-child.ts throw|listen <path> [host]');
const socket = SeqpacketSocket.connect(path);

if (mode === 'throw') {
  process.on('uncaughtException', (err: Error) => {
    process.stdout.write(`surfaced:${err.message}\n`);
    socket.close();
    process.exit(0);
  });
  socket.on('message', () => {
    throw new Error('handler failed');
  });
  socket.send(Buffer.from('ready'));
} else {
  socket.on('message', ({ fds }) => {
    const nsFd = fds[0];
    if (nsFd === undefined || host === undefined) {
      socket.send(Buffer.from(JSON.stringify({ error: 'no fd' })));
      socket.close();
      return;
    }
    const fd = createTcpListener(nsFd, { host, port: 0 });
    const inode = netnsInode(nsFd);
    closeFd(nsFd);
    const server = net.createServer(conn => {
      conn.end('hello-from-child', () => {
        server.close();
        socket.close();
      });
    });
    server.listen({ fd }, () => {
      const local = getLocalAddress(fd);
      socket.send(Buffer.from(JSON.stringify({ inode, address: local?.address, port: local?.port })));
    });
  });
  socket.send(Buffer.from('ready'));
}
