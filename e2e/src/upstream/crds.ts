/** Applies CustomResourceDefinition files (multi-document YAML) and waits until they are Established. */
import { readFileSync } from 'node:fs';
// Plain YAML parsing, not client-node's loadAllYaml: that one maps objects onto its typed models
// and drops keys such as `x-kubernetes-int-or-string`, which the apiserver then rejects.
import { parseAllDocuments } from 'yaml';
import { waitFor } from '../exec.ts';
import { httpStatusOf, type KubeClient } from '@ambient-mesh/kube';

const CRD_PATH = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';

interface CrdObject {
  kind?: string;
  metadata?: { name?: string };
}

interface CrdStatus {
  status?: { conditions?: { type: string; status: string }[] };
}

/** The CRD objects in a YAML file (other kinds are skipped). */
export function readCrds(path: string): CrdObject[] {
  const docs = parseAllDocuments(readFileSync(path, 'utf8')).map(d => d.toJS() as unknown);
  return docs.filter(
    (d): d is CrdObject =>
      typeof d === 'object' && d !== null && (d as CrdObject).kind === 'CustomResourceDefinition',
  );
}

export interface AppliedCrds {
  /** CRDs that exist and are Established. */
  readonly established: string[];
  /** CRDs the apiserver refused as invalid (only with `skipInvalid`), with its message. */
  readonly rejected: { name: string; message: string }[];
}

/**
 * Creates every CRD in `paths` that does not exist yet (an existing one is left as it is) and
 * waits until all of them are Established. With `skipInvalid`, a CRD the apiserver rejects as
 * Invalid (HTTP 422: a newer schema than this Kubernetes accepts) is reported instead of thrown.
 */
export async function applyCrds(
  client: KubeClient,
  paths: readonly string[],
  options: { timeoutMs?: number; skipInvalid?: boolean } = {},
): Promise<AppliedCrds> {
  const names: string[] = [];
  const rejected: { name: string; message: string }[] = [];
  for (const path of paths) {
    for (const crd of readCrds(path)) {
      const name = crd.metadata?.name ?? '';
      try {
        await client.ensure(CRD_PATH, crd);
        names.push(name);
      } catch (e) {
        if (options.skipInvalid === true && e instanceof Error && httpStatusOf(e) === 422) {
          rejected.push({ name, message: e.message });
        } else {
          throw e;
        }
      }
    }
  }
  await waitFor(
    `${names.length} CRDs to be Established`,
    async () => {
      for (const name of names) {
        const crd = await client.get<CrdStatus>(`${CRD_PATH}/${name}`);
        if (crd.status?.conditions?.some(c => c.type === 'Established' && c.status === 'True') !== true) {
          return undefined;
        }
      }
      return true;
    },
    { timeoutMs: options.timeoutMs ?? 60_000, intervalMs: 500 },
  );
  return { established: names, rejected };
}
