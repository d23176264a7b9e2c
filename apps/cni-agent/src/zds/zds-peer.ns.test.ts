/**
 * Root tier: the ZDS socket refuses a process that is not an allowed ztunnel. The impostor is a
 * real process running as `nobody` (uid 65534) that speaks SOCK_SEQPACKET (python3's socket
 * module); the agent's listener and server are the real ones. A well-behaved ztunnel (root, this
 * process) is served before, during and after.
 */
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SeqpacketSocket, closeFd } from '@ambient-mesh/netns';
import type { SeqpacketMessage } from '@ambient-mesh/netns';
import { captureLogs } from '@ambient-mesh/runtime/testing';
import { WorkloadRequestCodec, ZdsHelloCodec, zds } from '@ambient-mesh/xds-types';
import { afterEach, describe, expect, it } from 'vitest';
import { ZDS_SOCKET_MODE, checkZdsPeer, listenZds } from './zds-listener.ts';
import { ZdsServer } from './zds-server.ts';

const NOBODY = 65_534;

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

function setup(): { path: string; records: Record<string, unknown>[]; refused: { count: number } } {
  const dir = mkdtempSync(join(tmpdir(), 'cni-zds-peer-'));
  // The folder stays traversable, so only the socket's own mode and the peer check stand guard.
  chmodSync(dir, 0o755);
  cleanups.push(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const { logs, records } = captureLogs();
  const server = new ZdsServer({
    workloads: { uids: () => [], lookup: () => undefined },
    logger: logs.for('zds'),
    closeFd,
  });
  cleanups.push(() => {
    server.close();
  });
  const path = join(dir, 'ztunnel.sock');
  const refused = { count: 0 };
  const listener = listenZds(path, server, logs.for('zds'), {
    allowedUids: [0],
    onRefused: () => {
      refused.count++;
    },
  });
  cleanups.push(() => {
    listener.close();
  });
  return { path, records, refused };
}

/**
 * Runs as `nobody`: connects to `path`, sends a ZDS hello, and prints what happened: `EACCES` when
 * the connect is refused by the file mode, else `closed <n>` with the bytes received before the
 * agent closed the connection (or `open` if it stayed open for 10 s).
 */
function impostor(path: string, hello: Buffer): Promise<string> {
  const script = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
try:
    s.connect(sys.argv[1])
except PermissionError:
    print("EACCES"); sys.exit(0)
try:
    s.send(bytes.fromhex(sys.argv[2]))
except OSError:
    pass
s.settimeout(10)
total = 0
try:
    while True:
        data = s.recv(1024)
        if not data:
            break
        total += len(data)
    print("closed %d" % total)
except ConnectionResetError:
    # Closed by the agent with our hello unread.
    print("closed %d" % total)
except socket.timeout:
    print("open")
`;
  return new Promise((resolve, reject) => {
    execFile(
      'python3',
      ['-c', script, path, hello.toString('hex')],
      { uid: NOBODY, gid: NOBODY, timeout: 30_000 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`impostor failed: ${err.message} ${stderr}`));
        else resolve(stdout.trim());
      },
    );
  });
}

/** The ztunnel stand-in (root, this process): hello, then the snapshot's SnapshotSent. */
async function ztunnelIsServed(path: string): Promise<boolean> {
  const socket = SeqpacketSocket.connect(path, { maxMessageSize: 1024 });
  cleanups.push(() => {
    socket.close();
  });
  const first = new Promise<SeqpacketMessage | undefined>(resolve => {
    const timer = setTimeout(() => {
      resolve(undefined);
    }, 10_000);
    socket.once('message', m => {
      clearTimeout(timer);
      resolve(m);
    });
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(undefined);
    });
  });
  socket.send(ZdsHelloCodec.encode({ version: zds.Version.V1 }));
  const message = await first;
  socket.close();
  return message !== undefined && WorkloadRequestCodec.decode(message.data).payload === 'snapshotSent';
}

describe('ZDS socket peers (root tier)', () => {
  it('is a socket only its owner may open (mode 0600)', async () => {
    const { path, refused } = setup();
    expect(statSync(path).mode & 0o777).toBe(ZDS_SOCKET_MODE);
    expect(await impostor(path, Buffer.from(ZdsHelloCodec.encode({ version: zds.Version.V1 })))).toBe(
      'EACCES',
    );
    expect(refused.count).toBe(0);
    expect(await ztunnelIsServed(path)).toBe(true);
  });

  it('refuses, logs and closes a peer of another uid even when the file mode lets it in', async () => {
    const { path, records, refused } = setup();
    // A misconfigured mode (say, a host tool recreated the file): the peer check still holds.
    chmodSync(path, 0o666);
    const good = ztunnelIsServed(path);
    const outcome = await impostor(path, Buffer.from(ZdsHelloCodec.encode({ version: zds.Version.V1 })));
    // Closed before anything was sent to it: no snapshot, no netns fd.
    expect(outcome).toBe('closed 0');
    expect(refused.count).toBe(1);
    const warning = records.find(r => String(r.msg).includes('not an allowed ztunnel'));
    expect(warning).toMatchObject({ level: 'warn', uid: NOBODY, gid: NOBODY });
    expect(typeof warning?.pid).toBe('number');
    expect(await good).toBe(true);
    expect(await ztunnelIsServed(path)).toBe(true);
  });
});

describe('checkZdsPeer', () => {
  it('allows the listed uids and names the setting otherwise', () => {
    expect(checkZdsPeer(0, new Set([0]))).toEqual({ kind: 'allow' });
    const refused = checkZdsPeer(1000, new Set([0, 1337]));
    expect(refused).toMatchObject({ kind: 'refuse' });
    expect(refused.kind === 'refuse' ? refused.reason : '').toContain('ZDS_ALLOWED_UIDS');
  });
});
