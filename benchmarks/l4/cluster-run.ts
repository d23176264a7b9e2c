// The frame of a benchmark on its own local cluster (l4, l7): start the cluster, run `main` on it,
// stop the cluster once (also on SIGINT/SIGTERM), and exit non-zero when `main` fails; root only.
import { runCommand, startCluster, waitFor } from '@ambient-mesh/e2e';
import type { Cluster } from '@ambient-mesh/e2e';

/** The fields of a Pod the drivers read. */
export interface PodView {
  readonly metadata?: { readonly uid?: string; readonly annotations?: Readonly<Record<string, string>> };
  readonly status?: {
    readonly podIP?: string;
    readonly conditions?: readonly { readonly type: string; readonly status: string }[];
  };
}

/** Runs `main` on a 2-node local cluster named `cluster`; exits 2 first unless root (network namespaces, nftables). */
export async function runOnCluster(
  area: string,
  cluster: { readonly name: string; readonly slot: number },
  log: (line: string) => void,
  main: (cluster: Cluster) => Promise<void>,
): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.error(`benchmarks/${area} needs root (it starts a local cluster: network namespaces, nftables)`);
    process.exit(2);
  }
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

/** Waits until the load pod in `netns` answers `/healthz` on its control port (bench-load.ts). */
export async function loadPodAnswering(what: string, netns: string, port: number): Promise<void> {
  await waitFor(
    what,
    async () => {
      const r = await runCommand(
        ['ip', 'netns', 'exec', netns, 'curl', '-sf', '--max-time', '2', `http://127.0.0.1:${port}/healthz`],
        { allowFailure: true },
      );
      return r.code === 0 ? true : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 500 },
  );
}
