// The operator's composition root, `build(config, deps) -> Bound`: a KubeClient; informers on the
// Sail CRs and on the Deployments and DaemonSets they own; one serial work queue that reconciles
// each changed CR (and every CR again each resync period); an Event per condition transition;
// reconcile metrics on `/metrics`.
import { Informer, KubeClient, clientSource, loadKubeConfig, systemTimers } from '@ambient-mesh/kube';
import type { Timers } from '@ambient-mesh/kube';
import {
  createPlatform,
  livenessRoute,
  metricsRoutes,
  readinessRoute,
  startOpsServer,
  type OpsServer,
  type Platform,
} from '@ambient-mesh/runtime';
import type { Logger, Logs } from '@ambient-mesh/runtime';
import type { Config } from './config.ts';
import { ComponentReconciler, type ReconcileResult } from './component-reconciler.ts';
import { EVENTS_NAMESPACE, eventObject, transitions } from './events.ts';
import { InClusterCredentials } from './in-cluster.ts';
import { IstioReconciler, type IstioReconcileResult } from './istio-reconciler.ts';
import { readMeshReferences } from './mesh-references.ts';
import { TagReconciler } from './tag-reconciler.ts';
import type { MeshReferences } from './usage.ts';
import { OperatorMetrics } from './metrics.ts';
import { FIELD_MANAGER, OWNER_LABEL, sailPath, type SailKind, type SailObject } from './resources.ts';

export interface AppDeps {
  readonly client?: KubeClient;
  /** Logs and metrics registry from the runtime (`createPlatform`); by default made from config. */
  readonly platform?: Platform;
  readonly logs?: Logs;
  /** Drives the resync period and retries. */
  readonly timers?: Timers;
  /** The informers' back-off timers (default: the system's). */
  readonly informerTimers?: Timers;
  readonly now?: () => Date;
}

/** The kinds the operator reconciles. */
export type ReconciledKind = SailKind;

export interface Bound {
  readonly logs: Logs;
  readonly metrics: OperatorMetrics;
  /** The ops server (`/metrics`, `/healthz`, `/readyz`). */
  readonly ops: OpsServer;
  /** Settles when every queued reconcile has run. */
  idle(): Promise<void>;
  /** Queues a reconcile of one CR. */
  enqueue(kind: ReconciledKind, name: string): void;
  shutdown(): Promise<void>;
}

const KINDS: readonly ReconciledKind[] = [
  'Istio',
  'IstioRevision',
  'IstioRevisionTag',
  'IstioCNI',
  'ZTunnel',
];

/** After a failed reconcile, the next try (the resync would come later). */
const RETRY_MS = 2_000;

/** The owner label's value (`istiorevision.default`) back to the kind and name. */
export function ownerFromLabel(
  value: string | undefined,
): { kind: ReconciledKind; name: string } | undefined {
  if (value === undefined) return undefined;
  const dot = value.indexOf('.');
  const kind = KINDS.find(k => k.toLowerCase() === value.slice(0, dot));
  return dot < 0 || kind === undefined ? undefined : { kind, name: value.slice(dot + 1) };
}

export interface Meta {
  metadata: {
    name: string;
    generation?: number;
    finalizers?: string[];
    deletionTimestamp?: string;
    labels?: Record<string, string>;
    ownerReferences?: { kind: string; name: string }[];
    managedFields?: { manager?: string; operation?: string; time?: string }[];
  };
  spec?: unknown;
  status?: { conditions?: unknown[] };
}

/**
 * Who changed an owned object's spec, when it was not the operator: the manager of its newest
 * managedFields entry (undefined when the spec did not change or the operator wrote last).
 */
export function manualEditor(old: Meta, o: Meta): string | undefined {
  if (JSON.stringify(old.spec) === JSON.stringify(o.spec)) return undefined;
  const newest = [...(o.metadata.managedFields ?? [])]
    .sort((a, b) => (a.time ?? '').localeCompare(b.time ?? ''))
    .at(-1);
  return newest?.manager !== undefined && newest.manager !== FIELD_MANAGER ? newest.manager : undefined;
}

/** What a reconcile depends on in a CR: its spec, generation, finalizers and deletion. */
function actedOn(o: Meta): string {
  const m = o.metadata;
  return JSON.stringify([o.spec, m.generation, m.finalizers ?? [], m.deletionTimestamp ?? null]);
}

export async function build(config: Config, deps: AppDeps = {}): Promise<Bound> {
  const platform =
    deps.platform ??
    createPlatform({
      component: 'operator',
      logFormat: config.logFormat,
      logLevel: config.logLevel,
      processMetrics: true,
      ...(deps.logs !== undefined ? { logs: deps.logs } : {}),
    });
  const { logs } = platform;
  const metrics = new OperatorMetrics(platform.registry);
  const log: Logger = logs.for('reconcile');
  const timers = deps.timers ?? systemTimers;
  const now = deps.now ?? (() => new Date());
  const client =
    deps.client ??
    new KubeClient(
      config.inCluster && config.apiServer !== undefined
        ? new InClusterCredentials({ server: config.apiServer })
        : loadKubeConfig({
            inCluster: config.inCluster,
            ...(config.kubeconfig === undefined ? {} : { file: config.kubeconfig }),
          }),
    );
  const common = {
    client,
    render: { images: config.images },
    ...(deps.now === undefined ? {} : { now: deps.now }),
  };
  const components = new ComponentReconciler(common);
  const references = (): Promise<MeshReferences> => readMeshReferences(client);
  const istios = new IstioReconciler({ ...common, references });
  const tags = new TagReconciler({ ...common, references });

  const reconcile = (kind: ReconciledKind, name: string): Promise<IstioReconcileResult | ReconcileResult> => {
    switch (kind) {
      case 'Istio':
        return istios.reconcileIstio(name);
      case 'IstioRevision':
        return istios.reconcileRevision(name);
      case 'IstioRevisionTag':
        return tags.reconcile(name);
      case 'IstioCNI':
      case 'ZTunnel':
        return components.reconcile(kind, name);
    }
  };

  const record = async (
    kind: ReconciledKind,
    name: string,
    result: IstioReconcileResult | ReconcileResult,
  ): Promise<void> => {
    if (result.kind !== 'reconciled') return;
    for (const t of transitions(result.previous, result.status)) {
      metrics.event(kind, t.type);
      const cr = await client.find<SailObject<unknown>>(sailPath(kind, name));
      const body = eventObject(
        kind,
        { name, ...(cr?.metadata.uid === undefined ? {} : { uid: cr.metadata.uid }) },
        t,
        now(),
        config.podName,
      );
      await client.create(`/api/v1/namespaces/${EVENTS_NAMESPACE}/events`, body).catch((err: unknown) => {
        log.warn({ kind, name, err }, 'could not record an event');
      });
    }
  };

  // The single writer: one reconcile at a time, each key at most once in the queue.
  const queue = new Set<string>();
  const pending = new Set<unknown>();
  let running: Promise<void> = Promise.resolve();
  let stopped = false;
  const later = (kind: ReconciledKind, name: string, ms: number): void => {
    const handle: unknown = timers.setTimeout(() => {
      pending.delete(handle);
      enqueue(kind, name);
    }, ms);
    pending.add(handle);
  };
  const enqueue = (kind: ReconciledKind, name: string): void => {
    if (stopped) return;
    const key = `${kind}/${name}`;
    if (queue.has(key)) return;
    queue.add(key);
    running = running.then(async () => {
      queue.delete(key);
      if (stopped) return;
      const started = performance.now();
      try {
        const result = await reconcile(kind, name);
        const retry = 'retryAfterMs' in result ? result.retryAfterMs : undefined;
        metrics.reconciled(
          kind,
          retry === undefined ? 'success' : 'requeue_after',
          (performance.now() - started) / 1000,
        );
        if (retry !== undefined) later(kind, name, retry);
        log.info(
          {
            kind,
            name,
            result: result.kind,
            ...(result.kind === 'reconciled' ? { state: result.status.state, applied: result.applied } : {}),
          },
          'reconciled',
        );
        await record(kind, name, result);
      } catch (err) {
        metrics.reconciled(kind, 'error', (performance.now() - started) / 1000);
        log.warn({ kind, name, err }, `reconcile failed; retrying in ${RETRY_MS / 1000} s`);
        later(kind, name, RETRY_MS);
      }
    });
  };

  const onError = (what: string) => (err: unknown) => {
    log.warn({ informer: what, err }, 'list/watch failed; retrying');
  };
  const informerTimers = deps.informerTimers === undefined ? {} : { timers: deps.informerTimers };
  const allOf = (kind: ReconciledKind): void => {
    for (const o of crInformers.find(i => i.kind === kind)?.informer.cache.list() ?? [])
      enqueue(kind, o.metadata.name);
  };
  const crInformers: { kind: ReconciledKind; informer: Informer<Meta> }[] = KINDS.map(kind => {
    const informer = new Informer<Meta>({
      name: kind,
      source: clientSource(client, sailPath(kind)),
      onError: onError(kind),
      ...informerTimers,
    });
    const ownerIstios = (o: Meta): void => {
      for (const r of o.metadata.ownerReferences ?? []) if (r.kind === 'Istio') enqueue('Istio', r.name);
    };
    // What follows from a CR's status: a revision's feeds its Istio's status and the tags (their
    // target may have appeared or gone); an Istio's active revision is where its tags point; a
    // tag's target is what its revisions count as InUse.
    const dependents = (o: Meta): void => {
      if (kind === 'IstioRevision') {
        ownerIstios(o);
        allOf('IstioRevisionTag');
      } else if (kind === 'Istio') allOf('IstioRevisionTag');
      else if (kind === 'IstioRevisionTag') allOf('IstioRevision');
    };
    informer.on({
      add: o => {
        enqueue(kind, o.metadata.name);
        dependents(o);
      },
      // A status write (ours) is an update too: only a change of what we act on queues a
      // reconcile, so a quiet mesh costs nothing between resyncs.
      update: (old, o) => {
        if (actedOn(old) !== actedOn(o)) enqueue(kind, o.metadata.name);
        if (JSON.stringify(old.status) !== JSON.stringify(o.status)) dependents(o);
      },
      delete: o => {
        dependents(o);
      },
    });
    return { kind, informer };
  });
  // The workloads the CRs own: their status is the CRs' readiness, and a manual edit is reverted
  // by the owner's next reconcile.
  const workloadInformers = ['deployments', 'daemonsets'].map(plural => {
    const informer = new Informer<Meta>({
      name: plural,
      source: clientSource(client, `/apis/apps/v1/${plural}`, { query: { labelSelector: OWNER_LABEL } }),
      onError: onError(plural),
      ...informerTimers,
    });
    const owner = (o: Meta): void => {
      const of = ownerFromLabel(o.metadata.labels?.[OWNER_LABEL]);
      if (of !== undefined) enqueue(of.kind, of.name);
    };
    // Only a change of spec or status matters (a no-op apply may still touch metadata).
    const seen = (o: Meta): string => JSON.stringify([o.spec, o.status, o.metadata.labels]);
    informer.on({
      add: owner,
      update: (old, o) => {
        if (seen(old) === seen(o)) return;
        const editor = manualEditor(old, o);
        if (editor !== undefined) {
          log.warn(
            { object: `${plural}/${o.metadata.name}`, editor, owner: o.metadata.labels?.[OWNER_LABEL] },
            'an owned object was edited by hand; its owner reconciles it back',
          );
        }
        owner(o);
      },
      delete: owner,
    });
    return informer;
  });
  // Revisions' and tags' InUse follow the namespaces' labels (istio.io/rev, dataplane-mode, injection).
  const namespaces = new Informer<Meta>({
    name: 'namespaces',
    source: clientSource(client, '/api/v1/namespaces'),
    onError: onError('namespaces'),
    ...informerTimers,
  });
  const allRevisions = (): void => {
    allOf('IstioRevision');
    allOf('IstioRevisionTag');
  };
  const meshLabels = (o: Meta): string => {
    const l = o.metadata.labels ?? {};
    return JSON.stringify([l['istio.io/rev'], l['istio.io/dataplane-mode'], l['istio-injection']]);
  };
  namespaces.on({
    add: o => {
      if (meshLabels(o) !== JSON.stringify([null, null, null])) allRevisions();
    },
    update: (old, o) => {
      if (meshLabels(old) !== meshLabels(o)) allRevisions();
    },
    delete: allRevisions,
  });
  const allInformers = [...crInformers.map(i => i.informer), ...workloadInformers, namespaces];
  await Promise.all(allInformers.map(i => i.start()));

  const ops = await startOpsServer({
    name: 'ops',
    address: { host: '0.0.0.0', port: config.metricsPort },
    routes: [
      livenessRoute('/healthz'),
      readinessRoute(() => !stopped, { path: '/readyz' }),
      ...metricsRoutes(platform.registry),
    ],
    logger: logs.for('ops'),
  });

  // Re-armed after each round (timers with only setTimeout drive it in tests).
  let resync: unknown;
  const arm = (): void => {
    resync = timers.setTimeout(() => {
      for (const { kind, informer } of crInformers) {
        for (const o of informer.cache.list()) enqueue(kind, o.metadata.name);
      }
      if (!stopped) arm();
    }, config.resyncMs);
  };
  arm();

  return {
    logs,
    metrics,
    ops,
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
      for (const h of pending) timers.clearTimeout(h);
      await Promise.all(allInformers.map(i => i.stop()));
      await running;
      await ops.close();
    },
  };
}
