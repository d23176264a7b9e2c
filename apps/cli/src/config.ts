/**
 * The CLI's settings from the environment: the only file that reads `process.env`. Flags
 * override these (`--kubeconfig` over `$KUBECONFIG`).
 */
export interface CliEnv {
  /** `$KUBECONFIG`; empty means the client's defaults (`~/.kube/config`, in-cluster). */
  readonly kubeconfig: string;
  /** `$NO_COLOR` set, or stderr not a terminal: progress is plain lines. */
  readonly plainProgress: boolean;
  /** `$AMBIENTCTL_ZTUNNEL_NAMESPACE`, where the ztunnel DaemonSet runs. */
  readonly ztunnelNamespace: string;
}

export function readEnv(
  env: NodeJS.ProcessEnv = process.env,
  stderrIsTTY: boolean = process.stderr.isTTY,
): CliEnv {
  return {
    kubeconfig: env['KUBECONFIG'] ?? '',
    plainProgress: env['NO_COLOR'] !== undefined || !stderrIsTTY,
    ztunnelNamespace: env['AMBIENTCTL_ZTUNNEL_NAMESPACE'] ?? 'istio-system',
  };
}
