/**
 * The CLI's settings from the environment: the only file that reads `process.env`. Flags
 * override these (`--kubeconfig` over `$KUBECONFIG`).
 */
import type { BrowserEnv } from './browser.ts';

export interface CliEnv {
  /** `$KUBECONFIG`; empty means the client's defaults (`~/.kube/config`, in-cluster). */
  readonly kubeconfig: string;
  /** `$NO_COLOR` set, or stderr not a terminal: progress is plain lines. */
  readonly plainProgress: boolean;
  /** `$AMBIENTCTL_ZTUNNEL_NAMESPACE`, where the ztunnel DaemonSet runs. */
  readonly ztunnelNamespace: string;
  /** What decides how `dashboard` opens a browser (`$BROWSER`, a display, the platform). */
  readonly browser: BrowserEnv;
}

export function readEnv(
  env: NodeJS.ProcessEnv = process.env,
  stderrIsTTY: boolean = process.stderr.isTTY,
  platform: string = process.platform,
): CliEnv {
  return {
    kubeconfig: env['KUBECONFIG'] ?? '',
    plainProgress: env['NO_COLOR'] !== undefined || !stderrIsTTY,
    ztunnelNamespace: env['AMBIENTCTL_ZTUNNEL_NAMESPACE'] ?? 'istio-system',
    browser: {
      browser: env['BROWSER'],
      display: (env['DISPLAY'] ?? '') !== '' || (env['WAYLAND_DISPLAY'] ?? '') !== '',
      platform,
    },
  };
}
