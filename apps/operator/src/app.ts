// The operator's composition root, `build(config, deps) -> Bound`: a KubeClient, informers on the
// IstioCNI and ZTunnel collections, and one serial work queue that reconciles each changed CR
// (and every CR again each resync period, which reverts manual edits of owned objects).
import { Informer, KubeClient, clientSource, loadKubeConfig, systemTimers } from '@ambient-mesh/kube';
import type { Timers } from '@ambient-mesh/kube';
import { createPlatform, type Platform } from '@ambient-mesh/runtime';
import type { Logger, Logs } from '@ambient-mesh/runtime';
import type { Config } from './config.ts';
import { ComponentReconciler, type ComponentKind, type ComponentSpec } from './component-reconciler.ts';
import { sailPath, type SailObject } from './resources.ts';

export interface AppDeps {
  readonly client?: KubeClient;
  /** Logs and metrics registry from the runtime (`createPlatform`); by default made from config. */
  readonly platform?: Platform;
  readonly logs?: Logs;
  /** Drives the resync period. */
  readonly timers?: Timers;
  /** The informers' back-off timers (default: the system's). */
  readonly informerTimers?: Timers;
  readonly now?: () => Date;
}

export interface Bound {
  readonly logs: Logs;
  /** Settles when every queued reconcile has run. */
  idle(): Promise<void>;
  /** Queues a reconcile of one CR. */
  enqueue(kind: ComponentKind, name: string): void;
  shutdown(): Promise<void>;
}

const KINDS: readonly ComponentKind[] = ['IstioCNI', 'ZTunnel'];

/** What a reconcile depends on in a CR: its spec, generation, finalizers and deletion. */
function actedOn(o: SailObject<ComponentSpec>): string {
  const m = o.metadata;
  return JSON.stringify([o.spec, m.generation, m.finalizers ?? [], m.deletionTimestamp ?? null]);
}

export async function build(config: Config, deps: AppDeps = {}): Promise<Bound> {
  const { logs } =
    deps.platform ??
    createPlatform({
      component: 'operator',
      logFormat: config.logFormat,
      logLevel: config.logLevel,
      ...(deps.logs !== undefined ? { logs: deps.logs } : {}),
    });
  const log: Logger = logs.for('reconcile');
  const timers = deps.timers ?? systemTimers;
  const client =
    deps.client ??
    new KubeClient(
      loadKubeConfig({
        inCluster: config.inCluster,
        ...(config.kubeconfig === undefined ? {} : { file: config.kubeconfig }),
      }),
    );
  const reconciler = new ComponentReconciler({
    client,
    render: { images: config.images },
    ...(deps.now === undefined ? {} : { now: deps.now }),
  });

  // The single writer: one reconcile at a time, each key at most once in the queue.
  const queue = new Set<string>();
  let running: Promise<void> = Promise.resolve();
  let stopped = false;
  const enqueue = (kind: ComponentKind, name: string): void => {
    if (stopped) return;
    const key = `${kind}/${name}`;
    if (queue.has(key)) return;
    queue.add(key);
    running = running.then(async () => {
      queue.delete(key);
      if (stopped) return;
      try {
        const result = await reconciler.reconcile(kind, name);
        log.info(
          {
            kind,
            name,
            result: result.kind,
            ...(result.kind === 'reconciled' ? { state: result.status.state } : {}),
          },
          'reconciled',
        );
      } catch (err) {
        log.warn({ kind, name, err }, 'reconcile failed; retrying at the next resync');
      }
    });
  };

  const informers = KINDS.map(kind => {
    const informer = new Informer<SailObject<ComponentSpec>>({
      name: kind,
      source: clientSource(client, sailPath(kind)),
      ...(deps.informerTimers === undefined ? {} : { timers: deps.informerTimers }),
    });
    const on = (o: SailObject<ComponentSpec>): void => {
      enqueue(kind, o.metadata.name);
    };
    // A status write (ours) is an update too: only a change of what we act on queues a reconcile,
    // so a quiet mesh costs nothing between resyncs.
    informer.on({
      add: on,
      update: (old, o) => {
        if (actedOn(old) !== actedOn(o)) on(o);
      },
    });
    return { kind, informer };
  });
  await Promise.all(informers.map(({ informer }) => informer.start()));

  // Re-armed after each round (timers with only setTimeout drive it in tests).
  let resync: unknown;
  const arm = (): void => {
    resync = timers.setTimeout(() => {
      for (const { kind, informer } of informers) {
        for (const o of informer.cache.list()) enqueue(kind, o.metadata.name);
      }
      if (!stopped) arm();
    }, config.resyncMs);
  };
  arm();

  return {
    logs,
    enqueue,
    idle: async () => {
      let seen: Promise<void> | undefined;
      while (seen !== running) {
        seen = running;
        await seen;
      }
    },
    shutdown: async () => {
      if (stopped) return;
      stopped = true;
      timers.clearTimeout(resync);
      await Promise.all(informers.map(({ informer }) => informer.stop()));
      await running;
    },
  };
}
