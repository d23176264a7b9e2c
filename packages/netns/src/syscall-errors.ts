/**
 * Turns the addon's errno-carrying errors into the package's typed errors. A permission failure
 * becomes a MissingCapabilityError that names the capability the kernel checked.
 */
import { InvalidArgumentError, MissingCapabilityError, SyscallError } from './errors.ts';

/** The capability each privileged step needs. */
export const Capability = {
  /** setns(2) into another network namespace. */
  enterNetns: 'CAP_SYS_ADMIN',
  /** Opening another process's `/proc/<pid>/ns/net`. */
  openProcessNetns: 'CAP_SYS_PTRACE',
  /** SO_MARK. */
  setMark: 'CAP_NET_ADMIN',
  /** IP_TRANSPARENT / IPV6_TRANSPARENT (CAP_NET_RAW also suffices). */
  transparent: 'CAP_NET_ADMIN',
  /** Binding a port below 1024. */
  bindLowPort: 'CAP_NET_BIND_SERVICE',
} as const;
export type Capability = (typeof Capability)[keyof typeof Capability];

interface ErrnoLike {
  code?: unknown;
  syscall?: unknown;
}

/** True when a thrown value carries the errno name `code`. */
export function hasErrnoCode(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as ErrnoLike).code === code;
}

/**
 * Wraps an error from the addon. `capability` names what a permission failure (EPERM/EACCES)
 * means for this step; without it a permission failure is reported as a plain SyscallError.
 */
export function translateError(err: unknown, operation: string, capability?: Capability): Error {
  if (err instanceof TypeError) return new InvalidArgumentError(`${operation}: ${err.message}`);
  const { code, syscall } = (typeof err === 'object' && err !== null ? err : {}) as ErrnoLike;
  const errnoCode = typeof code === 'string' ? code : 'UNKNOWN';
  const sys = typeof syscall === 'string' ? syscall : 'syscall';
  if (capability !== undefined && (errnoCode === 'EPERM' || errnoCode === 'EACCES')) {
    return new MissingCapabilityError(capability, operation, err);
  }
  return new SyscallError(operation, sys, errnoCode, err);
}

/** Runs a native call and rethrows its failure as a typed error. */
export function callNative<T>(operation: string, fn: () => T, capability?: Capability): T {
  try {
    return fn();
  } catch (err) {
    throw translateError(err, operation, capability);
  }
}
