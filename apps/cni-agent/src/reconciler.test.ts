import { beforeEach, describe, expect, it } from 'vitest';
import { silentLogger, createRegistry } from '@ambient-mesh/runtime';
import { AgentMetrics } from './metrics.ts';
import { MemoryNetnsLocator } from './netns-cache.ts';
import { Reconciler } from './reconciler.ts';
import type { ReconcilerOptions } from './reconciler.ts';
import { FakeHostProbe, FakeKube, FakeNetns, FakeRules, FakeZds, makePod } from './testing/fakes.ts';

const AMBIENT = { 'istio.io/dataplane-mode': 'ambient' };
const REDIRECTION = 'ambient.istio.io/redirection';

let kube: FakeKube;
let rules: FakeRules;
let hostProbe: FakeHostProbe;
let netns: FakeNetns;
let locator: MemoryNetnsLocator;
let zds: FakeZds;
let metrics: AgentMetrics;

function reconciler(overrides: Partial<ReconcilerOptions> = {}): Reconciler {
  return new Reconciler({
    kube,
    rules,
    hostProbe,
    netns,
    locator,
    zds,
    metrics,
    logger: silentLogger(),
    systemNamespace: 'istio-system',
    settings: { dnsCapture: true, ipv6: false, probeSnatV4: '169.254.7.127', probeSnatV6: 'fd16::1' },
    ...overrides,
  });
}

/** A running pod whose netns exists and is known to the locator. */
function runningPod(name: string, extra: Parameters<typeof makePod>[0] = {}): ReturnType<typeof makePod> {
  const pod = kube.putPod(makePod({ name, uid: `uid-${name}`, ...extra }));
  const path = `/run/netns/${name}`;
  netns.existing.add(path);
  locator.remember(pod.namespace, pod.name, path);
  return pod;
}

async function metricValue(name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = (await metrics.registry.getMetricsAsJSON()).find(m => m.name === name);
  const value = metric?.values.find(v => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
  return value?.value ?? 0;
}

beforeEach(() => {
  kube = new FakeKube();
  rules = new FakeRules();
  hostProbe = new FakeHostProbe();
  netns = new FakeNetns();
  locator = new MemoryNetnsLocator();
  zds = new FakeZds();
  metrics = new AgentMetrics({ registry: createRegistry() });
});

describe('Reconciler enrolment', () => {
  it('labelling a namespace ambient enrols its running pods: rules, probe IPs, Add, annotation enabled', async () => {
    kube.putNamespace('apps');
    runningPod('a');
    runningPod('b', { ips: ['10.244.1.6'] });
    const r = reconciler();
    await r.start();
    expect(rules.installed.size).toBe(0);
    const ns = kube.putNamespace('apps', AMBIENT);
    r.namespaceChanged(ns);
    await r.idle();
    expect([...rules.installed.keys()].sort()).toEqual(['/run/netns/a', '/run/netns/b']);
    expect(zds.sent.sort()).toEqual(['add:uid-a', 'add:uid-b']);
    expect(kube.getPod('apps', 'a')!.annotations[REDIRECTION]).toBe('enabled');
    expect(kube.getPod('apps', 'b')!.annotations[REDIRECTION]).toBe('enabled');
    expect([...hostProbe.ips.entries()].sort()).toEqual([
      ['10.244.1.5', 'uid-a'],
      ['10.244.1.6', 'uid-b'],
    ]);
    expect(r.workloads.lookup('uid-a')).toMatchObject({
      info: { name: 'a', namespace: 'apps', serviceAccount: 'default' },
      netnsFd: expect.any(Number),
    });
    expect(await metricValue('istio_cni_enrolled_pods')).toBe(2);
  });

  it('removing the label sends Del, removes the rules and the annotation, and closes the fd', async () => {
    kube.putNamespace('apps', AMBIENT);
    runningPod('a');
    const r = reconciler();
    await r.start();
    expect(netns.open_.size).toBe(1);
    r.namespaceChanged(kube.putNamespace('apps'));
    await r.idle();
    expect(zds.sent).toEqual(['add:uid-a', 'del:uid-a']);
    expect(rules.installed.size).toBe(0);
    expect(kube.getPod('apps', 'a')!.annotations).not.toHaveProperty(REDIRECTION);
    expect(kube.patches.map(p => p.value)).toEqual(['enabled', null]);
    expect(netns.open_.size).toBe(0);
    expect(hostProbe.ips.size).toBe(0);
    expect(r.workloads.uids()).toEqual([]);
  });

  it('a pod opting out with dataplane-mode=none in an ambient namespace is un-enrolled', async () => {
    kube.putNamespace('apps', AMBIENT);
    const pod = runningPod('a');
    const r = reconciler();
    await r.start();
    r.podChanged(
      kube.putPod({ ...kube.getPod('apps', 'a')!, labels: { 'istio.io/dataplane-mode': 'none' } }),
    );
    await r.idle();
    expect(r.enrolled(pod.uid)).toBeUndefined();
    expect(zds.sent).toContain('del:uid-a');
  });

  it('marks pods pending when no ztunnel is connected, and enabled after a ztunnel acks its snapshot', async () => {
    kube.putNamespace('apps', AMBIENT);
    runningPod('a');
    zds.connected = false;
    const r = reconciler();
    await r.start();
    expect(kube.getPod('apps', 'a')!.annotations[REDIRECTION]).toBe('pending');
    expect(rules.installed.has('/run/netns/a')).toBe(true);
    expect(await metricValue('istio_cni_pending_pods')).toBe(1);
    zds.connected = true;
    r.onSnapshot({ connection: 1, added: ['uid-a'], kept: [], rejected: [] });
    await r.idle();
    expect(kube.getPod('apps', 'a')!.annotations[REDIRECTION]).toBe('enabled');
    expect(await metricValue('istio_cni_pending_pods')).toBe(0);
  });

  it('keeps a NACKed pod pending and counts a ZDS failure', async () => {
    kube.putNamespace('apps', AMBIENT);
    runningPod('a');
    zds.nack = 'bind failed';
    await reconciler().start();
    expect(kube.getPod('apps', 'a')!.annotations[REDIRECTION]).toBe('pending');
    expect(await metricValue('istio_cni_enrolment_failures_total', { reason: 'zds' })).toBe(1);
  });

  it('never enrols sidecar pods or ztunnel itself', async () => {
    kube.putNamespace('apps', AMBIENT);
    kube.putNamespace('istio-system', AMBIENT);
    runningPod('s', { annotations: { 'sidecar.istio.io/status': '{}' } });
    runningPod('zt', { namespace: 'istio-system', labels: { app: 'ztunnel' } });
    locator.remember('istio-system', 'zt', '/run/netns/zt');
    const r = reconciler();
    await r.start();
    expect(r.enrolledCount).toBe(0);
    expect(rules.calls).toEqual([]);
  });

  it('a failed rule apply fails the pod: no Add, no annotation, fd closed, failure counted', async () => {
    kube.putNamespace('apps', AMBIENT);
    runningPod('a');
    rules.failApply = true;
    const r = reconciler();
    await r.start();
    expect(zds.sent).toEqual([]);
    expect(kube.patches).toEqual([]);
    expect(netns.open_.size).toBe(0);
    expect(r.enrolledCount).toBe(0);
    expect(await metricValue('istio_cni_enrolment_failures_total', { reason: 'rules' })).toBe(1);
  });

  it('re-applies with new options when the dns-capture annotation changes', async () => {
    kube.putNamespace('apps', AMBIENT);
    runningPod('a');
    const r = reconciler();
    await r.start();
    expect(rules.installed.get('/run/netns/a')!.dnsCapture).toBe(true);
    const pod = kube.getPod('apps', 'a')!;
    r.podChanged(
      kube.putPod({ ...pod, annotations: { ...pod.annotations, 'ambient.istio.io/dns-capture': 'false' } }),
    );
    await r.idle();
    expect(rules.installed.get('/run/netns/a')!.dnsCapture).toBe(false);
    expect(rules.calls).toEqual(['apply /run/netns/a', 'remove /run/netns/a', 'apply /run/netns/a']);
  });
});

describe('Reconciler pod lifecycle and bad input', () => {
  it('a deleted pod gets Del and its fd closed, without touching its (vanishing) rules or annotation', async () => {
    kube.putNamespace('apps', AMBIENT);
    const pod = runningPod('a');
    const r = reconciler();
    await r.start();
    kube.pods.delete('apps/a');
    r.podDeleted(pod);
    await r.idle();
    expect(zds.sent).toEqual(['add:uid-a', 'del:uid-a']);
    expect(rules.calls).toEqual(['apply /run/netns/a']);
    expect(kube.patches.map(p => p.value)).toEqual(['enabled']);
    expect(netns.open_.size).toBe(0);
    expect(locator.find('apps', 'a')).toBeNull();
  });

  it('a previously enrolled pod whose netns vanished is logged and kept (Keep), with no crash', async () => {
    kube.putNamespace('apps', AMBIENT);
    const pod = runningPod('a', { annotations: { [REDIRECTION]: 'enabled' } });
    netns.existing.delete('/run/netns/a');
    const r = reconciler();
    await r.start();
    expect(r.workloads.uids()).toEqual([pod.uid]);
    expect(r.workloads.lookup(pod.uid)!.netnsFd).toBeNull();
    expect(zds.sent).toEqual([]);
    expect(kube.patches).toEqual([]);
    expect(await metricValue('istio_cni_enrolment_failures_total', { reason: 'netns' })).toBe(1);
  });

  it('a new pod whose netns path is gone is not enrolled and not kept', async () => {
    kube.putNamespace('apps', AMBIENT);
    runningPod('a');
    netns.existing.delete('/run/netns/a');
    const r = reconciler();
    await r.start();
    expect(r.enrolledCount).toBe(0);
    expect(await metricValue('istio_cni_enrolment_failures_total', { reason: 'netns' })).toBe(1);
  });

  it('restart: already-enrolled pods get their rules converged once each and keep their annotation', async () => {
    kube.putNamespace('apps', AMBIENT);
    runningPod('a', { annotations: { [REDIRECTION]: 'enabled' } });
    runningPod('b', { annotations: { [REDIRECTION]: 'enabled' } });
    rules.installed.set('/run/netns/a', {});
    const r = reconciler();
    await r.start();
    expect(rules.calls.sort()).toEqual(['apply /run/netns/a', 'apply /run/netns/b']);
    expect(rules.installed.size).toBe(2);
    expect(kube.patches).toEqual([]);
    expect(r.enrolledCount).toBe(2);
  });

  it('restart: keeps enabled without sending Add until the snapshot, then NACKed pods turn pending', async () => {
    kube.putNamespace('apps', AMBIENT);
    runningPod('a', { annotations: { [REDIRECTION]: 'enabled' } });
    runningPod('b', { annotations: { [REDIRECTION]: 'enabled' } });
    const r = reconciler();
    await r.start();
    expect(zds.sent).toEqual([]);
    r.onSnapshot({
      connection: 1,
      added: ['uid-a'],
      kept: [],
      rejected: [{ uid: 'uid-b', error: 'bind failed' }],
    });
    await r.idle();
    expect(kube.patches).toEqual([{ pod: 'apps/b', value: 'pending' }]);
    expect(r.enrolled('uid-a')!.state).toBe('enabled');
  });

  it('restart with reconcileOnStartup off re-registers enrolled pods without touching their rules', async () => {
    kube.putNamespace('apps', AMBIENT);
    runningPod('a', { annotations: { [REDIRECTION]: 'enabled' } });
    const r = reconciler({ reconcileOnStartup: false });
    await r.start();
    expect(rules.calls).toEqual([]);
    expect(r.workloads.lookup('uid-a')!.netnsFd).not.toBeNull();
  });

  it('restart: a pod relabelled out while the agent was down loses its stale rules and annotation', async () => {
    kube.putNamespace('apps');
    runningPod('a', { annotations: { [REDIRECTION]: 'enabled' } });
    rules.installed.set('/run/netns/a', {});
    const r = reconciler();
    await r.start();
    expect(rules.installed.size).toBe(0);
    expect(kube.patches).toEqual([{ pod: 'apps/a', value: null }]);
    expect(zds.sent).toEqual(['del:uid-a']);
    expect(netns.open_.size).toBe(0);
  });

  it('the drift check re-applies drifted rules and counts the repair', async () => {
    kube.putNamespace('apps', AMBIENT);
    runningPod('a');
    runningPod('b');
    const r = reconciler();
    await r.start();
    rules.drifted.add('/run/netns/b');
    expect(await r.checkDrift()).toBe(1);
    expect(rules.calls.filter(c => c === 'apply /run/netns/b')).toHaveLength(2);
    expect(await metricValue('istio_cni_rule_drift_repairs_total')).toBe(1);
    expect(await r.checkDrift()).toBe(0);
  });

  it('finds the netns of a pod the plugin never reported through the scanner, by its IPs', async () => {
    kube.putNamespace('apps', AMBIENT);
    kube.putPod(makePod({ name: 'old', uid: 'uid-old', ips: ['10.244.1.77'] }));
    netns.existing.add('/run/netns/cni-old');
    const scanned: string[][] = [];
    const r = reconciler({
      scanner: ips => {
        scanned.push([...ips]);
        return Promise.resolve(ips.includes('10.244.1.77') ? '/run/netns/cni-old' : null);
      },
    });
    await r.start();
    expect(scanned).toEqual([['10.244.1.77']]);
    expect(rules.installed.has('/run/netns/cni-old')).toBe(true);
    expect(locator.find('apps', 'old')).toBe('/run/netns/cni-old');
  });

  it('stop() closes every netns fd', async () => {
    kube.putNamespace('apps', AMBIENT);
    runningPod('a');
    const r = reconciler();
    await r.start();
    r.stop();
    expect(netns.open_.size).toBe(0);
  });
});

describe('Reconciler CNI ADD', () => {
  it('enrols a pod the cache has not seen yet, with the IPs from the plugin', async () => {
    kube.putNamespace('apps', AMBIENT);
    const r = reconciler();
    await r.start();
    const pod = makePod({ name: 'new', uid: 'uid-new', ips: [], phase: 'Pending' });
    kube.apiOnly.set('apps/new', pod);
    netns.existing.add('/run/netns/cni-1');
    const outcome = await r.cniAdd({
      namespace: 'apps',
      name: 'new',
      netnsPath: '/run/netns/cni-1',
      ips: ['10.244.1.9'],
    });
    expect(outcome).toEqual({ kind: 'enrolled', state: 'enabled' });
    expect(rules.installed.has('/run/netns/cni-1')).toBe(true);
    expect(hostProbe.ips.get('10.244.1.9')).toBe('uid-new');
    expect(locator.find('apps', 'new')).toBe('/run/netns/cni-1');
  });

  it('answers not-enrolled for a pod outside ambient and touches nothing', async () => {
    kube.putNamespace('apps');
    kube.putPod(makePod({ name: 'plain', uid: 'uid-plain' }));
    netns.existing.add('/run/netns/cni-2');
    const r = reconciler();
    await r.start();
    const outcome = await r.cniAdd({
      namespace: 'apps',
      name: 'plain',
      netnsPath: '/run/netns/cni-2',
      ips: [],
    });
    expect(outcome.kind).toBe('not-enrolled');
    expect(rules.calls).toEqual([]);
  });

  it('fails for an unknown pod', async () => {
    const r = reconciler();
    await r.start();
    const outcome = await r.cniAdd({ namespace: 'apps', name: 'ghost', netnsPath: '/run/netns/x', ips: [] });
    expect(outcome).toMatchObject({ kind: 'failed', reason: 'kube' });
  });

  it('fails when the netns in the event does not exist', async () => {
    kube.putNamespace('apps', AMBIENT);
    kube.putPod(makePod({ name: 'p', uid: 'uid-p' }));
    const r = reconciler();
    await r.start();
    const outcome = await r.cniAdd({
      namespace: 'apps',
      name: 'p',
      netnsPath: '/run/netns/missing',
      ips: [],
    });
    expect(outcome.kind).toBe('waiting');
    expect(r.enrolledCount).toBe(0);
  });

  it('fails closed while no ztunnel is connected: the ADD fails with reason zds and the sandbox is forgotten', async () => {
    kube.putNamespace('apps', AMBIENT);
    kube.putPod(makePod({ name: 'p', uid: 'uid-p', ips: [], phase: 'Pending' }));
    netns.existing.add('/run/netns/try-1');
    zds.connected = false;
    const r = reconciler();
    await r.start();
    const outcome = await r.cniAdd({
      namespace: 'apps',
      name: 'p',
      netnsPath: '/run/netns/try-1',
      ips: ['10.244.1.7'],
    });
    expect(outcome).toMatchObject({ kind: 'failed', reason: 'zds' });
    expect(outcome.kind === 'failed' ? outcome.error : '').toContain('no ztunnel connection');
    // Nothing of the dead sandbox is kept: no registry entry, no open fd, no netns path, no probe IP.
    expect(r.enrolledCount).toBe(0);
    expect(netns.open_.size).toBe(0);
    expect(locator.find('apps', 'p')).toBeNull();
    expect(hostProbe.ips.size).toBe(0);
    expect(r.workloads.uids()).toEqual([]);

    // The kubelet retries with a new sandbox once ztunnel is back: enrolled and enabled.
    zds.connected = true;
    netns.existing.delete('/run/netns/try-1');
    netns.existing.add('/run/netns/try-2');
    const retried = await r.cniAdd({
      namespace: 'apps',
      name: 'p',
      netnsPath: '/run/netns/try-2',
      ips: ['10.244.1.7'],
    });
    expect(retried).toEqual({ kind: 'enrolled', state: 'enabled' });
    expect(rules.installed.has('/run/netns/try-2')).toBe(true);
    expect(r.workloads.lookup('uid-p')?.netnsFd).not.toBeNull();
    expect(netns.pathOf(r.workloads.lookup('uid-p')!.netnsFd!)).toBe('/run/netns/try-2');
    expect(zds.sent).toEqual(['add:uid-p']);
  });

  it("fails the ADD when ztunnel NACKs the Add, sends it a Del, and names ztunnel's error", async () => {
    kube.putNamespace('apps', AMBIENT);
    kube.putPod(makePod({ name: 'p', uid: 'uid-p' }));
    netns.existing.add('/run/netns/n');
    zds.nack = 'bind failed';
    const r = reconciler();
    await r.start();
    const outcome = await r.cniAdd({ namespace: 'apps', name: 'p', netnsPath: '/run/netns/n', ips: [] });
    expect(outcome).toMatchObject({ kind: 'failed', reason: 'zds' });
    expect(outcome.kind === 'failed' ? outcome.error : '').toContain('bind failed');
    expect(zds.sent).toEqual(['add:uid-p', 'del:uid-p']);
    expect(r.enrolledCount).toBe(0);
  });

  it('a second ADD for an enrolled pod enrols the netns it names, closing the old handle', async () => {
    kube.putNamespace('apps', AMBIENT);
    runningPod('a');
    const r = reconciler();
    await r.start();
    const oldFd = r.workloads.lookup('uid-a')!.netnsFd!;
    netns.existing.add('/run/netns/a-2');
    const outcome = await r.cniAdd({ namespace: 'apps', name: 'a', netnsPath: '/run/netns/a-2', ips: [] });
    expect(outcome).toEqual({ kind: 'enrolled', state: 'enabled' });
    expect(netns.open_.has(oldFd)).toBe(false);
    expect(netns.pathOf(r.workloads.lookup('uid-a')!.netnsFd!)).toBe('/run/netns/a-2');
    expect(netns.open_.size).toBe(1);
  });

  it('an ADD that arrives before the informers synced waits for start() instead of deciding blind', async () => {
    kube.putNamespace('apps', AMBIENT);
    kube.putPod(makePod({ name: 'early', uid: 'uid-early' }));
    netns.existing.add('/run/netns/early');
    const r = reconciler();
    let settled: unknown;
    const pending = r
      .cniAdd({ namespace: 'apps', name: 'early', netnsPath: '/run/netns/early', ips: [] })
      .then(o => (settled = o));
    await new Promise(resolve => setImmediate(resolve));
    expect(settled).toBeUndefined();
    expect(rules.calls).toEqual([]);
    await r.start();
    await pending;
    expect(settled).toEqual({ kind: 'enrolled', state: 'enabled' });
  });
});
