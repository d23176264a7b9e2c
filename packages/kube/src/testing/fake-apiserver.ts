/**
 * An in-memory apiserver on loopback speaking enough of the Kubernetes REST and watch protocol
 * for direct-tier tests: list with resourceVersion, watch from a resourceVersion (events replayed
 * from a log; 410 Gone below the compaction point), create, get, merge patch (with the
 * resourceVersion precondition), the status subresource, delete, and pod port-forward (the
 * `v4.channel.k8s.io` WebSocket protocol kubectl and client-node speak, each stream connected to a
 * loopback port the test names). Tests steer it: drop every open watch, compact the log, fail the
 * next requests, read what was asked.
 */
import http from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { KubeConfig } from '@kubernetes/client-node';
import { WebSocketServer, type WebSocket } from 'ws';
import type { KubeConfigHandle } from '../kube-config.ts';
import type { KubeObject } from '../resources.ts';

interface StoredObject extends KubeObject {
  metadata: NonNullable<KubeObject['metadata']> & { name: string };
  [key: string]: unknown;
}

interface LogEntry {
  readonly rv: number;
  readonly collection: string;
  readonly namespace: string | undefined;
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly object: StoredObject;
}

interface OpenWatch {
  readonly collection: string;
  readonly namespace: string | undefined;
  readonly res: http.ServerResponse;
}

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly contentType: string | undefined;
}

interface Failure {
  readonly status: number;
  readonly match: (r: RecordedRequest) => boolean;
}

const PORT_FORWARD = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/portforward$/;

const PATH =
  /^(\/api\/v1|\/apis\/[^/]+\/[^/]+)(?:\/namespaces\/([^/]+))?\/([^/]+)(?:\/([^/]+))?(?:\/(status))?$/;

function isMergeable(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** RFC 7386 JSON merge patch. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isMergeable(patch)) return patch;
  const out = new Map(Object.entries(isMergeable(target) ? target : {}));
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) out.delete(k);
    else out.set(k, mergePatch(out.get(k), v));
  }
  return Object.fromEntries(out);
}

export class FakeApiServer {
  readonly #server: http.Server;
  readonly #collections = new Map<string, Map<string, StoredObject>>();
  readonly #log: LogEntry[] = [];
  readonly #watches = new Set<OpenWatch>();
  readonly #failures: Failure[] = [];
  readonly #forwards = new Map<string, ReadonlyMap<number, number>>();
  readonly #wss = new WebSocketServer({
    noServer: true,
    handleProtocols: protocols => (protocols.has('v4.channel.k8s.io') ? 'v4.channel.k8s.io' : false),
  });
  readonly #streams = new Set<WebSocket>();
  /** Every request, in order. */
  readonly requests: RecordedRequest[] = [];
  #rv = 100;
  #compactedBelow = 0;
  #uid = 0;

  private constructor(server: http.Server) {
    this.#server = server;
  }

  /** Starts a server on 127.0.0.1 (a free port). */
  static async start(): Promise<FakeApiServer> {
    const server = http.createServer();
    const fake = new FakeApiServer(server);
    server.on('request', (req, res) => {
      fake.#handle(req, res);
    });
    server.on('upgrade', (req, socket, head) => {
      fake.#upgrade(req, socket, head);
    });
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
    return fake;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** A KubeConfig pointing at this server. */
  kubeConfig(): KubeConfigHandle {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'fake', server: this.url, skipTLSVerify: true }],
      users: [{ name: 'fake', token: 'fake-token' }],
      contexts: [{ name: 'fake', cluster: 'fake', user: 'fake' }],
      currentContext: 'fake',
    });
    return kc;
  }

  /** The current resourceVersion. */
  get resourceVersion(): number {
    return this.#rv;
  }

  /** Watches open now. */
  get openWatches(): number {
    return this.#watches.size;
  }

  /** Requests with this method whose path starts with `path` (watches are GETs with watch=true). */
  count(method: string, path: string, filter: (r: RecordedRequest) => boolean = () => true): number {
    return this.requests.filter(r => r.method === method && r.path === path && filter(r)).length;
  }

  /** Stores (creates or replaces) an object at `collection` (`/api/v1/pods`) and logs the event. */
  put(collection: string, obj: KubeObject & Record<string, unknown>): StoredObject {
    const name = obj.metadata?.name ?? '';
    const ns = obj.metadata?.namespace;
    const store = this.#collection(collection);
    const key = `${ns ?? ''}/${name}`;
    const old = store.get(key);
    const rv = ++this.#rv;
    const stored = {
      ...obj,
      metadata: {
        ...obj.metadata,
        name,
        uid: old?.metadata.uid ?? obj.metadata?.uid ?? `uid-${++this.#uid}`,
        resourceVersion: String(rv),
        generation: old?.metadata.generation ?? 1,
      },
    } as StoredObject;
    store.set(key, stored);
    this.#record({
      rv,
      collection,
      namespace: ns,
      type: old === undefined ? 'ADDED' : 'MODIFIED',
      object: stored,
    });
    return stored;
  }

  /** Deletes an object and logs the event; answers whether it existed. */
  remove(collection: string, name: string, namespace?: string): boolean {
    const store = this.#collection(collection);
    const key = `${namespace ?? ''}/${name}`;
    const old = store.get(key);
    if (old === undefined) return false;
    store.delete(key);
    const rv = ++this.#rv;
    this.#record({
      rv,
      collection,
      namespace,
      type: 'DELETED',
      object: { ...old, metadata: { ...old.metadata, resourceVersion: String(rv) } },
    });
    return true;
  }

  /** The stored object, or undefined. */
  get(collection: string, name: string, namespace?: string): StoredObject | undefined {
    return this.#collection(collection).get(`${namespace ?? ''}/${name}`);
  }

  /** Ends every open watch stream (as an apiserver restart or a dropped connection would). */
  dropWatches(): void {
    for (const w of this.#watches) w.res.destroy();
    this.#watches.clear();
  }

  /** Forgets the event log up to now: watches from an older resourceVersion get 410 Gone. */
  compact(): void {
    this.#compactedBelow = this.#rv;
    this.#log.length = 0;
  }

  /** Sends a BOOKMARK at the current resourceVersion to every open watch. */
  bookmark(): void {
    for (const w of this.#watches) {
      w.res.write(
        `${JSON.stringify({ type: 'BOOKMARK', object: { metadata: { resourceVersion: String(this.#rv) } } })}\n`,
      );
    }
  }

  /** Answers the next `times` requests matching `match` with `status`. */
  failNext(times: number, status: number, match: (r: RecordedRequest) => boolean = () => true): void {
    for (let i = 0; i < times; i++) this.#failures.push({ status, match });
  }

  /**
   * Serves port-forwards to the pod `namespace/name`: a stream to pod port `p` connects to
   * 127.0.0.1:`ports[p]`; a port not named gets the kubelet's error ("connection refused").
   * A pod never named answers 404, as a missing pod does.
   */
  forwardPod(namespace: string, name: string, ports: Readonly<Record<number, number>>): void {
    this.#forwards.set(
      `${namespace}/${name}`,
      new Map(Object.entries(ports).map(([p, local]) => [Number(p), local])),
    );
  }

  /** Port-forward streams open now. */
  get openStreams(): number {
    return this.#streams.size;
  }

  async close(): Promise<void> {
    for (const ws of this.#streams) ws.terminate();
    this.#wss.close();
    this.dropWatches();
    this.#server.closeAllConnections();
    await new Promise<void>(resolve =>
      this.#server.close(() => {
        resolve();
      }),
    );
  }

  #collection(path: string): Map<string, StoredObject> {
    let c = this.#collections.get(path);
    if (c === undefined) {
      c = new Map();
      this.#collections.set(path, c);
    }
    return c;
  }

  #record(entry: LogEntry): void {
    this.#log.push(entry);
    for (const w of this.#watches) {
      if (
        w.collection === entry.collection &&
        (w.namespace === undefined || w.namespace === entry.namespace)
      ) {
        w.res.write(`${JSON.stringify({ type: entry.type, object: entry.object })}\n`);
      }
    }
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    const query = Object.fromEntries(url.searchParams.entries());
    const recorded: RecordedRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query,
      contentType: req.headers['content-type'],
    };
    this.requests.push(recorded);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const failure = this.#failures.findIndex(f => f.match(recorded));
      if (failure >= 0) {
        const { status } = this.#failures[failure]!;
        this.#failures.splice(failure, 1);
        this.#status(res, status, 'InternalError', 'injected failure');
        return;
      }
      const body =
        chunks.length === 0 ? undefined : (JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown);
      this.#route(recorded, body, res);
    });
  }

  #upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    const recorded: RecordedRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams.entries()),
      contentType: undefined,
    };
    this.requests.push(recorded);
    const refuse = (code: number, reason: string): void => {
      socket.end(`HTTP/1.1 ${code} ${reason}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    };
    const failure = this.#failures.findIndex(f => f.match(recorded));
    if (failure >= 0) {
      const { status } = this.#failures[failure]!;
      this.#failures.splice(failure, 1);
      refuse(status, 'Injected');
      return;
    }
    const m = PORT_FORWARD.exec(url.pathname);
    const ports = m === null ? undefined : this.#forwards.get(`${m[1]}/${m[2]}`);
    const port = Number(url.searchParams.get('ports'));
    if (m === null || ports === undefined) {
      refuse(404, 'Not Found');
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, ws => {
      this.#stream(ws, `${m[1]}/${m[2]}`, port, ports.get(port));
    });
  }

  /** One port-forward stream: channel 0 data, channel 1 errors, each opened with the port number. */
  #stream(ws: WebSocket, pod: string, port: number, local: number | undefined): void {
    this.#streams.add(ws);
    const frame = (channel: number, data: Buffer): Buffer => Buffer.concat([Buffer.from([channel]), data]);
    const portBytes = Buffer.alloc(2);
    portBytes.writeUInt16LE(port);
    ws.send(frame(0, portBytes));
    ws.send(frame(1, portBytes));
    const fail = (why: string): void => {
      ws.send(frame(1, Buffer.from(`error forwarding port ${port} to pod ${pod}: ${why}`)));
      ws.close();
    };
    if (local === undefined) {
      fail(`dial tcp4 127.0.0.1:${port}: connect: connection refused`);
      ws.on('close', () => this.#streams.delete(ws));
      return;
    }
    const target = connect(local, '127.0.0.1');
    target.on('data', (d: Buffer) => {
      ws.send(frame(0, d));
    });
    target.on('error', err => {
      fail(err.message);
    });
    target.on('end', () => {
      ws.close();
    });
    ws.on('message', (data: Buffer, isBinary) => {
      if (isBinary && data[0] === 0) target.write(data.subarray(1));
    });
    ws.on('close', () => {
      this.#streams.delete(ws);
      target.destroy();
    });
  }

  #status(res: http.ServerResponse, code: number, reason: string, message: string): void {
    this.#json(res, code, { kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message });
  }

  #json(res: http.ServerResponse, code: number, body: unknown): void {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  #route(r: RecordedRequest, body: unknown, res: http.ServerResponse): void {
    const m = PATH.exec(r.path);
    if (m === null) {
      this.#status(res, 404, 'NotFound', `no route ${r.path}`);
      return;
    }
    const [, root, namespace, plural, name, status] = m;
    const collection = `${root}/${plural}`;
    if (name === undefined) {
      if (r.method === 'GET' && r.query.watch === 'true') this.#watch(collection, namespace, r.query, res);
      else if (r.method === 'GET') this.#list(collection, namespace, r.query.labelSelector, res);
      else if (r.method === 'POST') this.#create(collection, namespace, body as StoredObject, res);
      else this.#status(res, 405, 'MethodNotAllowed', r.method);
      return;
    }
    const existing = this.get(collection, name, namespace);
    if (r.method === 'PATCH' && r.contentType === 'application/apply-patch+yaml' && status === undefined) {
      // Server-side apply, simplified: create, or merge into the live object.
      const merged = mergePatch(existing ?? {}, body) as StoredObject;
      this.#json(res, existing === undefined ? 201 : 200, this.put(collection, merged));
      return;
    }
    if (existing === undefined) {
      this.#status(res, 404, 'NotFound', `${plural} "${name}" not found`);
      return;
    }
    if (r.method === 'GET') {
      this.#json(res, 200, existing);
    } else if (r.method === 'DELETE') {
      this.remove(collection, name, namespace);
      this.#json(res, 200, existing);
    } else if (r.method === 'PATCH' && r.contentType === 'application/merge-patch+json') {
      const patch = body as { metadata?: { resourceVersion?: string } };
      const want = patch.metadata?.resourceVersion;
      if (want !== undefined && want !== existing.metadata.resourceVersion) {
        this.#status(
          res,
          409,
          'Conflict',
          `the object has been modified; please apply your changes to the latest version`,
        );
        return;
      }
      // The status subresource takes only status; the main resource ignores it.
      const patched =
        status === 'status'
          ? { ...existing, status: mergePatch(existing.status, (body as { status?: unknown }).status) }
          : {
              ...(mergePatch(existing, { ...patch, status: undefined }) as StoredObject),
              status: existing.status,
            };
      this.#json(res, 200, this.put(collection, patched));
    } else {
      this.#status(res, 415, 'UnsupportedMediaType', `${r.method} ${r.contentType ?? ''}`);
    }
  }

  #list(
    collection: string,
    namespace: string | undefined,
    labelSelector: string | undefined,
    res: http.ServerResponse,
  ): void {
    // Equality selectors only (`a=b,c=d`).
    const wanted = (labelSelector ?? '')
      .split(',')
      .filter(t => t !== '')
      .map(t => t.split('=') as [string, string]);
    const items = [...this.#collection(collection).values()].filter(
      o =>
        (namespace === undefined || o.metadata.namespace === namespace) &&
        wanted.every(([k, v]) => o.metadata.labels?.[k] === v),
    );
    this.#json(res, 200, { kind: 'List', metadata: { resourceVersion: String(this.#rv) }, items });
  }

  #create(
    collection: string,
    namespace: string | undefined,
    obj: StoredObject,
    res: http.ServerResponse,
  ): void {
    const name = obj.metadata.name;
    if (this.get(collection, name, namespace) !== undefined) {
      this.#status(res, 409, 'AlreadyExists', `"${name}" already exists`);
      return;
    }
    this.#json(
      res,
      201,
      this.put(collection, { ...obj, metadata: { ...obj.metadata, ...(namespace ? { namespace } : {}) } }),
    );
  }

  #watch(
    collection: string,
    namespace: string | undefined,
    query: Record<string, string>,
    res: http.ServerResponse,
  ): void {
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    const from = Number(query.resourceVersion ?? String(this.#rv));
    if (from < this.#compactedBelow) {
      res.end(
        `${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired', message: `too old resource version: ${from} (${this.#compactedBelow})` } })}\n`,
      );
      return;
    }
    for (const e of this.#log) {
      if (
        e.rv > from &&
        e.collection === collection &&
        (namespace === undefined || e.namespace === namespace)
      ) {
        res.write(`${JSON.stringify({ type: e.type, object: e.object })}\n`);
      }
    }
    const w: OpenWatch = { collection, namespace, res };
    this.#watches.add(w);
    res.on('close', () => this.#watches.delete(w));
  }
}
