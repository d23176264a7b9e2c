/**
 * The node agent's brain: it keeps every pod on this node in the state the enrolment rules ask for.
 *
 * Enrolling (docs/protocols.md#zds-enrolment): open the pod's netns → apply the in-pod rules and add the pod
 * IPs to the host probe sets → ZDS Add with the netns fd → annotate `pods/status` with
 * `ambient.istio.io/redirection: enabled`, or `pending` while no ztunnel has acked.
 * Un-enrolling: ZDS Del to every ztunnel → remove the in-pod rules (unless the pod is going away)
 * → remove the probe IPs → remove the annotation.
 *
 * Work for one pod is serialised (a per-uid lock); every run re-reads the latest pod from the
 * informer cache, so runs are idempotent and events can be coalesced or repeated freely. A pod
 * whose netns has vanished is logged and, if it was enrolled before, kept in the registry without
 * an fd so the next ZDS snapshot sends `Keep` for it (docs/protocols.md#zds-handshake). Nothing here throws to the caller:
 * failures are logged, counted, and returned as outcomes.
 */
import { errorMessage } from '@ambient-mesh/errors';
import type { InpodRuleOptions } from '@ambient-mesh/nft-rules';
import type { zds } from '@ambient-mesh/xds-types';
import { Annotation, RedirectionState, decideEnrolment, ruleOptionsFor } from './enrolment.ts';
import type { GlobalRuleSettings } from './enrolment.ts';
import { podKey } from './kube-types.ts';
import type { NamespaceView, PodView } from './kube-types.ts';
import type { Logger } from '@ambient-mesh/runtime';
import { FailureReason } from './metrics.ts';
import type { AgentMetrics } from './metrics.ts';
import type { NetnsLocator } from './netns-cache.ts';
import type { NetnsScanner } from './netns-scanner.ts';
import type { SnapshotReport, WorkloadSource, ZdsResult, ZdsWorkload } from './zds/zds-server.ts';

/** Everything Kubernetes-facing. */
export interface KubeApi {
  /** Pods on this node, from the informer cache. */
  listPods(): readonly PodView[];
  getPod(namespace: string, name: string): PodView | undefined;
  getNamespace(name: string): NamespaceView | undefined;
  /** A live GET, for pods the cache has not seen yet (CNI ADD can beat the watch). */
  fetchPod(namespace: string, name: string): Promise<PodView | undefined>;
  /** Merge-patches `pods/status` with the redirection annotation; `null` removes it. */
  patchRedirection(namespace: string, name: string, value: RedirectionState | null): Promise<void>;
}

/** The in-pod rules, addressed by a netns path (e.g. `/proc/<agent pid>/fd/<fd>`). */
export interface PodRules {
  apply(netnsPath: string, options: InpodRuleOptions): Promise<void>;
  /** Human-readable differences from the desired state; empty when none. */
  drift(netnsPath: string, options: InpodRuleOptions): Promise<readonly string[]>;
  remove(netnsPath: string, options: InpodRuleOptions): Promise<void>;
}

/** The host's kubelet-probe SNAT sets. */
export interface HostProbeRules {
  addPodIps(entries: readonly { readonly ip: string; readonly podUid: string }[]): Promise<void>;
  removePodIps(ips: readonly string[]): Promise<void>;
}

export interface NetnsOpener {
  /** Opens the netns at `path`; throws when it does not exist. */
  open(path: string): number;
  close(fd: number): void;
  /** A path other processes (nsenter) can use for the open fd. */
  pathOf(fd: number): string;
}

export interface ZdsApi {
  add(uid: string): Promise<ZdsResult>;
  del(uid: string): Promise<ZdsResult[]>;
}

export interface EnrolledPod {
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  readonly info: zds.WorkloadInfoInit;
  /** `null`: the netns could not be opened after a restart (sent as Keep). */
  netnsFd: number | null;
  options: InpodRuleOptions;
  ips: readonly string[];
  state: RedirectionState;
}

export type ReconcileOutcome =
  | { readonly kind: 'enrolled'; readonly state: RedirectionState }
  | { readonly kind: 'not-enrolled'; readonly reason: string }
  | { readonly kind: 'unenrolled' }
  | { readonly kind: 'waiting'; readonly reason: string }
  | { readonly kind: 'failed'; readonly reason: FailureReason; readonly error: string };

/** What a CNI plugin ADD reports (docs/protocols.md#zds-enrolment). */
export interface CniAddEvent {
  readonly namespace: string;
  readonly name: string;
  readonly netnsPath: string;
  readonly ips: readonly string[];
}

/** Why a reconcile runs. */
export interface ReconcileHints {
  /** The pod as the caller knows it (a live GET), used when the cache lacks it. */
  readonly pod?: PodView;
  /** The start-up pass. */
  readonly startup?: boolean;
  /** Compare the live rules with the desired ones. */
  readonly driftCheck?: boolean;
  /** Only bring the annotation in line with the registry (after a snapshot). */
  readonly annotateOnly?: boolean;
  /**
   * A CNI ADD: a new sandbox, whose netns replaces whatever the registry holds for the pod (a
   * sandbox retried after a failed ADD gets a new netns).
   */
  readonly sandbox?: boolean;
  /** Internal: drop the registry entry of a failed ADD's sandbox (see `cniAdd`). */
  readonly abandon?: boolean;
}

export interface ReconcilerOptions {
  readonly kube: KubeApi;
  readonly rules: PodRules;
  readonly hostProbe: HostProbeRules | null;
  readonly netns: NetnsOpener;
  readonly locator: NetnsLocator;
  readonly zds: ZdsApi;
  readonly logger: Logger;
  readonly metrics: AgentMetrics;
  readonly systemNamespace: string;
  readonly settings: GlobalRuleSettings;
  /** Finds the netns of a pod the plugin never reported, by its IPs. */
  readonly scanner?: NetnsScanner;
  /** Re-apply the rules of already-enrolled pods at start-up (repairs drift). Default true. */
  readonly reconcileOnStartup?: boolean;
}

const STARTUP_CONCURRENCY = 4;

export class Reconciler {
  readonly #o: ReconcilerOptions;
  readonly #enrolled = new Map<string, EnrolledPod>();
  readonly #locks = new Map<string, Promise<unknown>>();
  /** IPs reported by the CNI plugin before the pod status carries them. */
  readonly #pluginIps = new Map<string, readonly string[]>();
  /** Uids whose rules the current drift check re-applied. */
  readonly #lastRepair = new Set<string>();
  /** Why ztunnel did not ack the last Add of a pod (for the failed ADD's message). */
  readonly #lastZds = new Map<string, string>();
  #started = false;
  /** Settles once `start()` runs (the informers synced): CNI ADDs wait for it. */
  readonly #startGate: Promise<void>;
  #openStartGate: () => void = () => undefined;

  constructor(options: ReconcilerOptions) {
    this.#o = options;
    this.#startGate = new Promise(resolve => {
      this.#openStartGate = resolve;
    });
  }

  /** The enrolled pods, as ZDS sees them. */
  readonly workloads: WorkloadSource = {
    uids: () => [...this.#enrolled.keys()],
    lookup: (uid: string): ZdsWorkload | undefined => {
      const e = this.#enrolled.get(uid);
      return e === undefined ? undefined : { uid, info: e.info, netnsFd: e.netnsFd };
    },
  };

  enrolled(uid: string): Readonly<EnrolledPod> | undefined {
    return this.#enrolled.get(uid);
  }

  get enrolledCount(): number {
    return this.#enrolled.size;
  }

  /**
   * Start-up: reconciles every pod of this node (already-enrolled ones get their rules re-applied,
   * which converges without duplicates). Call after the informers synced, before serving ZDS.
   */
  async start(): Promise<void> {
    this.#started = true;
    this.#openStartGate();
    const pods = this.#o.kube.listPods();
    // A few at a time: each enrolment starts nft/ip processes.
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let pod = pods[next++]; pod !== undefined; pod = pods[next++]) {
        await this.reconcile(pod.namespace, pod.name, pod.uid, { startup: true });
      }
    };
    await Promise.all(Array.from({ length: STARTUP_CONCURRENCY }, worker));
    this.#o.logger.info({ pods: pods.length, enrolled: this.#enrolled.size }, 'start-up reconcile done');
  }

  /** Informer hook: a pod was added or changed. */
  podChanged(pod: PodView): void {
    if (!this.#started) return;
    void this.reconcile(pod.namespace, pod.name, pod.uid);
  }

  /** Informer hook: a pod was deleted. */
  podDeleted(pod: PodView): void {
    this.#o.locator.forget(pod.namespace, pod.name);
    void this.reconcile(pod.namespace, pod.name, pod.uid);
  }

  /** Informer hook: a namespace was added or its labels changed. */
  namespaceChanged(namespace: NamespaceView): void {
    if (!this.#started) return;
    for (const pod of this.#o.kube.listPods()) {
      if (pod.namespace === namespace.name) void this.reconcile(pod.namespace, pod.name, pod.uid);
    }
  }

  /**
   * The CNI plugin's ADD: enrol before the app starts. Resolves when the pod is done.
   *
   * Fail closed, as upstream's node agent: the ADD waits until the informers synced (the
   * namespace's dataplane mode is known), and it only succeeds for an ambient pod once a ztunnel
   * acked the pod's Add, i.e. ztunnel's in-pod listeners are up before any container runs.
   * Otherwise it fails (`failed`, reason `zds`; upstream: "partial add error"), the registry
   * forgets that sandbox, and the kubelet tears the sandbox down and retries it.
   */
  async cniAdd(event: CniAddEvent): Promise<ReconcileOutcome> {
    await this.#startGate;
    this.#o.locator.remember(event.namespace, event.name, event.netnsPath);
    let pod = this.#o.kube.getPod(event.namespace, event.name);
    if (pod === undefined) {
      try {
        pod = await this.#o.kube.fetchPod(event.namespace, event.name);
      } catch (err) {
        this.#o.metrics.failure(FailureReason.kube);
        return { kind: 'failed', reason: FailureReason.kube, error: errorMessage(err) };
      }
    }
    if (pod === undefined) {
      return {
        kind: 'failed',
        reason: FailureReason.kube,
        error: `pod ${event.namespace}/${event.name} not found`,
      };
    }
    if (event.ips.length > 0) this.#pluginIps.set(pod.uid, event.ips);
    const uid = pod.uid;
    const outcome = await this.reconcile(pod.namespace, pod.name, uid, { pod, sandbox: true });
    if (outcome.kind !== 'enrolled' || outcome.state !== RedirectionState.pending) return outcome;
    // Rules are in place but no ztunnel runs the pod's proxy: its app must not start yet.
    const error = await this.#abandonSandbox(pod, event.netnsPath);
    return { kind: 'failed', reason: FailureReason.zds, error };
  }

  /**
   * Forgets the sandbox of a failed ADD (the kubelet removes it and retries with a new one):
   * drops the registry entry without touching the dying netns, sends ztunnel a Del for any
   * proxy it may have started, and forgets the netns path. Returns the reason for the plugin.
   */
  async #abandonSandbox(pod: PodView, netnsPath: string): Promise<string> {
    const detail = this.#lastZds.get(pod.uid) ?? 'no ztunnel is connected to this node agent';
    this.#lastZds.delete(pod.uid);
    await this.reconcile(pod.namespace, pod.name, pod.uid, { pod, abandon: true });
    if (this.#o.locator.find(pod.namespace, pod.name) === netnsPath) {
      this.#o.locator.forget(pod.namespace, pod.name);
    }
    this.#o.logger.warn(
      { pod: podKey(pod), uid: pod.uid, reason: detail },
      'ztunnel has not acked the pod; failing its CNI ADD so the sandbox is retried',
    );
    return `ztunnel has not acknowledged the pod (${detail}); check that the ztunnel pod on this node is running and connected to the cni-agent`;
  }

  /** Reconciles one pod under its lock. Never rejects. */
  reconcile(
    namespace: string,
    name: string,
    uid: string,
    hints: ReconcileHints = {},
  ): Promise<ReconcileOutcome> {
    const previous = this.#locks.get(uid) ?? Promise.resolve();
    const run = previous.then(() => this.#reconcileNow(namespace, name, uid, hints));
    const settled = run.catch((err: unknown): ReconcileOutcome => {
      this.#o.logger.error({ pod: `${namespace}/${name}`, err: errorMessage(err) }, 'BUG: reconcile threw');
      return { kind: 'failed', reason: FailureReason.kube, error: errorMessage(err) };
    });
    this.#locks.set(uid, settled);
    void settled.then(() => {
      if (this.#locks.get(uid) === settled) this.#locks.delete(uid);
    });
    return settled;
  }

  /** Resolves when no pod work is queued (tests, shutdown). Bounded. */
  async idle(): Promise<void> {
    for (let i = 0; i < 1000 && this.#locks.size > 0; i++) await Promise.all([...this.#locks.values()]);
  }

  /** After a ztunnel acked its snapshot, pods it now runs are `enabled`. */
  onSnapshot(report: SnapshotReport): void {
    const update = (uid: string, state: RedirectionState): void => {
      const e = this.#enrolled.get(uid);
      if (e === undefined || e.state === state) return;
      e.state = state;
      this.#updateGauges();
      void this.reconcile(e.namespace, e.name, uid, { annotateOnly: true });
    };
    for (const uid of report.added) update(uid, RedirectionState.enabled);
    for (const { uid } of report.rejected) update(uid, RedirectionState.pending);
  }

  /**
   * Checks every enrolled pod's rules and re-applies drifted ones; also retries ZDS for pending
   * pods. Returns the number of repairs.
   */
  async checkDrift(): Promise<number> {
    let repairs = 0;
    const entries = [...this.#enrolled.values()];
    await Promise.all(
      entries.map(async e => {
        const outcome = await this.reconcile(e.namespace, e.name, e.uid, { driftCheck: true });
        if (outcome.kind === 'enrolled' && this.#lastRepair.delete(e.uid)) repairs++;
      }),
    );
    return repairs;
  }

  /** Releases every netns fd (shutdown). Rules and annotations stay: pods keep working. */
  stop(): void {
    for (const e of this.#enrolled.values()) this.#closeFd(e);
    this.#enrolled.clear();
    this.#updateGauges();
  }

  async #reconcileNow(
    namespace: string,
    name: string,
    uid: string,
    hints: ReconcileHints,
  ): Promise<ReconcileOutcome> {
    const cached = this.#o.kube.getPod(namespace, name);
    const pod = cached?.uid === uid ? cached : hints.pod?.uid === uid ? hints.pod : undefined;
    const entry = this.#enrolled.get(uid);
    if (pod === undefined || pod.deleting) {
      this.#pluginIps.delete(uid);
      if (entry === undefined) return { kind: 'not-enrolled', reason: 'pod is gone' };
      return this.#unenrol(entry, true);
    }
    const decision = decideEnrolment(pod, this.#o.kube.getNamespace(pod.namespace), {
      systemNamespace: this.#o.systemNamespace,
    });
    if (!decision.enrol) {
      if (entry !== undefined) return this.#unenrol(entry, false);
      if (Annotation.redirection in pod.annotations) return this.#clearStale(pod);
      return { kind: 'not-enrolled', reason: decision.reason };
    }
    if (hints.abandon === true) {
      if (entry === undefined) return { kind: 'not-enrolled', reason: 'no sandbox to abandon' };
      return this.#unenrol(entry, true);
    }
    if (hints.sandbox === true && entry !== undefined) {
      // An ADD is a new sandbox (a retried one may even reuse the netns name): drop the old
      // handle and enrol the netns the ADD names. ztunnel treats an Add for the same netns as a
      // no-op and replaces the proxy for a different one (docs/protocols.md#zds-handshake).
      this.#closeFd(entry);
      this.#enrolled.delete(uid);
      this.#updateGauges();
      return this.#enrol(pod, false);
    }
    if (entry === undefined) return this.#enrol(pod, hints.startup ?? false);
    if (hints.annotateOnly === true) {
      await this.#annotate(pod, entry.state);
      return { kind: 'enrolled', state: entry.state };
    }
    return this.#refresh(pod, entry, hints.driftCheck ?? false);
  }

  #ipsOf(pod: PodView): readonly string[] {
    return pod.ips.length > 0 ? pod.ips : (this.#pluginIps.get(pod.uid) ?? []);
  }

  async #enrol(pod: PodView, startup: boolean): Promise<ReconcileOutcome> {
    const key = podKey(pod);
    const log = this.#o.logger.child({ pod: key, uid: pod.uid });
    const wasEnrolled = Annotation.redirection in pod.annotations;
    let path = this.#o.locator.find(pod.namespace, pod.name);
    const ips = this.#ipsOf(pod);
    if (path === null && this.#o.scanner !== undefined && ips.length > 0) {
      try {
        path = await this.#o.scanner(ips);
      } catch (err) {
        log.warn({ err: errorMessage(err) }, 'scanning for the pod netns failed');
      }
      if (path !== null) this.#o.locator.remember(pod.namespace, pod.name, path);
    }
    let fd: number | null = null;
    let openError = 'its netns path is unknown (no CNI ADD seen for it)';
    if (path !== null) {
      try {
        fd = this.#o.netns.open(path);
      } catch (err) {
        openError = `opening ${path} failed: ${errorMessage(err)}`;
      }
    }
    const info: zds.WorkloadInfoInit = {
      name: pod.name,
      namespace: pod.namespace,
      serviceAccount: pod.serviceAccount,
    };
    const options = ruleOptionsFor(pod, this.#o.settings);
    if (fd === null) {
      if (wasEnrolled) {
        // docs/protocols.md#zds-handshake: enrolled before, netns not openable now: keep it, so ztunnel keeps its proxy.
        this.#enrolled.set(pod.uid, {
          uid: pod.uid,
          ...nameOf(pod),
          info,
          netnsFd: null,
          options,
          ips,
          state: RedirectionState.pending,
        });
        this.#updateGauges();
        log.warn({ reason: openError }, 'enrolled pod netns unavailable; sending Keep to ztunnel');
        this.#o.metrics.failure(FailureReason.netns);
        return { kind: 'waiting', reason: openError };
      }
      if (path === null && !startup) {
        log.debug('pod selected for ambient; waiting for its CNI ADD to learn the netns');
      } else if (path !== null) {
        log.warn({ reason: openError }, 'cannot enrol pod: netns unavailable');
        this.#o.metrics.failure(FailureReason.netns);
      }
      return { kind: 'waiting', reason: openError };
    }
    const nsPath = this.#o.netns.pathOf(fd);
    const skipRules = startup && wasEnrolled && this.#o.reconcileOnStartup === false;
    if (!skipRules) {
      try {
        await this.#o.rules.apply(nsPath, options);
      } catch (err) {
        this.#o.netns.close(fd);
        this.#o.metrics.failure(FailureReason.rules);
        log.error({ err: errorMessage(err) }, 'applying in-pod rules failed');
        return { kind: 'failed', reason: FailureReason.rules, error: errorMessage(err) };
      }
    }
    if (this.#o.hostProbe !== null && ips.length > 0) {
      try {
        await this.#o.hostProbe.addPodIps(ips.map(ip => ({ ip, podUid: pod.uid })));
      } catch (err) {
        this.#o.metrics.failure(FailureReason.hostProbe);
        log.warn(
          { err: errorMessage(err) },
          'adding pod IPs to the host probe sets failed; kubelet probes may fail',
        );
      }
    }
    const entry: EnrolledPod = {
      uid: pod.uid,
      ...nameOf(pod),
      info,
      netnsFd: fd,
      options,
      ips,
      state: RedirectionState.pending,
    };
    this.#enrolled.set(pod.uid, entry);
    if (startup && wasEnrolled) {
      // After a restart no ztunnel is connected yet: the pod goes out in the next snapshot, and
      // its annotation stays as it was until that snapshot is acked.
      entry.state =
        pod.annotations[Annotation.redirection] === RedirectionState.enabled
          ? RedirectionState.enabled
          : RedirectionState.pending;
    } else {
      entry.state = await this.#sendAdd(entry, log);
    }
    this.#updateGauges();
    await this.#annotate(pod, entry.state);
    log.info({ state: entry.state, dnsCapture: options.dnsCapture }, 'pod enrolled in ambient');
    return { kind: 'enrolled', state: entry.state };
  }

  async #sendAdd(entry: EnrolledPod, log: Logger): Promise<RedirectionState> {
    const result = await this.#o.zds.add(entry.uid);
    if (result.status === 'acked') {
      this.#lastZds.delete(entry.uid);
      return RedirectionState.enabled;
    }
    this.#lastZds.set(
      entry.uid,
      result.status === 'no-ztunnel'
        ? 'no ztunnel connection'
        : `ztunnel ${result.status === 'nacked' ? 'rejected' : 'did not answer'} the Add: ${result.error}`,
    );
    if (result.status !== 'no-ztunnel') {
      this.#o.metrics.failure(FailureReason.zds);
      log.warn({ zds: result }, 'ztunnel did not ack the Add; the pod stays pending');
    }
    return RedirectionState.pending;
  }

  async #refresh(pod: PodView, entry: EnrolledPod, driftCheck: boolean): Promise<ReconcileOutcome> {
    const log = this.#o.logger.child({ pod: podKey(pod), uid: pod.uid });
    if (entry.netnsFd === null) {
      // A Keep entry: try again to open the netns (the CNI may have told us since).
      this.#enrolled.delete(pod.uid);
      const outcome = await this.#enrol(pod, false);
      if (outcome.kind !== 'enrolled' && !this.#enrolled.has(pod.uid)) this.#enrolled.set(pod.uid, entry);
      this.#updateGauges();
      return outcome;
    }
    const nsPath = this.#o.netns.pathOf(entry.netnsFd);
    const options = ruleOptionsFor(pod, this.#o.settings);
    const optionsChanged = JSON.stringify(options) !== JSON.stringify(entry.options);
    let reapply = optionsChanged;
    if (!reapply && driftCheck) {
      try {
        const drift = await this.#o.rules.drift(nsPath, options);
        if (drift.length > 0) {
          log.warn({ drift: drift.slice(0, 10) }, 'in-pod rules drifted; re-applying');
          reapply = true;
          this.#o.metrics.driftRepairs.inc();
          this.#lastRepair.add(pod.uid);
        }
      } catch (err) {
        log.warn({ err: errorMessage(err) }, 'checking in-pod rules failed');
      }
    }
    if (reapply) {
      try {
        if (optionsChanged) await this.#o.rules.remove(nsPath, entry.options);
        await this.#o.rules.apply(nsPath, options);
        entry.options = options;
      } catch (err) {
        this.#o.metrics.failure(FailureReason.rules);
        log.error({ err: errorMessage(err) }, 're-applying in-pod rules failed');
        return { kind: 'failed', reason: FailureReason.rules, error: errorMessage(err) };
      }
    }
    const ips = this.#ipsOf(pod);
    if (this.#o.hostProbe !== null && ips.join(',') !== entry.ips.join(',')) {
      try {
        const gone = entry.ips.filter(ip => !ips.includes(ip));
        await this.#o.hostProbe.removePodIps(gone);
        await this.#o.hostProbe.addPodIps(
          ips.filter(ip => !entry.ips.includes(ip)).map(ip => ({ ip, podUid: pod.uid })),
        );
        entry.ips = ips;
      } catch (err) {
        this.#o.metrics.failure(FailureReason.hostProbe);
        log.warn({ err: errorMessage(err) }, 'updating the host probe sets failed');
      }
    }
    if (entry.state === RedirectionState.pending) {
      entry.state = await this.#sendAdd(entry, log);
      this.#updateGauges();
    }
    await this.#annotate(pod, entry.state);
    return { kind: 'enrolled', state: entry.state };
  }

  async #unenrol(entry: EnrolledPod, podGone: boolean): Promise<ReconcileOutcome> {
    const log = this.#o.logger.child({ pod: `${entry.namespace}/${entry.name}`, uid: entry.uid });
    this.#enrolled.delete(entry.uid);
    this.#lastZds.delete(entry.uid);
    this.#updateGauges();
    const results = await this.#o.zds.del(entry.uid);
    if (results.some(r => r.status === 'failed')) {
      this.#o.metrics.failure(FailureReason.zds);
      log.warn({ zds: results }, 'a ztunnel did not ack the Del');
    }
    let ok = true;
    if (!podGone && entry.netnsFd !== null) {
      try {
        await this.#o.rules.remove(this.#o.netns.pathOf(entry.netnsFd), entry.options);
      } catch (err) {
        ok = false;
        this.#o.metrics.failure(FailureReason.rules);
        log.error({ err: errorMessage(err) }, 'removing in-pod rules failed');
      }
    }
    if (this.#o.hostProbe !== null && entry.ips.length > 0) {
      try {
        await this.#o.hostProbe.removePodIps(entry.ips);
      } catch (err) {
        this.#o.metrics.failure(FailureReason.hostProbe);
        log.warn({ err: errorMessage(err) }, 'removing pod IPs from the host probe sets failed');
      }
    }
    this.#closeFd(entry);
    if (!podGone) {
      const pod = this.#o.kube.getPod(entry.namespace, entry.name);
      if (pod !== undefined) await this.#annotate(pod, null);
    }
    log.info({ podGone }, 'pod removed from ambient');
    return ok
      ? { kind: 'unenrolled' }
      : { kind: 'failed', reason: FailureReason.rules, error: 'rules not removed' };
  }

  /** A pod carrying our annotation that is not (or no longer) enrolled, e.g. relabelled while we were down. */
  async #clearStale(pod: PodView): Promise<ReconcileOutcome> {
    const path = this.#o.locator.find(pod.namespace, pod.name);
    if (path !== null) {
      try {
        const fd = this.#o.netns.open(path);
        try {
          await this.#o.rules.remove(this.#o.netns.pathOf(fd), ruleOptionsFor(pod, this.#o.settings));
        } finally {
          this.#o.netns.close(fd);
        }
      } catch (err) {
        this.#o.logger.warn(
          { pod: podKey(pod), err: errorMessage(err) },
          'removing stale in-pod rules failed',
        );
      }
    }
    await this.#o.zds.del(pod.uid);
    await this.#annotate(pod, null);
    return { kind: 'unenrolled' };
  }

  async #annotate(pod: PodView, value: RedirectionState | null): Promise<void> {
    const current = pod.annotations[Annotation.redirection];
    if ((value === null && current === undefined) || current === value) return;
    try {
      await this.#o.kube.patchRedirection(pod.namespace, pod.name, value);
    } catch (err) {
      this.#o.metrics.failure(FailureReason.annotation);
      this.#o.logger.warn(
        { pod: podKey(pod), err: errorMessage(err) },
        'patching the redirection annotation failed',
      );
    }
  }

  #closeFd(entry: EnrolledPod): void {
    if (entry.netnsFd === null) return;
    try {
      this.#o.netns.close(entry.netnsFd);
    } catch {
      // Already closed.
    }
    entry.netnsFd = null;
  }

  #updateGauges(): void {
    let pending = 0;
    for (const e of this.#enrolled.values()) if (e.state === RedirectionState.pending) pending++;
    this.#o.metrics.enrolledPods.set(this.#enrolled.size);
    this.#o.metrics.pendingPods.set(pending);
  }
}

function nameOf(pod: PodView): { namespace: string; name: string } {
  return { namespace: pod.namespace, name: pod.name };
}
