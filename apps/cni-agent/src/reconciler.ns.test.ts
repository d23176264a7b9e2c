// Namespaced tier (root): real network namespaces, real nft/ip through nsenter, real netns fds.
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger, createRegistry } from '@ambient-mesh/runtime';
import { AgentMetrics } from './metrics.ts';
import { MemoryNetnsLocator } from './netns-cache.ts';
import { addonNetnsOpener, nftPodRules } from './pod-rules.ts';
import { Reconciler } from './reconciler.ts';
import { FakeKube, FakeZds, makePod } from './testing/fakes.ts';
import { ambientTables, createNetns, fwmarkRules, run, ruleCount } from './testing/netns.ts';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

const AMBIENT = { 'istio.io/dataplane-mode': 'ambient' };
const TABLES = [
  'table inet istio-ambient-mangle',
  'table inet istio-ambient-nat',
  'table inet istio-ambient-raw',
];

function setup(label: string): {
  kube: FakeKube;
  locator: MemoryNetnsLocator;
  zds: FakeZds;
  ns: ReturnType<typeof createNetns>;
  make: () => Reconciler;
} {
  const ns = createNetns(label);
  cleanups.push(() => {
    ns.remove();
  });
  const kube = new FakeKube();
  const locator = new MemoryNetnsLocator();
  const zds = new FakeZds();
  kube.putNamespace('apps', AMBIENT);
  kube.putPod(makePod({ name: 'web', uid: `uid-${ns.name}` }));
  locator.remember('apps', 'web', ns.path);
  const make = (): Reconciler => {
    const r = new Reconciler({
      kube,
      rules: nftPodRules(),
      hostProbe: null,
      netns: addonNetnsOpener,
      locator,
      zds,
      logger: silentLogger(),
      metrics: new AgentMetrics({ registry: createRegistry() }),
      systemNamespace: 'istio-system',
      settings: { dnsCapture: true, ipv6: false, probeSnatV4: '169.254.7.127', probeSnatV6: 'fd16::1' },
    });
    cleanups.push(() => {
      r.stop();
    });
    return r;
  };
  return { kube, locator, zds, ns, make };
}

describe('Reconciler in real network namespaces', () => {
  it('enrols: the pod netns gets the ambient tables and the fwmark rule; un-enrolling removes them', async () => {
    const { kube, ns, make, zds } = setup('cni-enrol');
    const r = make();
    await r.start();
    expect(ambientTables(ns.name)).toEqual(TABLES);
    expect(fwmarkRules(ns.name)).toHaveLength(1);
    expect(kube.getPod('apps', 'web')!.annotations['ambient.istio.io/redirection']).toBe('enabled');
    r.namespaceChanged(kube.putNamespace('apps'));
    await r.idle();
    expect(ambientTables(ns.name)).toEqual([]);
    expect(fwmarkRules(ns.name)).toHaveLength(0);
    expect(zds.sent.at(-1)).toBe(`del:uid-${ns.name}`);
  });

  it('an agent restart converges without duplicate rules', async () => {
    const { ns, make } = setup('cni-restart');
    const first = make();
    await first.start();
    const before = ruleCount(ns.name);
    expect(before).toBeGreaterThan(5);
    first.stop();
    const second = make();
    await second.start();
    expect(ruleCount(ns.name)).toBe(before);
    expect(fwmarkRules(ns.name)).toHaveLength(1);
    expect(second.enrolledCount).toBe(1);
  });

  it('repairs drifted rules', async () => {
    const { ns, make } = setup('cni-drift');
    const r = make();
    await r.start();
    const before = ruleCount(ns.name);
    run('ip', 'netns', 'exec', ns.name, 'nft', 'delete', 'table', 'inet', 'istio-ambient-nat');
    expect(await r.checkDrift()).toBe(1);
    expect(ambientTables(ns.name)).toEqual(TABLES);
    expect(ruleCount(ns.name)).toBe(before);
  });

  it('a pod whose netns vanished before a restart is kept (no fd) without crashing', async () => {
    const { kube, ns, make } = setup('cni-vanish');
    const first = make();
    await first.start();
    first.stop();
    ns.remove();
    const second = make();
    await second.start();
    const uid = kube.getPod('apps', 'web')!.uid;
    expect(second.workloads.uids()).toEqual([uid]);
    expect(second.workloads.lookup(uid)!.netnsFd).toBeNull();
  });
});
