import { spawn } from 'node:child_process';
import type { ChildProcessByStdio } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { HboneClient } from './connect-client.ts';
import type { HboneIdentity } from './identity.ts';
import { identityPem } from './testing/certs.ts';
import { startTestServer } from './testing/harness.ts';
import { requireHbonePeer } from './testing/hbone-peer.ts';
import { readAll, startEchoServer, waitFor } from './testing/tcp.ts';

// Interop with an HBONE implementation we did not write: Go's crypto/tls + golang.org/x/net/http2.
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function writePem(identity: HboneIdentity): { cert: string; key: string; ca: string } {
  const dir = mkdtempSync(join(tmpdir(), 'hbone-interop-'));
  cleanups.push(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const pem = identityPem(identity);
  const files = { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem'), ca: join(dir, 'roots.pem') };
  writeFileSync(files.cert, pem.cert);
  writeFileSync(files.key, pem.key);
  writeFileSync(files.ca, pem.roots);
  return files;
}

interface PeerProcess {
  readonly lines: string[];
  readonly exited: Promise<number | null>;
}

function runPeer(args: string[]): PeerProcess {
  const child: ChildProcessByStdio<null, Readable, Readable> = spawn(requireHbonePeer(), args, {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  cleanups.push(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const lines: string[] = [];
  let buffered = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (text: string) => {
    buffered += text;
    const parts = buffered.split('\n');
    buffered = parts.pop()!;
    lines.push(...parts);
  });
  const stderr: string[] = [];
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text: string) => stderr.push(text));
  const exited = new Promise<number | null>(resolve => {
    child.on('exit', code => {
      if (code !== 0 && code !== null) lines.push(`stderr: ${stderr.join('')}`);
      resolve(code);
    });
  });
  return { lines, exited };
}

describe('HBONE interop with Go crypto/tls + x/net/http2', () => {
  it('a Go client tunnels through our server, with certificates from our CA', async () => {
    const hbone = await startTestServer();
    cleanups.push(() => hbone.close());
    const echo = await startEchoServer();
    cleanups.push(() => echo.close());
    const goIdentity = await hbone.pki.identity('go-client', { namespace: 'interop' });
    const files = writePem(goIdentity);
    const peer = runPeer([
      'client',
      '-connect',
      hbone.nextHop,
      '-authority',
      `127.0.0.1:${echo.port}`,
      '-cert',
      files.cert,
      '-key',
      files.key,
      '-ca',
      files.ca,
      '-expect',
      hbone.serverIdentity.id,
      '-message',
      'hello from Go',
    ]);
    expect(await peer.exited).toBe(0);
    expect(peer.lines).toEqual([
      `peer ${hbone.serverIdentity.id}`,
      'status 200',
      `response ${Buffer.from('hello from Go').toString('base64')}`,
    ]);
    expect(hbone.requests[0]?.peerIdentity).toBe(goIdentity.id);
  });

  it('a Go client sees our 401 and refuses a server with the wrong identity', async () => {
    const hbone = await startTestServer({ hook: () => ({ status: 401 }) });
    cleanups.push(() => hbone.close());
    const files = writePem(await hbone.pki.identity('go-client', { namespace: 'interop' }));
    const base = ['client', '-connect', hbone.nextHop, '-authority', '10.1.2.3:80'];
    const tls = ['-cert', files.cert, '-key', files.key, '-ca', files.ca];
    const denied = runPeer([...base, ...tls, '-expect', hbone.serverIdentity.id]);
    expect(await denied.exited).toBe(0);
    expect(denied.lines).toContain('status 401');
    const wrong = runPeer([...base, ...tls, '-expect', 'spiffe://cluster.local/ns/backend/sa/impostor']);
    expect(await wrong.exited).toBe(2);
    expect(wrong.lines.join('\n')).toMatch(/expected SAN/);
  });

  it('our client tunnels into a Go server, with certificates from our CA', async () => {
    const hbone = await startTestServer(); // only for its PKI and identities
    cleanups.push(() => hbone.close());
    const echo = await startEchoServer();
    cleanups.push(() => echo.close());
    const goIdentity = await hbone.pki.identity('go-server', { namespace: 'interop' });
    const files = writePem(goIdentity);
    const peer = runPeer([
      'server',
      '-listen',
      '127.0.0.1:0',
      '-cert',
      files.cert,
      '-key',
      files.key,
      '-ca',
      files.ca,
    ]);
    await waitFor(() => peer.lines.some(l => l.startsWith('listening ')), 10_000, 'Go server to listen');
    const address = peer.lines.find(l => l.startsWith('listening '))!.slice('listening '.length);
    const client = new HboneClient();
    cleanups.push(() => {
      client.destroy();
    });
    const tunnel = await client.connect({
      target: `127.0.0.1:${echo.port}`,
      nextHop: address,
      identity: hbone.clientIdentity,
      expectedIdentities: [goIdentity.id],
    });
    tunnel.end('hello from Node');
    expect((await readAll(tunnel)).toString()).toBe('hello from Node');
    await waitFor(() => peer.lines.length >= 3, 5000, 'Go server log');
    expect(peer.lines).toContain(`peer ${hbone.clientIdentity.id}`);
    expect(peer.lines).toContain(`connect 127.0.0.1:${echo.port}`);
  });
});
