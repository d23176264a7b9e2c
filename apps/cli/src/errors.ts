/**
 * The CLI's typed errors and the exit code each maps to. Every failure the CLI reports is a
 * `CliError` with a stable code and a message that ends with what to check; `exitCodeFor` turns
 * any thrown value (a `CliError`, a `KubeError` from @ambient-mesh/kube, a commander usage error)
 * into one of the documented {@link ExitCode}s.
 */
import { MeshError, errorMessage, type MeshErrorOptions } from '@ambient-mesh/errors';
import { KubeError, KubeErrorCode } from '@ambient-mesh/kube';

/** Exit codes scripts can rely on (docs/cli.md lists them). */
export const ExitCode = {
  /** Success. */
  Ok: 0,
  /** The command ran and failed (a check failed, an object is invalid, a wait timed out). */
  Failure: 1,
  /** Bad usage: unknown flag or command, missing or malformed argument. */
  Usage: 2,
  /** The cluster did not answer, or the kubeconfig/context is unusable. */
  Unreachable: 3,
  /** The named object (namespace, pod, waypoint) does not exist. */
  NotFound: 4,
  /** The cluster refused the credentials or RBAC denied the request. */
  Forbidden: 5,
  /** A wait (`--wait`, enroll) did not finish in time. */
  Timeout: 6,
  /** A mesh component (a ztunnel, istiod) did not answer. */
  MeshUnavailable: 7,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export const CliErrorCode = {
  Usage: 'CLI_USAGE',
  NamespaceNotFound: 'CLI_NAMESPACE_NOT_FOUND',
  NotFound: 'CLI_NOT_FOUND',
  ClusterUnreachable: 'CLI_CLUSTER_UNREACHABLE',
  Kubeconfig: 'CLI_KUBECONFIG',
  ZtunnelUnavailable: 'CLI_ZTUNNEL_UNAVAILABLE',
  NoZtunnel: 'CLI_NO_ZTUNNEL',
  IstiodUnavailable: 'CLI_ISTIOD_UNAVAILABLE',
  OperatorMissing: 'CLI_OPERATOR_MISSING',
  BadDump: 'CLI_BAD_CONFIG_DUMP',
  Timeout: 'CLI_TIMEOUT',
  Exists: 'CLI_EXISTS',
  Failed: 'CLI_FAILED',
} as const;
export type CliErrorCode = (typeof CliErrorCode)[keyof typeof CliErrorCode];

const EXIT_FOR_CODE: Readonly<Record<CliErrorCode, ExitCode>> = {
  CLI_USAGE: ExitCode.Usage,
  CLI_NAMESPACE_NOT_FOUND: ExitCode.NotFound,
  CLI_NOT_FOUND: ExitCode.NotFound,
  CLI_CLUSTER_UNREACHABLE: ExitCode.Unreachable,
  CLI_KUBECONFIG: ExitCode.Unreachable,
  CLI_ZTUNNEL_UNAVAILABLE: ExitCode.MeshUnavailable,
  CLI_NO_ZTUNNEL: ExitCode.MeshUnavailable,
  CLI_ISTIOD_UNAVAILABLE: ExitCode.MeshUnavailable,
  CLI_OPERATOR_MISSING: ExitCode.MeshUnavailable,
  CLI_BAD_CONFIG_DUMP: ExitCode.Failure,
  CLI_TIMEOUT: ExitCode.Timeout,
  CLI_EXISTS: ExitCode.Failure,
  CLI_FAILED: ExitCode.Failure,
};

export class CliError extends MeshError {
  declare readonly code: CliErrorCode;

  constructor(code: CliErrorCode, message: string, options: MeshErrorOptions = {}) {
    super(code, message, options);
  }

  get exitCode(): ExitCode {
    return EXIT_FOR_CODE[this.code];
  }
}

export function usageError(message: string): CliError {
  return new CliError(CliErrorCode.Usage, message);
}

export function namespaceNotFound(namespace: string): CliError {
  return new CliError(
    CliErrorCode.NamespaceNotFound,
    `namespace "${namespace}" does not exist; check the name (kubectl get namespaces) and the --context in use`,
  );
}

export function ztunnelUnavailable(pod: string, node: string, cause?: unknown): CliError {
  return new CliError(
    CliErrorCode.ZtunnelUnavailable,
    `ztunnel ${pod} on node ${node} did not answer on its admin port 15000 (/config_dump)` +
      `${cause === undefined ? '' : `: ${errorMessage(cause)}`}; check the pod is Ready ` +
      `(kubectl -n istio-system get pod ${pod}) and its logs`,
    { cause },
  );
}

/** The exit code for anything thrown by a command. */
export function exitCodeFor(err: unknown): ExitCode {
  if (err instanceof CliError) return err.exitCode;
  if (err instanceof KubeError) {
    switch (err.code) {
      case KubeErrorCode.Unreachable:
      case KubeErrorCode.Config:
        return ExitCode.Unreachable;
      case KubeErrorCode.NotFound:
        return ExitCode.NotFound;
      case KubeErrorCode.Forbidden:
      case KubeErrorCode.Unauthorized:
        return ExitCode.Forbidden;
      default:
        return ExitCode.Failure;
    }
  }
  return ExitCode.Failure;
}

/** The one-line message printed for a failure, with a hint for unreachable clusters. */
export function describeError(err: unknown): string {
  if (err instanceof KubeError && err.code === KubeErrorCode.Unreachable) {
    return `${err.message}\nthe cluster did not answer; check --kubeconfig/--context point at a running cluster (kubectl cluster-info)`;
  }
  return errorMessage(err);
}
