// Small python3 tools run inside a network namespace (`ip netns exec`) for the resilience
// scenarios: a frame capture (AF_PACKET), a request loop, a hashing sink and source, a TCP
// echo probe. Each one is a child process with a bounded lifetime; traffic stays inside the
// cluster's network namespaces.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';

/** A python3 child in `netns`; `ready` resolves once it printed its `ready` line. */
interface PythonChild {
  readonly child: ChildProcessWithoutNullStreams;
  /** Resolves with the child's stdout when it exits (rejects on a non-zero exit or the deadline). */
  readonly done: Promise<string>;
}

function startPython(netns: string, script: string, args: readonly string[], timeoutMs: number): PythonChild {
  const child = spawn('ip', ['netns', 'exec', netns, 'python3', '-u', '-c', script, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (c: string) => (out += c));
  child.stderr.on('data', (c: string) => (err += c));
  child.stdin.on('error', () => undefined);
  const done = new Promise<string>((resolve, reject) => {
    const deadline = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`python3 in ${netns} did not finish within ${timeoutMs} ms: ${err.trim()}`));
    }, timeoutMs);
    child.once('error', e => {
      clearTimeout(deadline);
      reject(e);
    });
    child.once('exit', code => {
      clearTimeout(deadline);
      if (code === 0) resolve(out);
      else reject(new Error(`python3 in ${netns} exited ${String(code)}: ${err.trim() || out.trim()}`));
    });
  });
  // Callers that never await `done` must not see an unhandled rejection.
  done.catch(() => undefined);
  return { child, done };
}

async function untilReady(p: PythonChild, what: string): Promise<void> {
  let seen = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (c: string): void => {
      seen += c;
      if (seen.includes('ready\n')) {
        p.child.stdout.off('data', onData);
        resolve();
      }
    };
    p.child.stdout.on('data', onData);
    p.done.then(
      () => {
        reject(new Error(`${what} exited before it was ready`));
      },
      (e: unknown) => {
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

function lastJsonLine(out: string): unknown {
  const line = out
    .split('\n')
    .reverse()
    .find(l => l.startsWith('{'));
  if (line === undefined) throw new Error(`no JSON summary in ${JSON.stringify(out.slice(-500))}`);
  return JSON.parse(line);
}

export interface CaptureSummary {
  readonly frames: number;
  /** TCP segments to or from port 15008 (HBONE). */
  readonly hbone: number;
  /** Of those, segments whose payload starts like a TLS record (content type 20..23, version 3.x). */
  readonly tlsRecords: number;
  /** Frames that contain the plaintext marker anywhere. */
  readonly plaintext: number;
}

const CAPTURE = `
import json, select, socket, struct, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(3))
marker = sys.argv[1].encode()
out = {"frames": 0, "hbone": 0, "tlsRecords": 0, "plaintext": 0}
def count(p):
    out["frames"] += 1
    if marker in p: out["plaintext"] += 1
    if len(p) > 34 and p[12:14] == b"\\x08\\x00" and p[23] == 6:
        ihl = (p[14] & 15) * 4
        sp, dp = struct.unpack("!HH", p[14 + ihl:18 + ihl])
        if 15008 in (sp, dp):
            out["hbone"] += 1
            off = 14 + ihl + (p[14 + ihl + 12] >> 4) * 4
            if len(p) > off + 2 and 20 <= p[off] <= 23 and p[off + 1] == 3: out["tlsRecords"] += 1
print("ready")
while True:
    r, _, _ = select.select([s, sys.stdin], [], [])
    if s in r: count(s.recv(65535))
    if sys.stdin in r and not sys.stdin.readline(): break
# Stopped: the frames still queued in the socket (a busy machine may not have run us yet) count too.
s.setblocking(False)
while True:
    try: count(s.recv(65535))
    except BlockingIOError: break
print(json.dumps(out))
`;

/** Captures every frame of every interface of `netns` (python3 AF_PACKET) until `stop()`. */
export async function captureInNetns(
  netns: string,
  marker: string,
): Promise<{ stop(): Promise<CaptureSummary> }> {
  const p = startPython(netns, CAPTURE, [marker], 300_000);
  await untilReady(p, 'packet capture');
  return {
    stop: async () => {
      p.child.stdin.end();
      return lastJsonLine(await p.done) as CaptureSummary;
    },
  };
}

export interface LoopSummary {
  /** New connections (one HTTP GET each) that got a 200. */
  readonly ok: number;
  readonly failed: number;
  /** Successes in a row at the end of the loop. */
  readonly trailingOk: number;
  /** Round trips on one long-lived TCP connection (when an echo port was given). */
  readonly longOk: number;
  readonly longFailed: number;
  /** The first few failure reasons. */
  readonly errors: readonly string[];
}

const LOOP = `
import json, select, socket, sys, time
host, port, interval = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) / 1000
echo_port = int(sys.argv[4])
out = {"ok": 0, "failed": 0, "trailingOk": 0, "longOk": 0, "longFailed": 0, "errors": []}
def note(e):
    if len(out["errors"]) < 10: out["errors"].append(e)
def get():
    c = socket.create_connection((host, port), timeout=3)
    try:
        c.settimeout(3)
        c.sendall(("GET / HTTP/1.1\\r\\nHost: %s\\r\\nConnection: close\\r\\n\\r\\n" % host).encode())
        data = b""
        while b"\\r\\n" not in data:
            chunk = c.recv(4096)
            if not chunk: break
            data += chunk
        return data.split(b"\\r\\n", 1)[0]
    finally:
        c.close()
long = None
if echo_port:
    long = socket.create_connection((host, echo_port), timeout=5)
    long.settimeout(3)
print("ready")
n = 0
while True:
    n += 1
    started = time.monotonic()
    try:
        line = get()
        if b" 200 " in line + b" ":
            out["ok"] += 1; out["trailingOk"] += 1
        else:
            out["failed"] += 1; out["trailingOk"] = 0; note("status %r" % line)
    except Exception as e:
        out["failed"] += 1; out["trailingOk"] = 0; note("get: %s" % e)
    if long is not None:
        msg = ("ping %d\\n" % n).encode()
        try:
            long.sendall(msg)
            got = b""
            while len(got) < len(msg):
                chunk = long.recv(len(msg) - len(got))
                if not chunk: raise Exception("closed")
                got += chunk
            if got == msg: out["longOk"] += 1
            else: raise Exception("mismatch")
        except Exception as e:
            out["longFailed"] += 1; note("long: %s" % e)
    wait = interval - (time.monotonic() - started)
    r, _, _ = select.select([sys.stdin], [], [], max(wait, 0))
    if r and not sys.stdin.readline(): break
print(json.dumps(out))
`;

export interface RequestLoop {
  /** Stops the loop and returns its counts. */
  stop(): Promise<LoopSummary>;
}

/**
 * Sends one HTTP GET on a new connection to `host:port` every `intervalMs` from inside `netns`
 * and, when `echoPort` is given, one round trip on a single long-lived connection to the TCP echo
 * port each time, until `stop()`. Bounded: the child is killed after `maxMs`.
 */
export async function startRequestLoop(
  netns: string,
  target: { host: string; port: number; echoPort?: number },
  intervalMs: number,
  maxMs = 300_000,
): Promise<RequestLoop> {
  const p = startPython(
    netns,
    LOOP,
    [target.host, String(target.port), String(intervalMs), String(target.echoPort ?? 0)],
    maxMs,
  );
  await untilReady(p, 'request loop');
  return {
    stop: async () => {
      p.child.stdin.end();
      return lastJsonLine(await p.done) as LoopSummary;
    },
  };
}

export interface TransferEnd {
  readonly bytes: number;
  readonly sha256: string;
}

const SINK = `
import hashlib, json, socket, sys
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", int(sys.argv[1])))
srv.listen(1)
print("ready")
c, _ = srv.accept()
h = hashlib.sha256(); n = 0
buf = bytearray(1 << 20); view = memoryview(buf)
while True:
    k = c.recv_into(buf)
    if k == 0: break
    h.update(view[:k]); n += k
c.sendall(b"done")
c.close()
print(json.dumps({"bytes": n, "sha256": h.hexdigest()}))
`;

const SOURCE = `
import hashlib, json, os, socket, sys
host, port, mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
block = bytearray(os.urandom(1 << 20))
c = socket.create_connection((host, port), timeout=30)
c.settimeout(120)
h = hashlib.sha256(); n = 0
for i in range(mib):
    block[0:8] = i.to_bytes(8, "big")
    h.update(block); c.sendall(block); n += len(block)
c.shutdown(socket.SHUT_WR)
ack = c.recv(16)
c.close()
print(json.dumps({"bytes": n, "sha256": h.hexdigest(), "ack": ack.decode()}))
`;

/** Starts a sink on `port` in `netns` that hashes everything one connection sends. */
export async function startHashingSink(
  netns: string,
  port: number,
  maxMs: number,
): Promise<{ result: Promise<TransferEnd>; kill(): void }> {
  const p = startPython(netns, SINK, [String(port)], maxMs);
  await untilReady(p, 'hashing sink');
  return {
    result: p.done.then(out => lastJsonLine(out) as TransferEnd),
    kill: () => p.child.kill('SIGKILL'),
  };
}

/** Sends `mib` MiB of random data from `netns` to `host:port`, hashing it; waits for the sink's ack. */
export async function sendHashed(
  netns: string,
  host: string,
  port: number,
  mib: number,
  maxMs: number,
): Promise<TransferEnd & { ack: string }> {
  const p = startPython(netns, SOURCE, [host, String(port), String(mib)], maxMs);
  return lastJsonLine(await p.done) as TransferEnd & { ack: string };
}

const ECHO_PROBE = `
import socket, sys
try:
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=4)
    c.settimeout(4)
    c.sendall(b"probe\\n")
    got = b""
    while len(got) < 6:
        chunk = c.recv(6 - len(got))
        if not chunk: break
        got += chunk
    print("ok" if got == b"probe\\n" else "refused")
except Exception:
    print("refused")
`;

/** One round trip to a TCP echo port from inside `netns`: true when the bytes came back. */
export async function tcpEchoWorks(netns: string, host: string, port: number): Promise<boolean> {
  const p = startPython(netns, ECHO_PROBE, [host, String(port)], 20_000);
  return (await p.done).trim() === 'ok';
}

const FIRST_BYTES = `
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
c.settimeout(10)
c.sendall(bytes.fromhex(sys.argv[3]))
want = int(sys.argv[4])
got = b""
while len(got) < want:
    chunk = c.recv(4096)
    if not chunk: break
    got += chunk
print(got[:want].hex())
`;

/**
 * Sends `bytes` to `host:port` from inside `netns` on one connection and returns the first `n`
 * bytes of the answer (fewer if the peer closed first).
 */
export async function firstBytesOf(
  netns: string,
  host: string,
  port: number,
  bytes: Buffer,
  n: number,
): Promise<Buffer> {
  const p = startPython(netns, FIRST_BYTES, [host, String(port), bytes.toString('hex'), String(n)], 30_000);
  return Buffer.from((await p.done).trim(), 'hex');
}
