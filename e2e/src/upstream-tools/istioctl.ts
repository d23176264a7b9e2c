/**
 * Finds or builds istioctl with tools/install-deps.d/istioctl.sh (cached next to upstream istiod,
 * ~/.cache/ambient-mesh/istio/<label>/bin/istioctl; the script prints the binary's path last), and
 * runs it against a local cluster.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runBuildScript, runCommand, type RunResult } from '../exec.ts';

/** The repository's tools/install-deps.d/istioctl.sh. */
export function istioctlInstallScriptPath(): string {
  return join(
    dirname(fileURLToPath(import.meta.url)),
    '..',
    '..',
    '..',
    'tools',
    'install-deps.d',
    'istioctl.sh',
  );
}

/** Runs the install script (a no-op when cached) and returns the istioctl binary's path. */
export function ensureIstioctl(onProgress: (line: string) => void = () => undefined): Promise<string> {
  return runBuildScript(istioctlInstallScriptPath(), {
    progressPrefix: '[istioctl]',
    onProgress,
    what: 'istioctl',
    needs: 'Go and the Go module proxy',
  });
}

/** istioctl with a kubeconfig bound; resolves with the result whatever the exit code. */
export function istioctlRunner(
  binary: string,
  kubeconfig: string,
): (args: readonly string[], timeoutMs?: number) => Promise<RunResult> {
  return (args, timeoutMs = 60_000) =>
    runCommand([binary, `--kubeconfig=${kubeconfig}`, ...args], { allowFailure: true, timeoutMs });
}

/** Splits a whitespace-aligned table (istioctl's tabwriter output) into header-keyed rows. */
export function parseTable(text: string): Record<string, string>[] {
  const lines = text.split('\n').filter(l => l.trim() !== '');
  const header = lines[0];
  if (header === undefined) return [];
  const columns = header.trim().split(/\s{2,}|\t+/);
  return lines.slice(1).map(l => {
    const cells = l.trim().split(/\s{2,}|\t+/);
    const row: Record<string, string> = {};
    columns.forEach((c, i) => (row[c] = cells[i] ?? ''));
    return row;
  });
}
