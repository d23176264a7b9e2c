/**
 * A local cluster with the mesh installed and Ready: what most cluster-tier files start from. The
 * Gateway API CRDs installed are upstream's v1.4.1 experimental bundle.
 * Progress goes to the console as `[cluster]` and `[mesh]` lines. If the install fails, or any
 * component is not Ready, the cluster is stopped before the error is thrown, so nothing leaks.
 */
import { startCluster, type Cluster, type StartClusterOptions } from '../cluster.ts';
import { ensureGatewayApiCrds, gatewayApiCrdObjects } from '../upstream-tools/gateway-api.ts';
import { installMesh, type MeshStatus } from './install.ts';

export interface MeshCluster {
  readonly cluster: Cluster;
  readonly status: MeshStatus;
}

export async function startMeshCluster(
  options: Omit<StartClusterOptions, 'progress'> & {
    /** istiod replicas (default 1, see `installMesh`). */
    readonly istiodReplicas?: number;
    /** istiod's node untaint controller (`InstallOptions.nodeUntaint`, default off). */
    readonly nodeUntaint?: boolean;
  },
): Promise<MeshCluster> {
  const { istiodReplicas, nodeUntaint, ...clusterOptions } = options;
  const cluster = await startCluster({
    ...clusterOptions,
    progress: l => {
      console.log(`[cluster] ${l}`);
    },
  });
  try {
    // The real Gateway API CRDs (v1.4.1 experimental, cached by tools/install-deps.d/gateway-api.sh)
    // replace the repository's hand-written subset.
    const gatewayApiCrds = gatewayApiCrdObjects(
      await ensureGatewayApiCrds(l => {
        console.log(`[mesh] ${l}`);
      }),
    );
    const status = await installMesh(cluster, {
      gatewayApiCrds,
      ...(istiodReplicas === undefined ? {} : { istiodReplicas }),
      ...(nodeUntaint === undefined ? {} : { nodeUntaint }),
      progress: l => {
        console.log(`[mesh] ${l}`);
      },
    });
    if (!status.components.every(c => c.ready)) {
      throw new Error(`the mesh is not Ready on cluster '${cluster.layout.name}': ${JSON.stringify(status)}`);
    }
    return { cluster, status };
  } catch (err) {
    await cluster.stop();
    throw err;
  }
}
