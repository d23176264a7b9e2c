/**
 * Restart or uninstall: what the agent tells its image's entry point (`install-cni`) when it
 * stops, so the chained CNI plugin stays in place across restarts and upgrades (new pods wait
 * for the next agent: fail closed) and is only removed when the DaemonSet itself goes away.
 *
 * Upstream (istio/istio#54180, `cni/pkg/cmd/root.go`): the node agent looks up its own
 * DaemonSet on termination; present and not being deleted means restart/upgrade, otherwise (or
 * when it cannot tell) it cleans up. The verdict travels in a small JSON file in the run dir,
 * written just before the agent exits; a crashed or killed agent writes none, and the entry
 * point then keeps the plugin chained.
 */
import { renameSync, rmSync, writeFileSync } from 'node:fs';

/** The verdict file, in the agent's run dir (the entry point reads the same name). */
export const SHUTDOWN_VERDICT_FILE = 'cni-agent-shutdown.json';

/** What the agent learnt about its owner when it stopped. */
export type OwnerState =
  | { readonly kind: 'daemonset'; readonly name: string; readonly deleting: boolean }
  | { readonly kind: 'daemonset-gone'; readonly name: string }
  | { readonly kind: 'no-owner' }
  | { readonly kind: 'unknown'; readonly detail: string };

export interface ShutdownVerdict {
  /** `true`: remove the chained plugin (uninstall); `false`: leave it (restart or upgrade). */
  readonly uninstall: boolean;
  readonly reason: string;
}

/** Pure: upstream's rule (restart only when the DaemonSet is present and not being deleted). */
export function decideShutdown(owner: OwnerState): ShutdownVerdict {
  switch (owner.kind) {
    case 'daemonset':
      return owner.deleting
        ? { uninstall: true, reason: `DaemonSet ${owner.name} is being deleted` }
        : { uninstall: false, reason: `DaemonSet ${owner.name} is still present: a restart or upgrade` };
    case 'daemonset-gone':
      return { uninstall: true, reason: `DaemonSet ${owner.name} is gone` };
    case 'no-owner':
      return { uninstall: true, reason: 'the agent pod is not owned by a DaemonSet' };
    case 'unknown':
      return { uninstall: true, reason: `cannot tell a restart from an uninstall: ${owner.detail}` };
  }
}

/** Writes the verdict atomically to `<runDir>/cni-agent-shutdown.json`. */
export function writeShutdownVerdict(runDir: string, verdict: ShutdownVerdict): void {
  const path = `${runDir}/${SHUTDOWN_VERDICT_FILE}`;
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(verdict)}\n`);
  renameSync(tmp, path);
}

/** Removes a verdict left by an earlier run (called at start). */
export function clearShutdownVerdict(runDir: string): void {
  rmSync(`${runDir}/${SHUTDOWN_VERDICT_FILE}`, { force: true });
}
