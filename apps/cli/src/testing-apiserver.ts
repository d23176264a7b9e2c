/**
 * A small in-memory apiserver for direct tests: objects stored by path, GET of an object or of a
 * collection (items under it, `labelSelector=k=v[,k=v]`), POST (create), PATCH (merge) and DELETE,
 * and a log of every request. `clusterFor` binds a Cluster to it with a fake pod port (no
 * port-forward): tests answer `podRequest` themselves.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ZtunnelPod } from '@ambient-mesh/install';
import type { PodHttpAnswer } from '@ambient-mesh/kube';
import { connectCluster, type Cluster, type ClusterFlags, type PodForward } from './cluster.ts';

type Obj = Record<string, unknown> & {
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string> };
};

export interface FakeApiserver {
  readonly kubeconfig: string;
  readonly objects: Map<string, Obj>;
  readonly requests: string[];
  /** Stores an object at its path. */
  /** Stores an object (or a text, served as text/plain, e.g. a pod log) at its path. */
  put(path: string, obj: object | string): void;
  /** A Cluster on this apiserver; pod ports answer through `pod`. */
  cluster(
    pod?: (p: ZtunnelPod, port: number, method: string, path: string) => PodHttpAnswer | undefined,
    forward?: PodForward,
  ): (flags: ClusterFlags) => Cluster;
  /** Called on every write, after it is stored (lets a test play a controller). */
  onWrite?: ((method: string, path: string) => void) | undefined;
  close(): Promise<void>;
}

function matches(obj: Obj, selector: string | null): boolean {
  if (selector === null || selector === '') return true;
  return selector.split(',').every(term => {
    const [k, v] = term.split('=');
    return k !== undefined && obj.metadata?.labels?.[k] === v;
  });
}

async function body(req: IncomingMessage): Promise<Obj | undefined> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text === '' ? undefined : (JSON.parse(text) as Obj);
}

function merge(target: Record<string, unknown>, patch: Record<string, unknown>): Record<string, unknown> {
  const out = new Map(Object.entries(target));
  for (const [k, v] of Object.entries(patch)) {
    const cur = out.get(k);
    if (v === null) out.delete(k);
    else if (typeof v === 'object' && !Array.isArray(v) && typeof cur === 'object' && cur !== null)
      out.set(k, merge(cur as Record<string, unknown>, v as Record<string, unknown>));
    else out.set(k, v);
  }
  return Object.fromEntries(out);
}

export async function startFakeApiserver(): Promise<FakeApiserver> {
  const objects = new Map<string, Obj>();
  const requests: string[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'ambientctl-fake-'));
  const notFound = { kind: 'Status', status: 'Failure', reason: 'NotFound', code: 404, message: 'not found' };
  const api: FakeApiserver = {
    kubeconfig: join(dir, 'kubeconfig'),
    objects,
    requests,
    put: (path, obj) => objects.set(path, obj as Obj),
    cluster: (pod, forward) => flags => ({
      ...connectCluster({ ...flags, kubeconfig: api.kubeconfig }, ''),
      podRequest: (p, port, method, path) => Promise.resolve(pod?.(p, port, method, path)),
      podGet: (p, port, path) => {
        const a = pod?.(p, port, 'GET', path);
        return Promise.resolve(a?.status === 200 ? a.body : undefined);
      },
      forward: forward ?? (() => Promise.reject(new Error('no port-forward in this test'))),
    }),
    close: () =>
      new Promise<void>(resolve => {
        server.close(() => {
          rmSync(dir, { recursive: true, force: true });
          resolve();
        });
      }),
  };
  const server: Server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const path = url.pathname.replace(/\/$/, '');
      const method = req.method ?? 'GET';
      requests.push(`${method} ${path}`);
      const reply = (code: number, data: unknown): void => {
        if (typeof data === 'string') {
          res.writeHead(code, { 'content-type': 'text/plain' });
          res.end(data);
          return;
        }
        res.writeHead(code, { 'content-type': 'application/json' });
        res.end(JSON.stringify(data));
      };
      const b = await body(req);
      if (method === 'GET') {
        const obj = objects.get(path);
        if (obj !== undefined) {
          reply(200, obj);
          return;
        }
        const items = [...objects.entries()]
          .filter(([p]) => p.startsWith(`${path}/`) && !p.slice(path.length + 1).includes('/'))
          .map(([, o]) => o)
          .filter(o => typeof o === 'object' && matches(o, url.searchParams.get('labelSelector')));
        const collection = [...objects.keys()].some(p => p.startsWith(`${path}/`)) || /s$/.test(path);
        if (collection) reply(200, { kind: 'List', metadata: {}, items });
        else reply(404, notFound);
        return;
      }
      if (method === 'POST' && b !== undefined) {
        const at = `${path}/${b.metadata?.name ?? ''}`;
        if (objects.has(at)) {
          reply(409, { ...notFound, reason: 'AlreadyExists', code: 409 });
          return;
        }
        objects.set(at, b);
        api.onWrite?.(method, at);
        reply(201, b);
        return;
      }
      if (method === 'PATCH' && b !== undefined) {
        const obj = objects.get(path);
        if (obj === undefined) {
          reply(404, notFound);
          return;
        }
        objects.set(path, merge(obj, b));
        api.onWrite?.(method, path);
        reply(200, objects.get(path));
        return;
      }
      if (method === 'DELETE') {
        const obj = objects.get(path);
        if (obj === undefined) {
          reply(404, notFound);
          return;
        }
        objects.delete(path);
        api.onWrite?.(method, path);
        reply(200, obj);
        return;
      }
      reply(405, { ...notFound, reason: 'MethodNotAllowed', code: 405 });
    })();
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  writeFileSync(
    api.kubeconfig,
    `apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:${port}\n    insecure-skip-tls-verify: true\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: t\n`,
  );
  return api;
}
