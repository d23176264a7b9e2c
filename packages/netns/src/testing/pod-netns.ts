/**
 * Namespaced-test fixture: a "pod" network namespace joined by a veth pair to a "peer" namespace
 * (10.250.<n>.2 and fd00:250:<n>::2 in the pod, .1 and ::1 in the peer). Nothing touches the root namespace.
 * Names are unique per process and call; `remove()` deletes both namespaces (and the veth).
 */
import { execFileSync } from 'node:child_process';

export interface PodNetns {
  readonly pod: string;
  readonly peer: string;
  readonly podPath: string;
  readonly peerPath: string;
  readonly podIp: string;
  readonly peerIp: string;
  readonly podIp6: string;
  readonly peerIp6: string;
  remove(): void;
}

let counter = 0;

/** Runs `ip` and returns stdout; throws with stderr on failure. */
export function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A unique namespace base name, e.g. `nft-1234-3`. */
export function uniqueName(prefix: string): string {
  counter += 1;
  return `${prefix}-${process.pid}-${counter}`;
}

/** Creates the pod/peer pair. `label` names the test, for anyone listing namespaces. */
export function createPodNetns(label: string, subnet = 1 + (counter % 250)): PodNetns {
  const base = uniqueName(label);
  const pod = `${base}-pod`;
  const peer = `${base}-peer`;
  const podIp = `10.250.${subnet}.2`;
  const peerIp = `10.250.${subnet}.1`;
  const podIp6 = `fd00:250:${subnet}::2`;
  const peerIp6 = `fd00:250:${subnet}::1`;
  const remove = (): void => {
    for (const ns of [pod, peer]) {
      try {
        ip('netns', 'del', ns);
      } catch {
        // Not created, or already gone.
      }
    }
  };
  try {
    ip('netns', 'add', pod);
    ip('netns', 'add', peer);
    ip('-n', pod, 'link', 'set', 'lo', 'up');
    ip('-n', peer, 'link', 'set', 'lo', 'up');
    ip('-n', pod, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', peer);
    ip('-n', pod, 'addr', 'add', `${podIp}/24`, 'dev', 'eth0', 'nodad');
    ip('-n', peer, 'addr', 'add', `${peerIp}/24`, 'dev', 'eth0', 'nodad');
    ip('-n', pod, 'addr', 'add', `${podIp6}/64`, 'dev', 'eth0', 'nodad');
    ip('-n', peer, 'addr', 'add', `${peerIp6}/64`, 'dev', 'eth0', 'nodad');
    ip('-n', pod, 'link', 'set', 'eth0', 'up');
    ip('-n', peer, 'link', 'set', 'eth0', 'up');
  } catch (err) {
    remove();
    throw err;
  }
  return {
    pod,
    peer,
    podPath: `/var/run/netns/${pod}`,
    peerPath: `/var/run/netns/${peer}`,
    podIp,
    peerIp,
    podIp6,
    peerIp6,
    remove,
  };
}

/** Creates a lone namespace with `lo` up. */
export function createNetns(label: string): { readonly name: string; readonly path: string; remove(): void } {
  const name = uniqueName(label);
  ip('netns', 'add', name);
  const remove = (): void => {
    try {
      ip('netns', 'del', name);
    } catch {
      // Already gone.
    }
  };
  try {
    ip('-n', name, 'link', 'set', 'lo', 'up');
  } catch (err) {
    remove();
    throw err;
  }
  return { name, path: `/var/run/netns/${name}`, remove };
}
