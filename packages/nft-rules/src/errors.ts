import { MeshError } from '@ambient-mesh/errors';

/** Stable codes of `@ambient-mesh/nft-rules`. */
export const NftErrorCode = {
  unsupportedPlatform: 'NFT_UNSUPPORTED_PLATFORM',
  invalidOptions: 'NFT_INVALID_OPTIONS',
  commandFailed: 'NFT_COMMAND_FAILED',
  unexpectedOutput: 'NFT_UNEXPECTED_OUTPUT',
} as const;
export type NftErrorCode = (typeof NftErrorCode)[keyof typeof NftErrorCode];

/** The package is loaded somewhere nftables does not exist. */
export class NftUnsupportedPlatformError extends MeshError {
  constructor(platform: string) {
    super(
      NftErrorCode.unsupportedPlatform,
      `@ambient-mesh/nft-rules drives Linux nftables and iproute2; this process runs on '${platform}'. ` +
        `Run the CNI agent on a Linux node.`,
    );
  }
}

/** Options that cannot produce a valid ruleset. */
export class InvalidRuleOptionsError extends MeshError {
  constructor(detail: string) {
    super(NftErrorCode.invalidOptions, `invalid redirection options: ${detail}`);
  }
}

/** `nft` or `ip` exited non-zero (or could not start). */
export class CommandFailedError extends MeshError {
  readonly command: string;
  readonly exitCode: number;
  readonly stderr: string;

  constructor(command: string, exitCode: number, stderr: string) {
    const hint =
      /Operation not permitted/i.test(stderr) || exitCode === 126
        ? ' (needs CAP_NET_ADMIN in the target namespace, and CAP_SYS_ADMIN to enter it)'
        : /not found|ENOENT/i.test(stderr)
          ? ' (is the nftables / iproute2 package installed?)'
          : '';
    super(
      NftErrorCode.commandFailed,
      `'${command}' failed with exit code ${exitCode}${hint}: ${stderr.trim().slice(0, 2000)}`,
    );
    this.command = command;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

/** `nft -j` or `ip -j` printed something that is not the expected JSON. */
export class UnexpectedOutputError extends MeshError {
  constructor(command: string, detail: string, cause?: unknown) {
    super(
      NftErrorCode.unexpectedOutput,
      `'${command}' printed unexpected output: ${detail}; check the tool version`,
      {
        cause,
      },
    );
  }
}
