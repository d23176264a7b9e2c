// Entry of one kubelet process: `nsenter --net=<node netns> node kubelet/main.ts <config.json>`.
// It runs inside the node netns, so probes, the log endpoint and CNI plugins see the node's network.
import { readFileSync } from 'node:fs';
import { errorMessage } from '@ambient-mesh/errors';
import { runCommand } from '../exec.ts';
import { KubeClient } from '@ambient-mesh/kube';
import type { ClusterLayout, NodeLayout } from '../layout.ts';
import type { CniPluginConfig } from '../network/cni.ts';
import { loadImageMap } from './images.ts';
import { Kubelet } from './kubelet.ts';

/** A taint a node registers with. */
export interface NodeTaint {
  readonly key: string;
  readonly value?: string;
  readonly effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
}

/** What the harness writes for each kubelet process. */
export interface KubeletProcessConfig {
  readonly cluster: ClusterLayout;
  readonly node: NodeLayout;
  readonly kubeconfig: string;
  readonly imagesFile: string;
  readonly mountLedger: string;
  readonly chainedCniPlugins: readonly CniPluginConfig[];
  /** Taints the Node is created with (`--register-with-taints`). */
  readonly registerWithTaints?: readonly NodeTaint[];
  readonly tls: { cert: string; key: string; ca: string };
}

const log = (msg: string): void => {
  process.stdout.write(`${new Date().toISOString()} ${msg}\n`);
};

async function main(): Promise<void> {
  const path = process.argv[2];
  if (path === undefined) throw new Error('usage: kubelet/main.ts <config.json>');
  const cfg = JSON.parse(readFileSync(path, 'utf8')) as KubeletProcessConfig;
  const kubelet = new Kubelet({
    client: KubeClient.fromFile(cfg.kubeconfig),
    run: runCommand,
    cluster: cfg.cluster,
    node: cfg.node,
    images: loadImageMap(cfg.imagesFile),
    mountLedger: cfg.mountLedger,
    chainedCniPlugins: cfg.chainedCniPlugins,
    registerWithTaints: cfg.registerWithTaints ?? [],
    tls: cfg.tls,
    log,
  });
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    log('stopping: terminating pods');
    void kubelet.stop().then(
      () => {
        log('stopped');
        process.exit(0);
      },
      (e: unknown) => {
        log(`stop failed: ${errorMessage(e)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  await kubelet.start();
  log(`kubelet for ${cfg.node.name} ready`);
}

process.on('unhandledRejection', e => {
  log(`unhandled rejection: ${errorMessage(e)}`);
});
main().catch((e: unknown) => {
  log(`kubelet failed: ${errorMessage(e)}`);
  process.exit(1);
});
