/**
 * The ZDS workload state manager (docs/protocols.md#zds-handshake): the pure core of ztunnel's in-pod mode.
 *
 * It turns CNI requests (Add / Keep / Del / SnapshotSent) into proxy starts and drains, and decides
 * the reply to each. It owns no socket: a transport feeds it decoded requests one at a time and
 * sends back its `ZdsReply`. Proxies are started through an injected `WorkloadProxyFactory`.
 *
 * Invariants:
 * - at most one proxy entry per pod uid; an entry is `pending` (start failed or not tried yet) or
 *   `up`; pending entries are retried by `retryPending()` (the app calls it every 5 s);
 * - the entry owns its netns handle and closes it when the entry is replaced or removed;
 * - per-connection snapshot state (`seen`, `snapshotDone`) is reset by `connectionOpened()`;
 * - ready ⇔ connected, the snapshot was reconciled, and nothing is pending.
 * All operations are serialised, so a retry never interleaves with a request.
 */
import type { LiveConnections } from '../proxy/connection-sink.ts';
import { errorMessage } from '@ambient-mesh/errors';

export interface WorkloadInfo {
  readonly name: string;
  readonly namespace: string;
  readonly serviceAccount: string;
}

/** An open handle to a pod network namespace; `inode` identifies the namespace. */
export interface NetnsHandle {
  readonly inode: string;
  /** The open namespace fd, for creating sockets inside it (-1 in tests without a netns). */
  readonly fd: number;
  close(): void;
}

export type ZdsRequest =
  | {
      readonly kind: 'add';
      readonly uid: string;
      readonly info: WorkloadInfo | undefined;
      readonly netns: NetnsHandle;
    }
  | { readonly kind: 'keep'; readonly uid: string }
  | { readonly kind: 'del'; readonly uid: string }
  | { readonly kind: 'snapshot-sent' };

/** `fatal` replies are NACKs after which the connection must be dropped (a protocol error). */
export type ZdsReply =
  { readonly ack: true } | { readonly ack: false; readonly error: string; readonly fatal: boolean };

export interface RunningProxy {
  /** Stops accepting and lets open connections finish; resolves when done. */
  drain(): Promise<void>;
  /** The open connections (`/config_dump` `workloadState[uid].connections`). */
  connections?(): LiveConnections;
}

export interface WorkloadProxyFactory {
  start(uid: string, info: WorkloadInfo, netns: NetnsHandle): Promise<RunningProxy>;
}

export type ProxyPhase = 'Pending' | 'Up';

export interface WorkloadStateEntry {
  readonly info: WorkloadInfo;
  readonly state: ProxyPhase;
  readonly error?: string;
}

export interface StateManagerObserver {
  proxyStarted?(uid: string): void;
  proxyStopped?(uid: string): void;
  readinessChanged?(ready: boolean): void;
}

interface Entry {
  info: WorkloadInfo;
  netns: NetnsHandle;
  proxy: RunningProxy | undefined;
  error: string | undefined;
}

const ACK: ZdsReply = { ack: true };

function protocolError(error: string): ZdsReply {
  return { ack: false, error, fatal: true };
}

export class WorkloadStateManager {
  readonly #factory: WorkloadProxyFactory;
  readonly #observer: StateManagerObserver;
  readonly #entries = new Map<string, Entry>();
  #connected = false;
  #snapshotDone = false;
  #seen = new Set<string>();
  #queue: Promise<unknown> = Promise.resolve();
  #ready = false;

  constructor(factory: WorkloadProxyFactory, observer: StateManagerObserver = {}) {
    this.#factory = factory;
    this.#observer = observer;
  }

  /** A new CNI connection: the snapshot starts over. Proxies keep running until reconciled. */
  connectionOpened(): void {
    this.#connected = true;
    this.#snapshotDone = false;
    this.#seen = new Set();
    this.#updateReadiness();
  }

  connectionClosed(): void {
    this.#connected = false;
    this.#updateReadiness();
  }

  get ready(): boolean {
    return this.#ready;
  }

  get activeCount(): number {
    let n = 0;
    for (const entry of this.#entries.values()) if (entry.proxy !== undefined) n += 1;
    return n;
  }

  get pendingCount(): number {
    return this.#entries.size - this.activeCount;
  }

  /** Pod uid → info and phase, for `/config_dump` `workloadState`. */
  /** The open connections of the running proxy of pod `uid`, if any. */
  connections(uid: string): LiveConnections | undefined {
    return this.#entries.get(uid)?.proxy?.connections?.();
  }

  workloadState(): Record<string, WorkloadStateEntry> {
    const out: Record<string, WorkloadStateEntry> = {};
    for (const [uid, entry] of this.#entries) {
      out[uid] =
        entry.error === undefined
          ? { info: entry.info, state: entry.proxy ? 'Up' : 'Pending' }
          : { info: entry.info, state: entry.proxy ? 'Up' : 'Pending', error: entry.error };
    }
    return out;
  }

  /** Handles one request; the reply is what the transport sends back. */
  handle(request: ZdsRequest): Promise<ZdsReply> {
    return this.#serial(() => this.#handle(request));
  }

  /** Retries every pending proxy once; returns how many are still pending. */
  retryPending(): Promise<number> {
    return this.#serial(async () => {
      for (const [uid, entry] of [...this.#entries]) {
        if (entry.proxy === undefined) await this.#start(uid, entry);
      }
      this.#updateReadiness();
      return this.pendingCount;
    });
  }

  /** Drains every proxy (ztunnel shutdown). */
  drainAll(): Promise<void> {
    return this.#serial(async () => {
      await Promise.all([...this.#entries.keys()].map(uid => this.#remove(uid)));
      this.#updateReadiness();
    });
  }

  #serial<T>(op: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(op, op);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #handle(request: ZdsRequest): Promise<ZdsReply> {
    try {
      switch (request.kind) {
        case 'add':
          return await this.#add(request.uid, request.info, request.netns);
        case 'keep':
          if (this.#snapshotDone) return protocolError(`keep for ${request.uid} after the snapshot was sent`);
          this.#seen.add(request.uid);
          return ACK;
        case 'del':
          this.#seen.delete(request.uid);
          await this.#remove(request.uid);
          return ACK;
        case 'snapshot-sent': {
          if (this.#snapshotDone) return protocolError('a second SnapshotSent on one connection');
          const stale = [...this.#entries.keys()].filter(uid => !this.#seen.has(uid));
          await Promise.all(stale.map(uid => this.#remove(uid)));
          this.#snapshotDone = true;
          return ACK;
        }
      }
    } finally {
      this.#updateReadiness();
    }
  }

  async #add(uid: string, info: WorkloadInfo | undefined, netns: NetnsHandle): Promise<ZdsReply> {
    if (info === undefined) {
      netns.close();
      return protocolError(`add for ${uid} without workload_info`);
    }
    if (!this.#snapshotDone) this.#seen.add(uid);
    const existing = this.#entries.get(uid);
    if (existing !== undefined && existing.netns.inode === netns.inode) {
      netns.close();
      return ACK;
    }
    if (existing !== undefined) await this.#remove(uid);
    const entry: Entry = { info, netns, proxy: undefined, error: undefined };
    this.#entries.set(uid, entry);
    await this.#start(uid, entry);
    return entry.error === undefined ? ACK : { ack: false, error: entry.error, fatal: false };
  }

  async #start(uid: string, entry: Entry): Promise<void> {
    try {
      entry.proxy = await this.#factory.start(uid, entry.info, entry.netns);
      entry.error = undefined;
      this.#observer.proxyStarted?.(uid);
    } catch (err) {
      entry.error = `failed to start the proxy for ${entry.info.namespace}/${entry.info.name}: ${errorMessage(err)}`;
    }
  }

  async #remove(uid: string): Promise<void> {
    const entry = this.#entries.get(uid);
    if (entry === undefined) return;
    this.#entries.delete(uid);
    try {
      if (entry.proxy !== undefined) {
        await entry.proxy.drain();
        this.#observer.proxyStopped?.(uid);
      }
    } finally {
      entry.netns.close();
    }
  }

  #updateReadiness(): void {
    const ready = this.#connected && this.#snapshotDone && this.pendingCount === 0;
    if (ready === this.#ready) return;
    this.#ready = ready;
    this.#observer.readinessChanged?.(ready);
  }
}
