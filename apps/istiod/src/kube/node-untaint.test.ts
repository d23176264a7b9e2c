import { silentLogger } from '@ambient-mesh/runtime';
import { FakeTimers } from '@ambient-mesh/runtime/testing';
import { describe, expect, it } from 'vitest';
import {
  NOT_READY_TAINT,
  NodeUntainter,
  readyCniAgentNode,
  untaintDecision,
  type Taint,
  type TaintedNode,
} from './node-untaint.ts';
import type { Pod } from './objects.ts';

const NOT_READY: Taint = { key: NOT_READY_TAINT, value: 'true', effect: 'NoSchedule' };
const OTHER: Taint = { key: 'dedicated', value: 'infra', effect: 'NoSchedule' };

function node(name: string, taints: readonly Taint[], resourceVersion = '1'): TaintedNode {
  return { metadata: { name, resourceVersion }, spec: { taints } };
}

function cniPod(
  name: string,
  nodeName: string,
  ready: boolean,
  extra: { namespace?: string; labels?: Record<string, string>; deleting?: boolean } = {},
): Pod {
  return {
    metadata: {
      name,
      namespace: extra.namespace ?? 'istio-system',
      labels: extra.labels ?? { 'k8s-app': 'istio-cni-node' },
      ...(extra.deleting === true ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}),
    },
    spec: { nodeName },
    status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
  };
}

describe('untaintDecision', () => {
  it('removes only the not-ready taint, on the version it read, when the CNI agent is Ready', () => {
    expect(untaintDecision(node('n1', [OTHER, NOT_READY], '42'), true)).toEqual({
      kind: 'untaint',
      node: 'n1',
      resourceVersion: '42',
      taints: [OTHER],
    });
  });

  it('removes the key with every effect, as upstream does', () => {
    const noExec: Taint = { key: NOT_READY_TAINT, effect: 'NoExecute' };
    const d = untaintDecision(node('n1', [NOT_READY, noExec]), true);
    expect(d).toMatchObject({ kind: 'untaint', taints: [] });
  });

  it('keeps the taint while no Ready CNI agent runs on the node', () => {
    expect(untaintDecision(node('n1', [NOT_READY]), false)).toEqual({
      kind: 'keep',
      node: 'n1',
      reason: 'cni-not-ready',
    });
  });

  it('leaves a node without the taint alone, whatever the agent', () => {
    expect(untaintDecision(node('n1', [OTHER]), true)).toEqual({
      kind: 'keep',
      node: 'n1',
      reason: 'not-tainted',
    });
    expect(untaintDecision({ metadata: { name: 'n2' } }, false)).toEqual({
      kind: 'keep',
      node: 'n2',
      reason: 'not-tainted',
    });
  });
});

describe('readyCniAgentNode', () => {
  it('answers the node of a Ready CNI agent pod of the CNI namespace', () => {
    expect(readyCniAgentNode(cniPod('a', 'n1', true), 'istio-system')).toBe('n1');
  });

  it('ignores pods that are not Ready, elsewhere, differently labelled, being deleted or unscheduled', () => {
    expect(readyCniAgentNode(cniPod('a', 'n1', false), 'istio-system')).toBeUndefined();
    expect(
      readyCniAgentNode(cniPod('a', 'n1', true, { namespace: 'other' }), 'istio-system'),
    ).toBeUndefined();
    expect(
      readyCniAgentNode(cniPod('a', 'n1', true, { labels: { app: 'x' } }), 'istio-system'),
    ).toBeUndefined();
    expect(readyCniAgentNode(cniPod('a', 'n1', true, { deleting: true }), 'istio-system')).toBeUndefined();
    expect(readyCniAgentNode(cniPod('a', '', true), 'istio-system')).toBeUndefined();
  });
});

interface Write {
  readonly node: string;
  readonly resourceVersion: string;
  readonly taints: readonly Taint[];
}

function harness(opts: { leader?: boolean; fail?: number } = {}) {
  const writes: Write[] = [];
  let failures = opts.fail ?? 0;
  let leader = opts.leader ?? true;
  const timers = new FakeTimers();
  const untainter = new NodeUntainter({
    cniNamespace: 'istio-system',
    isLeader: () => leader,
    logger: silentLogger(),
    timers,
    patch: (n, resourceVersion, taints) => {
      writes.push({ node: n, resourceVersion, taints });
      if (failures > 0) {
        failures--;
        return Promise.reject(new Error('409 Conflict'));
      }
      return Promise.resolve();
    },
  });
  return {
    writes,
    timers,
    untainter,
    setLeader: (v: boolean) => {
      leader = v;
    },
  };
}

const settle = (): Promise<void> => new Promise(resolve => setImmediate(resolve));

describe('NodeUntainter', () => {
  it('untaints a node when its CNI agent becomes Ready, not before, and leaves other nodes', async () => {
    const h = harness();
    h.untainter.upsertNode(node('n1', [NOT_READY, OTHER], '5'));
    h.untainter.upsertNode(node('n2', [NOT_READY], '6'));
    h.untainter.upsertPod(cniPod('cni-a', 'n1', false));
    h.untainter.upsertPod(cniPod('cni-b', 'n2', false));
    await settle();
    expect(h.writes).toEqual([]);

    h.untainter.upsertPod(cniPod('cni-a', 'n1', true));
    await settle();
    expect(h.writes).toEqual([{ node: 'n1', resourceVersion: '5', taints: [OTHER] }]);
  });

  it('untaints a node tainted after its agent was already Ready', async () => {
    const h = harness();
    h.untainter.upsertPod(cniPod('cni-a', 'n1', true));
    h.untainter.upsertNode(node('n1', []));
    await settle();
    expect(h.writes).toEqual([]);
    h.untainter.upsertNode(node('n1', [NOT_READY], '9'));
    await settle();
    expect(h.writes).toEqual([{ node: 'n1', resourceVersion: '9', taints: [] }]);
  });

  it('forgets an agent that went away: the node stays tainted', async () => {
    const h = harness();
    const pod = cniPod('cni-a', 'n1', true);
    h.untainter.upsertPod(pod);
    h.untainter.deletePod(pod);
    h.untainter.upsertNode(node('n1', [NOT_READY]));
    await settle();
    expect(h.writes).toEqual([]);
  });

  it('only the leader writes; a new leader catches up on resync', async () => {
    const h = harness({ leader: false });
    h.untainter.upsertNode(node('n1', [NOT_READY]));
    h.untainter.upsertPod(cniPod('cni-a', 'n1', true));
    await settle();
    expect(h.writes).toEqual([]);
    h.setLeader(true);
    h.untainter.resync();
    await settle();
    expect(h.writes.map(w => w.node)).toEqual(['n1']);
  });

  it('retries a failed write with back-off, deciding again on the latest node', async () => {
    const h = harness({ fail: 1 });
    h.untainter.upsertPod(cniPod('cni-a', 'n1', true));
    h.untainter.upsertNode(node('n1', [NOT_READY], '1'));
    await settle();
    expect(h.writes).toHaveLength(1);
    // The node changed meanwhile (the conflict's cause): the retry uses the new version.
    h.untainter.upsertNode(node('n1', [NOT_READY, OTHER], '2'));
    await settle();
    h.timers.runAll();
    await settle();
    expect(h.writes.at(-1)).toEqual({ node: 'n1', resourceVersion: '2', taints: [OTHER] });
  });

  it('gives up after the last attempt until the next event', async () => {
    const h = harness({ fail: 100 });
    h.untainter.upsertPod(cniPod('cni-a', 'n1', true));
    h.untainter.upsertNode(node('n1', [NOT_READY]));
    for (let i = 0; i < 10; i++) {
      await settle();
      h.timers.runAll();
    }
    expect(h.writes).toHaveLength(5);
    expect(h.timers.pending).toBe(0);
    h.untainter.upsertNode(node('n1', [NOT_READY], '3'));
    await settle();
    expect(h.writes).toHaveLength(6);
  });

  it('writes nothing after close', async () => {
    const h = harness();
    h.untainter.close();
    h.untainter.upsertPod(cniPod('cni-a', 'n1', true));
    h.untainter.upsertNode(node('n1', [NOT_READY]));
    await settle();
    expect(h.writes).toEqual([]);
  });
});
