/**
 * Namespaced-test topology (root only): a "node" netns holding a bridge, and pod netns joined to
 * it by veth pairs, like a kind node. Names are unique per test; `remove()` deletes everything.
 * Nothing is created in the root namespace.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { closeFd, openNetns } from '@ambient-mesh/netns';

export function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export interface TestPod {
  readonly name: string;
  readonly netns: string;
  readonly path: string;
  readonly ip: string;
  /** The pod's IPv6 address (a ULA) when the node was created with `ipv6`. */
  readonly ip6?: string;
  /** The veth end in the node netns. */
  readonly hostVeth: string;
  /** An open fd of the pod netns (closed by `remove()`). */
  readonly fd: number;
}

export interface TestNode {
  readonly netns: string;
  readonly pods: readonly TestPod[];
  remove(): void;
}

/**
 * A node netns with a bridge 10.<a>.<b>.1/24 and one pod per name at .2, .3, ...; with `ipv6`
 * also fd00:7a:<n>::1/64 on the bridge and ::2, ::3, ... in the pods (dual-stack, no DAD).
 */
export function createTestNode(
  label: string,
  podNames: readonly string[],
  options: { readonly ipv6?: boolean } = {},
): TestNode {
  const id = `${process.pid % 10_000}${randomInt(100, 999)}`;
  const node = `zt-${label}-${id}-node`;
  const subnet = `10.${randomInt(1, 250)}.${randomInt(1, 250)}`;
  const subnet6 = options.ipv6 === true ? `fd00:7a:${randomInt(1, 0xffff).toString(16)}:` : undefined;
  const created: string[] = [];
  const fds: number[] = [];
  const remove = (): void => {
    for (const fd of fds.splice(0)) {
      try {
        closeFd(fd);
      } catch {
        // Already closed.
      }
    }
    for (const ns of created.splice(0).reverse()) {
      try {
        ip('netns', 'del', ns);
      } catch {
        // Already gone.
      }
    }
  };
  try {
    ip('netns', 'add', node);
    created.push(node);
    ip('-n', node, 'link', 'set', 'lo', 'up');
    ip('-n', node, 'link', 'add', 'br0', 'type', 'bridge');
    ip('-n', node, 'addr', 'add', `${subnet}.1/24`, 'dev', 'br0');
    if (subnet6 !== undefined) ip('-n', node, 'addr', 'add', `${subnet6}:1/64`, 'dev', 'br0', 'nodad');
    ip('-n', node, 'link', 'set', 'br0', 'up');
    const pods = podNames.map((name, i): TestPod => {
      const netns = `zt-${label}-${id}-${name}`;
      const hostVeth = `zv${id}${i}`;
      const podIp = `${subnet}.${i + 2}`;
      ip('netns', 'add', netns);
      created.push(netns);
      ip('-n', netns, 'link', 'set', 'lo', 'up');
      ip('-n', netns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', hostVeth, 'netns', node);
      ip('-n', netns, 'addr', 'add', `${podIp}/24`, 'dev', 'eth0', 'nodad');
      ip('-n', netns, 'link', 'set', 'eth0', 'up');
      ip('-n', netns, 'route', 'add', 'default', 'via', `${subnet}.1`);
      const podIp6 = subnet6 === undefined ? undefined : `${subnet6}:${(i + 2).toString(16)}`;
      if (podIp6 !== undefined) {
        ip('-n', netns, 'addr', 'add', `${podIp6}/64`, 'dev', 'eth0', 'nodad');
        ip('-n', netns, '-6', 'route', 'add', 'default', 'via', `${subnet6}:1`);
      }
      ip('-n', node, 'link', 'set', hostVeth, 'master', 'br0', 'up');
      const path = `/run/netns/${netns}`;
      const fd = openNetns(path);
      fds.push(fd);
      return { name, netns, path, ip: podIp, ...(podIp6 === undefined ? {} : { ip6: podIp6 }), hostVeth, fd };
    });
    return { netns: node, pods, remove };
  } catch (err) {
    remove();
    throw err;
  }
}

export interface CaptureSummary {
  readonly frames: number;
  /** TCP segments to or from port 15008. */
  readonly hbone: number;
  /** Other TCP ports seen. */
  readonly otherTcpPorts: readonly number[];
  /** Frames containing the plaintext marker. */
  readonly plaintext: number;
  /** IPv6 TCP segments (any port). */
  readonly v6: number;
}

const CAPTURE = `
import json, select, socket, struct, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(3))
s.bind((sys.argv[1], 0))
marker = sys.argv[2].encode()
out = {"frames": 0, "hbone": 0, "otherTcpPorts": [], "plaintext": 0, "v6": 0}
def count(p):
    out["frames"] += 1
    if marker in p: out["plaintext"] += 1
    l4 = None
    if len(p) > 34 and p[12:14] == b"\\x08\\x00" and p[23] == 6: l4 = 14 + (p[14] & 15) * 4
    if len(p) > 58 and p[12:14] == b"\\x86\\xdd" and p[20] == 6: l4 = 54
    if l4 is not None:
        out["v6"] += 1 if l4 == 54 else 0
        sp, dp = struct.unpack("!HH", p[l4:l4 + 4])
        if 15008 in (sp, dp): out["hbone"] += 1
        else:
            for port in (sp, dp):
                if port < 32768 and port not in out["otherTcpPorts"]: out["otherTcpPorts"].append(port)
sys.stdout.write("ready\\n"); sys.stdout.flush()
while True:
    r, _, _ = select.select([s, sys.stdin], [], [])
    if s in r: count(s.recv(65535))
    if sys.stdin in r and not sys.stdin.readline(): break
# Stopped: the frames still queued in the socket (a busy machine may not have run us yet) count too.
s.setblocking(False)
while True:
    try: count(s.recv(65535))
    except BlockingIOError: break
print(json.dumps(out)); sys.stdout.flush()
`;

/** Captures frames on `veth` in the node netns until `stop()` (python3 AF_PACKET). */
export async function captureOn(
  nodeNetns: string,
  veth: string,
  marker: string,
): Promise<{ stop(): Promise<CaptureSummary> }> {
  const child = spawn('ip', ['netns', 'exec', nodeNetns, 'python3', '-c', CAPTURE, veth, marker], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => (output += chunk));
  await new Promise<void>((resolve, reject) => {
    const deadline = setTimeout(() => {
      reject(new Error('packet capture did not start within 10 s'));
    }, 10_000);
    child.once('exit', code => {
      clearTimeout(deadline);
      reject(new Error(`packet capture exited early (${String(code)})`));
    });
    child.stdout.on('data', () => {
      if (output.includes('ready\n')) {
        clearTimeout(deadline);
        resolve();
      }
    });
  });
  return {
    stop: () =>
      new Promise((resolve, reject) => {
        child.removeAllListeners('exit');
        child.once('exit', () => {
          const line = output.split('\n').find(l => l.startsWith('{'));
          if (line === undefined) reject(new Error(`no capture summary in ${JSON.stringify(output)}`));
          else resolve(JSON.parse(line) as CaptureSummary);
        });
        child.stdin.end();
      }),
  };
}
