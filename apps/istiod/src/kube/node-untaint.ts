/**
 * The node untaint controller, as upstream istiod runs it (`PILOT_ENABLE_NODE_UNTAINT_CONTROLLERS`):
 * nodes are provisioned with the `cni.istio.io/not-ready` NoSchedule taint, so the scheduler holds
 * back every pod without a toleration for it; once the CNI agent pod on a node (label
 * `k8s-app=istio-cni-node` in the CNI namespace) is Ready, the leader of the `istio-node-untaint`
 * Lease removes the taint. Pods scheduled afterwards find an agent that enrols them.
 *
 * The decision is the pure `untaintDecision`; `NodeUntainter` keeps the informers' view of nodes
 * and ready CNI pods (single writer: the informer events) and writes through a `NodeTaintPatcher`.
 */
import { errorMessage } from '@ambient-mesh/errors';
import type { Logger, Timers, TimerHandle } from '@ambient-mesh/runtime';
import type { KubeObject, Pod } from './objects.ts';

/** Upstream's taint key (`pilot/pkg/serviceregistry/kube/controller`, `TaintName`). */
export const NOT_READY_TAINT = 'cni.istio.io/not-ready';
/** The labels of the CNI agent pods the controller waits for (upstream's selector). */
export const CNI_AGENT_LABELS: Readonly<Record<string, string>> = Object.freeze({
  'k8s-app': 'istio-cni-node',
});

export interface Taint {
  readonly key: string;
  readonly value?: string;
  readonly effect: string;
  readonly timeAdded?: string;
}

export interface TaintedNode extends KubeObject {
  readonly spec?: { readonly taints?: readonly Taint[] };
}

export type UntaintDecision =
  | {
      readonly kind: 'untaint';
      readonly node: string;
      /** The node version the decision was made on; the write is conditional on it. */
      readonly resourceVersion: string;
      /** The node's taints without the not-ready one. */
      readonly taints: readonly Taint[];
    }
  | { readonly kind: 'keep'; readonly node: string; readonly reason: 'not-tainted' | 'cni-not-ready' };

/** A CNI agent pod of `cniNamespace` that is Ready and not being deleted, and the node it runs on. */
export function readyCniAgentNode(pod: Pod, cniNamespace: string): string | undefined {
  const meta = pod.metadata;
  if (meta?.namespace !== cniNamespace || meta.deletionTimestamp !== undefined) return undefined;
  for (const [k, v] of Object.entries(CNI_AGENT_LABELS)) if (meta.labels?.[k] !== v) return undefined;
  const ready = pod.status?.conditions?.some(c => c.type === 'Ready' && c.status === 'True') === true;
  const node = pod.spec?.nodeName ?? '';
  return ready && node !== '' ? node : undefined;
}

/** Whether the not-ready taint comes off `node`, given whether a Ready CNI agent runs on it. */
export function untaintDecision(node: TaintedNode, cniAgentReady: boolean): UntaintDecision {
  const name = node.metadata?.name ?? '';
  const taints = node.spec?.taints ?? [];
  if (!taints.some(t => t.key === NOT_READY_TAINT))
    return { kind: 'keep', node: name, reason: 'not-tainted' };
  if (!cniAgentReady) return { kind: 'keep', node: name, reason: 'cni-not-ready' };
  return {
    kind: 'untaint',
    node: name,
    resourceVersion: node.metadata?.resourceVersion ?? '',
    // Every effect of the key goes, as upstream's `deleteTaint` does.
    taints: taints.filter(t => t.key !== NOT_READY_TAINT),
  };
}

/** Writes a node's taints, conditional on `resourceVersion` (a conflict rejects). */
export type NodeTaintPatcher = (
  node: string,
  resourceVersion: string,
  taints: readonly Taint[],
) => Promise<void>;

export interface NodeUntainterOptions {
  /** Namespace of the CNI agent pods (upstream: the CNI namespace, istiod's by default). */
  readonly cniNamespace: string;
  readonly patch: NodeTaintPatcher;
  /** Only the leader of the `istio-node-untaint` Lease writes. */
  readonly isLeader: () => boolean;
  readonly logger: Logger;
  readonly timers: Timers;
  /** Attempts per node before giving up until its next event (upstream: 5). */
  readonly maxAttempts?: number;
  readonly onUntainted?: (node: string) => void;
}

const RETRY_BASE_MS = 250;

export class NodeUntainter {
  readonly #opts: NodeUntainterOptions;
  readonly #nodes = new Map<string, TaintedNode>();
  /** Ready CNI agent pods (`ns/name`) by the node they run on. */
  readonly #readyPods = new Map<string, string>();
  readonly #inFlight = new Set<string>();
  /** Nodes that changed while their write was in flight: decided again when it ends. */
  readonly #again = new Set<string>();
  readonly #attempts = new Map<string, number>();
  readonly #retries = new Map<string, TimerHandle>();
  #closed = false;

  constructor(opts: NodeUntainterOptions) {
    this.#opts = opts;
  }

  upsertNode(node: TaintedNode): void {
    const name = node.metadata?.name;
    if (name === undefined || name === '') return;
    this.#nodes.set(name, node);
    this.#reconcile(name);
  }

  deleteNode(node: KubeObject): void {
    const name = node.metadata?.name ?? '';
    this.#nodes.delete(name);
    this.#attempts.delete(name);
    this.#opts.timers.clearTimeout(this.#retries.get(name));
    this.#retries.delete(name);
  }

  upsertPod(pod: Pod): void {
    const key = `${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`;
    const node = readyCniAgentNode(pod, this.#opts.cniNamespace);
    if (node === undefined) {
      this.#readyPods.delete(key);
      return;
    }
    this.#readyPods.set(key, node);
    this.#reconcile(node);
  }

  deletePod(pod: Pod): void {
    this.#readyPods.delete(`${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`);
  }

  /** Decides every known node again (a replica that becomes the leader catches up). */
  resync(): void {
    for (const name of this.#nodes.keys()) this.#reconcile(name);
  }

  close(): void {
    this.#closed = true;
    for (const h of this.#retries.values()) this.#opts.timers.clearTimeout(h);
    this.#retries.clear();
  }

  #cniReadyOn(node: string): boolean {
    for (const n of this.#readyPods.values()) if (n === node) return true;
    return false;
  }

  #reconcile(name: string): void {
    if (this.#closed || !this.#opts.isLeader()) return;
    const node = this.#nodes.get(name);
    if (node === undefined) return;
    if (this.#inFlight.has(name)) {
      this.#again.add(name);
      return;
    }
    const decision = untaintDecision(node, this.#cniReadyOn(name));
    if (decision.kind === 'keep') {
      if (decision.reason === 'cni-not-ready') {
        this.#opts.logger.debug({ node: name }, 'node keeps the not-ready taint: no Ready CNI agent on it');
      }
      return;
    }
    this.#write(decision);
  }

  #write(decision: Extract<UntaintDecision, { kind: 'untaint' }>): void {
    const { node } = decision;
    const { logger } = this.#opts;
    this.#inFlight.add(node);
    this.#opts.timers.clearTimeout(this.#retries.get(node));
    this.#retries.delete(node);
    const attempt = (this.#attempts.get(node) ?? 0) + 1;
    this.#attempts.set(node, attempt);
    void this.#opts
      .patch(node, decision.resourceVersion, decision.taints)
      .then(
        () => {
          this.#attempts.delete(node);
          logger.info(
            { node, taint: NOT_READY_TAINT },
            'removed the not-ready taint: the CNI agent on the node is Ready',
          );
          this.#opts.onUntainted?.(node);
        },
        (err: unknown) => {
          const max = this.#opts.maxAttempts ?? 5;
          if (attempt >= max) {
            this.#attempts.delete(node);
            logger.error(
              { node, attempts: attempt, err: errorMessage(err) },
              'could not remove the not-ready taint; check istiod may patch nodes (ClusterRole); retrying on the next node or CNI agent event',
            );
            return;
          }
          const delayMs = RETRY_BASE_MS * 2 ** (attempt - 1);
          logger.warn(
            { node, attempt, retryInMs: delayMs, err: errorMessage(err) },
            'could not remove the not-ready taint; retrying',
          );
          this.#retries.set(
            node,
            this.#opts.timers.setTimeout(() => {
              this.#retries.delete(node);
              this.#reconcile(node);
            }, delayMs),
          );
        },
      )
      .finally(() => {
        this.#inFlight.delete(node);
        if (this.#again.delete(node)) this.#reconcile(node);
      });
  }
}
