/**
 * Network-namespace handles: open by path (a bind mount such as `/var/run/netns/<name>`, or a
 * runtime's sandbox path) or by pid (`/proc/<pid>/ns/net`). A handle is a plain fd; the caller
 * owns it and closes it with `closeFd`. Opening never moves any thread into the namespace.
 */
import { InvalidArgumentError } from './errors.ts';
import { native } from './native.ts';
import { Capability, callNative } from './syscall-errors.ts';

/** The procfs path of a process's network namespace. */
export function netnsPathOfPid(pid: number): string {
  if (!Number.isInteger(pid) || pid <= 0)
    throw new InvalidArgumentError(`pid ${pid} is not a positive integer`);
  return `/proc/${pid}/ns/net`;
}

/**
 * Opens a network namespace and returns its fd (close-on-exec).
 * @param pathOrPid a namespace file path, or the pid of a process inside the namespace.
 * @throws MissingCapabilityError (CAP_SYS_PTRACE) for another user's process; SyscallError
 *   (ENOENT) when the path does not exist; InvalidArgumentError when it is not a netns.
 */
export function openNetns(pathOrPid: string | number): number {
  const path = typeof pathOrPid === 'number' ? netnsPathOfPid(pathOrPid) : pathOrPid;
  const fd = callNative(
    `open network namespace '${path}'`,
    () => native.openNetns(path),
    Capability.openProcessNetns,
  );
  const info = native.netnsInfo(fd);
  if (info.isNetns === false) {
    native.closeFd(fd);
    throw new InvalidArgumentError(`'${path}' is not a network namespace file`);
  }
  return fd;
}

/** The inode that identifies the namespace behind `nsFd` (stable while the namespace exists). */
export function netnsInode(nsFd: number): number {
  return callNative('inspect network namespace', () => native.netnsInfo(nsFd)).inode;
}

/** Whether `fd` refers to a network namespace; `null` when the kernel cannot tell. */
export function isNetnsFd(fd: number): boolean | null {
  return callNative('inspect fd', () => native.netnsInfo(fd)).isNetns;
}

/** The inode of the calling thread's own network namespace. */
export function currentNetnsInode(): number {
  return callNative('inspect own network namespace', () => native.currentNetnsInode());
}

/** Closes an fd the caller owns (a netns handle, or a socket fd never handed to Node). */
export function closeFd(fd: number): void {
  callNative('close fd', () => {
    native.closeFd(fd);
  });
}
