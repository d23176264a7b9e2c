/**
 * Root tier: ztunnel refuses a ZDS socket served by a process that is not the cni-agent. The
 * impostor is a real process running as `nobody` (uid 65534) listening on a SOCK_SEQPACKET
 * socket (python3's socket module); a server of this process (root) is accepted.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { SeqpacketServer } from '@ambient-mesh/netns';
import { afterEach, describe, expect, it } from 'vitest';
import { ZtunnelErrorCode } from '../errors.ts';
import { netnsZdsConnector } from './netns-connector.ts';

const NOBODY = 65_534;

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

function socketDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'zt-zds-peer-'));
  chmodSync(dir, 0o777);
  cleanups.push(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** `nobody` serving ZDS at `path`: reports `listening`, then `got <bytes>` from its one client. */
async function impostorServer(path: string): Promise<{ lines: AsyncIterator<string> }> {
  const script = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.bind(sys.argv[1]); s.listen(1)
print("listening", flush=True)
s.settimeout(20)
conn, _ = s.accept()
conn.settimeout(10)
try:
    data = conn.recv(1024)
    print("got %d" % len(data), flush=True)
except (ConnectionResetError, socket.timeout):
    print("got 0", flush=True)
`;
  const child = spawn('python3', ['-c', script, path], {
    uid: NOBODY,
    gid: NOBODY,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  cleanups.push(() => child.kill('SIGKILL'));
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const first = await lines.next();
  expect(first.value).toBe('listening');
  return { lines };
}

describe('ztunnel ZDS connector peers (root tier)', () => {
  it('refuses a socket served by another uid before sending it anything', async () => {
    const path = join(socketDir(), 'ztunnel.sock');
    const impostor = await impostorServer(path);
    let error: unknown;
    try {
      netnsZdsConnector.connect(path);
    } catch (err) {
      error = err;
    }
    expect(error).toMatchObject({ code: ZtunnelErrorCode.ZdsPeerRejected });
    expect((error as Error).message).toContain(`uid ${NOBODY}`);
    // The impostor saw its client leave without a hello.
    expect((await impostor.lines.next()).value).toBe('got 0');
  });

  it('takes a socket served by root', async () => {
    const path = join(socketDir(), 'ztunnel.sock');
    const server = SeqpacketServer.listen(path);
    cleanups.push(() => {
      server.close();
    });
    const accepted = once(server, 'connection');
    const connection = netnsZdsConnector.connect(path);
    cleanups.push(() => {
      connection.close();
    });
    const [socket] = (await accepted) as [{ close(): void }];
    socket.close();
  });
});
