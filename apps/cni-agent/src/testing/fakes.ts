/** Test doubles for the reconciler's injected capabilities. */
import type { InpodRuleOptions } from '@ambient-mesh/nft-rules';
import type { RedirectionState } from '../enrolment.ts';
import type { KubeEventHandlers } from '../kube-client.ts';
import type { NamespaceView, PodView } from '../kube-types.ts';
import type { HostProbeRules, KubeApi, NetnsOpener, PodRules, ZdsApi } from '../reconciler.ts';
import type { ZdsResult } from '../zds/zds-server.ts';

export function makePod(overrides: Partial<PodView> = {}): PodView {
  return {
    uid: 'uid-1',
    name: 'app-1',
    namespace: 'apps',
    nodeName: 'node-a',
    serviceAccount: 'default',
    labels: {},
    annotations: {},
    ips: ['10.244.1.5'],
    phase: 'Running',
    deleting: false,
    hostNetwork: false,
    ...overrides,
  };
}

export class FakeKube implements KubeApi {
  readonly pods = new Map<string, PodView>();
  readonly namespaces = new Map<string, NamespaceView>();
  /** Pods only a live GET finds. */
  readonly apiOnly = new Map<string, PodView>();
  readonly patches: { pod: string; value: RedirectionState | null }[] = [];

  putPod(pod: PodView): PodView {
    this.pods.set(`${pod.namespace}/${pod.name}`, pod);
    return pod;
  }
  putNamespace(name: string, labels: Record<string, string> = {}): NamespaceView {
    const ns = { name, labels };
    this.namespaces.set(name, ns);
    return ns;
  }
  listPods(): PodView[] {
    return [...this.pods.values()];
  }
  getPod(namespace: string, name: string): PodView | undefined {
    return this.pods.get(`${namespace}/${name}`);
  }
  getNamespace(name: string): NamespaceView | undefined {
    return this.namespaces.get(name);
  }
  fetchPod(namespace: string, name: string): Promise<PodView | undefined> {
    return Promise.resolve(this.apiOnly.get(`${namespace}/${name}`) ?? this.getPod(namespace, name));
  }
  patchRedirection(namespace: string, name: string, value: RedirectionState | null): Promise<void> {
    const key = `${namespace}/${name}`;
    this.patches.push({ pod: key, value });
    const pod = this.pods.get(key);
    if (pod !== undefined) {
      const annotations = { ...pod.annotations };
      if (value === null) delete annotations['ambient.istio.io/redirection'];
      else annotations['ambient.istio.io/redirection'] = value;
      this.pods.set(key, { ...pod, annotations });
    }
    return Promise.resolve();
  }
}

/** Rules per netns path; `apply` replaces (converges), so duplicates would show as a count > 1. */
export class FakeRules implements PodRules {
  readonly installed = new Map<string, InpodRuleOptions>();
  readonly calls: string[] = [];
  failApply = false;
  drifted = new Set<string>();

  apply(netnsPath: string, options: InpodRuleOptions): Promise<void> {
    this.calls.push(`apply ${netnsPath}`);
    if (this.failApply) return Promise.reject(new Error('nft: Operation not permitted'));
    this.installed.set(netnsPath, options);
    this.drifted.delete(netnsPath);
    return Promise.resolve();
  }
  drift(netnsPath: string): Promise<readonly string[]> {
    return Promise.resolve(
      this.drifted.has(netnsPath) || !this.installed.has(netnsPath) ? ['missing rule'] : [],
    );
  }
  remove(netnsPath: string): Promise<void> {
    this.calls.push(`remove ${netnsPath}`);
    this.installed.delete(netnsPath);
    return Promise.resolve();
  }
}

export class FakeHostProbe implements HostProbeRules {
  readonly ips = new Map<string, string>();
  addPodIps(entries: readonly { ip: string; podUid: string }[]): Promise<void> {
    for (const e of entries) this.ips.set(e.ip, e.podUid);
    return Promise.resolve();
  }
  removePodIps(ips: readonly string[]): Promise<void> {
    for (const ip of ips) this.ips.delete(ip);
    return Promise.resolve();
  }
}

/** Netns "files": paths that exist; fds are handed out from 100 up. */
export class FakeNetns implements NetnsOpener {
  readonly existing = new Set<string>();
  readonly open_ = new Map<number, string>();
  #next = 100;

  open(path: string): number {
    if (!this.existing.has(path)) throw new Error(`ENOENT: ${path}`);
    const fd = this.#next++;
    this.open_.set(fd, path);
    return fd;
  }
  close(fd: number): void {
    this.open_.delete(fd);
  }
  /** Rules are keyed by the underlying path, so reopening the same netns maps to the same rules. */
  pathOf(fd: number): string {
    return this.open_.get(fd) ?? `closed-fd-${fd}`;
  }
}

export class FakeZds implements ZdsApi {
  connected = true;
  nack = '';
  readonly sent: string[] = [];

  add(uid: string): Promise<ZdsResult> {
    if (!this.connected) return Promise.resolve({ status: 'no-ztunnel' });
    this.sent.push(`add:${uid}`);
    return Promise.resolve(
      this.nack === ''
        ? { status: 'acked', connection: 1 }
        : { status: 'nacked', connection: 1, error: this.nack },
    );
  }
  del(uid: string): Promise<ZdsResult[]> {
    if (!this.connected) return Promise.resolve([]);
    this.sent.push(`del:${uid}`);
    return Promise.resolve([{ status: 'acked', connection: 1 }]);
  }
}

/** A FakeKube the agent can start and stop (no informers: events are pushed by the test). */
export class StartableFakeKube extends FakeKube {
  handlers: KubeEventHandlers | undefined;
  start(handlers: KubeEventHandlers): Promise<void> {
    this.handlers = handlers;
    return Promise.resolve();
  }
  stop(): Promise<void> {
    this.handlers = undefined;
    return Promise.resolve();
  }
}
