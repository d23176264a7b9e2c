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

/**
 * Splits istioctl's aligned table (tabwriter, one space of padding, headers with spaces such as
 * `POD NAME`) into rows keyed by `columns`, cutting each line at the header's column offsets.
 */
export function parseTable(text: string, columns: readonly string[]): Record<string, string>[] {
  const lines = text.split('\n').filter(l => l.trim() !== '');
  const header = lines[0] ?? '';
  // Each column as a whole word, after the previous one (`NAME` is not the start of `NAMESPACE`).
  const starts: number[] = [];
  let from = 0;
  for (const c of columns) {
    let at = header.indexOf(c, from);
    while (at >= 0 && !isWholeWord(header, at, c.length)) at = header.indexOf(c, at + 1);
    if (at < 0) return [];
    starts.push(at);
    from = at + c.length;
  }
  return lines.slice(1).map(l => {
    const row: Record<string, string> = {};
    columns.forEach((c, i) => (row[c] = l.slice(starts[i], starts[i + 1] ?? l.length).trim()));
    return row;
  });
}

function isWholeWord(text: string, at: number, length: number): boolean {
  const before = at === 0 ? ' ' : text[at - 1];
  const after = text[at + length] ?? ' ';
  return before === ' ' && after === ' ';
}
