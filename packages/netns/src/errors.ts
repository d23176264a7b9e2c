import { MeshError } from '@ambient-mesh/errors';

/** Stable codes of `@ambient-mesh/netns`. */
export const NetnsErrorCode = {
  unsupportedPlatform: 'NETNS_UNSUPPORTED_PLATFORM',
  addonNotBuilt: 'NETNS_ADDON_NOT_BUILT',
  missingCapability: 'NETNS_MISSING_CAPABILITY',
  invalidArgument: 'NETNS_INVALID_ARGUMENT',
  syscallFailed: 'NETNS_SYSCALL_FAILED',
  socketClosed: 'NETNS_SOCKET_CLOSED',
} as const;
export type NetnsErrorCode = (typeof NetnsErrorCode)[keyof typeof NetnsErrorCode];

/** The package is loaded on a platform other than Linux. */
export class UnsupportedPlatformError extends MeshError {
  readonly platform: string;

  constructor(platform: string) {
    super(
      NetnsErrorCode.unsupportedPlatform,
      `@ambient-mesh/netns works only on Linux (network namespaces, SO_MARK, SO_ORIGINAL_DST); ` +
        `this process runs on '${platform}'. Run the data plane on a Linux node.`,
    );
    this.platform = platform;
  }
}

/** The native addon is missing or does not load. */
export class AddonNotBuiltError extends MeshError {
  constructor(path: string, cause: unknown) {
    super(
      NetnsErrorCode.addonNotBuilt,
      `the native addon '${path}' could not be loaded; run 'npm rebuild @ambient-mesh/netns' ` +
        `(needs make, g++ and the Node headers) and check the build log`,
      { cause },
    );
  }
}

/** A Linux capability the operation needs is missing (EPERM/EACCES from the kernel). */
export class MissingCapabilityError extends MeshError {
  readonly capability: string;
  readonly operation: string;

  constructor(capability: string, operation: string, cause: unknown) {
    super(
      NetnsErrorCode.missingCapability,
      `${operation} needs ${capability}; run as root or grant the process ${capability}`,
      { cause },
    );
    this.capability = capability;
    this.operation = operation;
  }
}

/** A caller passed a value the kernel would never accept (not an IP literal, bad port, ...). */
export class InvalidArgumentError extends MeshError {
  constructor(detail: string) {
    super(NetnsErrorCode.invalidArgument, `invalid argument: ${detail}`);
  }
}

/** A system call failed for a reason other than a missing capability. */
export class SyscallError extends MeshError {
  /** The errno name, e.g. `ECONNREFUSED`. */
  readonly errnoCode: string;
  readonly syscall: string;

  constructor(operation: string, syscall: string, errnoCode: string, cause: unknown) {
    super(NetnsErrorCode.syscallFailed, `${operation}: ${syscall} failed with ${errnoCode}`, { cause });
    this.errnoCode = errnoCode;
    this.syscall = syscall;
  }
}

/** The socket was already closed. */
export class SocketClosedError extends MeshError {
  constructor(operation: string) {
    super(NetnsErrorCode.socketClosed, `${operation} on a closed socket; open a new one`);
  }
}
