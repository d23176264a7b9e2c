/**
 * The Gateway API CRDs, v1.4.1 experimental channel, as tools/install-deps.d/gateway-api.sh extracts
 * them from the sigs.k8s.io/gateway-api module (cached under ~/.cache/ambient-mesh/gateway-api; the
 * script prints the CRD folder last), and their objects ready to apply to a local cluster.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import type { ManifestObject } from '@ambient-mesh/install';
import { runBuildScript } from '../exec.ts';

export const GATEWAY_API_VERSION = 'v1.4.1';

/** The repository's tools/install-deps.d/gateway-api.sh. */
export function gatewayApiInstallScriptPath(): string {
  return join(
    dirname(fileURLToPath(import.meta.url)),
    '..',
    '..',
    '..',
    'tools',
    'install-deps.d',
    'gateway-api.sh',
  );
}

/** Runs the install script (a no-op when cached) and returns the folder holding the CRD files. */
export function ensureGatewayApiCrds(onProgress: (line: string) => void = () => undefined): Promise<string> {
  return runBuildScript(gatewayApiInstallScriptPath(), {
    progressPrefix: '[gateway-api]',
    onProgress,
    what: `the Gateway API ${GATEWAY_API_VERSION} CRDs`,
    needs: 'Go and the Go module proxy',
  });
}

/** Every CRD object in `dir`, in file name order. */
export function gatewayApiCrdObjects(dir: string): ManifestObject[] {
  const out: ManifestObject[] = [];
  for (const f of readdirSync(dir)
    .filter(f => f.endsWith('.yaml'))
    .sort()) {
    for (const d of parseAllDocuments(readFileSync(join(dir, f), 'utf8'))) {
      if (d.errors.length > 0) throw new Error(`${join(dir, f)}: ${d.errors[0]?.message ?? 'invalid YAML'}`);
      const doc = d.toJS() as ManifestObject | null;
      if (doc?.kind === 'CustomResourceDefinition') out.push(doc);
    }
  }
  return out;
}
