// The frame of a benchmark on its own local cluster (l4, l7): start the cluster, run `main` on it,
// stop the cluster once (also on SIGINT/SIGTERM), and exit non-zero when `main` fails.
import { startCluster } from '@ambient-mesh/e2e';
import type { Cluster } from '@ambient-mesh/e2e';

export async function runOnCluster(
  area: string,
  cluster: { readonly name: string; readonly slot: number },
  log: (line: string) => void,
  main: (cluster: Cluster) => Promise<void>,
): Promise<void> {
  const c = await startCluster({
    name: cluster.name,
    slot: cluster.slot,
    nodes: 2,
    progress: l => {
      log(`cluster: ${l}`);
    },
  });
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopping ??= c.stop());
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`${signal}: stopping the cluster`);
      void stop().finally(() => process.exit(130));
    });
  }
  try {
    await main(c);
  } catch (e) {
    console.error(`benchmarks/${area} failed: ${e instanceof Error ? e.message : String(e)}`);
    process.exitCode = 1;
  } finally {
    log('stopping the cluster');
    await stop();
  }
}
