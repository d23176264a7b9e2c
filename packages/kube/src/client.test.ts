import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KubeClient } from './client.ts';
import { FakeApiServer } from './testing/fake-apiserver.ts';

describe('KubeClient', () => {
  let server: FakeApiServer;
  let client: KubeClient;

  beforeEach(async () => {
    server = await FakeApiServer.start();
    client = new KubeClient(server.kubeConfig());
  });

  afterEach(async () => {
    await server.close();
  });

  it('creates, finds, patches and deletes; ensure and delete take AlreadyExists and NotFound as done', async () => {
    const path = '/api/v1/namespaces/ns/configmaps';
    const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: { a: '1' } };
    expect(await client.ensure(path, cm)).toBe(true);
    expect(await client.ensure(path, cm)).toBe(false);
    expect(await client.find(`${path}/missing`)).toBeUndefined();
    await client.mergePatch(`${path}/c`, { data: { b: '2' } });
    expect((await client.get<{ data: unknown }>(`${path}/c`)).data).toEqual({ a: '1', b: '2' });
    expect((await client.list(path)).items).toHaveLength(1);
    expect(await client.delete(`${path}/c`)).toBe(true);
    expect(await client.delete(`${path}/c`)).toBe(false);
  });

  it('server-side applies with a field manager, resolving the path of a built-in kind', async () => {
    await client.apply(
      { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd', namespace: 'ns' } },
      { fieldManager: 'installer', force: true },
    );
    const r = server.requests.at(-1)!;
    expect(r).toMatchObject({
      method: 'PATCH',
      path: '/apis/apps/v1/namespaces/ns/deployments/d',
      contentType: 'application/apply-patch+yaml',
      query: { fieldManager: 'installer', force: 'true' },
    });
  });

  it('resolves a custom kind through discovery', async () => {
    const seen: string[] = [];
    const resolver = new (await import('./resources.ts')).ResourceResolver(path => {
      seen.push(path);
      return Promise.resolve({
        resources: [{ name: 'authorizationpolicies', kind: 'AuthorizationPolicy', namespaced: true }],
      });
    });
    const o = {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'p', namespace: 'x' },
    };
    expect(await resolver.objectPath(o)).toBe(
      '/apis/security.istio.io/v1/namespaces/x/authorizationpolicies/p',
    );
    expect(await resolver.objectPath(o, 'status')).toBe(
      '/apis/security.istio.io/v1/namespaces/x/authorizationpolicies/p/status',
    );
    expect(seen).toEqual(['/apis/security.istio.io/v1']);
    await expect(resolver.resolve('security.istio.io/v1', 'Nope')).rejects.toMatchObject({
      code: 'KUBE_NOT_FOUND',
    });
  });

  it('rejects with a typed error carrying the operation', async () => {
    await expect(client.get('/api/v1/namespaces/ns/pods/nope')).rejects.toMatchObject({
      code: 'KUBE_NOT_FOUND',
      operation: 'GET /api/v1/namespaces/ns/pods/nope',
    });
  });

  it('says the apiserver is unreachable when nothing listens', async () => {
    const kc = server.kubeConfig();
    await server.close();
    await expect(new KubeClient(kc).get('/api/v1/pods')).rejects.toMatchObject({ code: 'KUBE_UNREACHABLE' });
    server = await FakeApiServer.start();
  });

  it('ends a watch on abort', async () => {
    const ac = new AbortController();
    const events: string[] = [];
    const watching = client.watch<{ metadata: { name: string } }>('/api/v1/pods', { signal: ac.signal }, ev =>
      events.push(`${ev.type} ${ev.object.metadata.name}`),
    );
    await new Promise<void>(resolve => {
      const check = (): void => {
        if (server.openWatches === 1) resolve();
        else setTimeout(check, 2);
      };
      check();
    });
    server.put('/api/v1/pods', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'a', namespace: 'ns' } });
    await new Promise<void>(resolve => {
      const check = (): void => {
        if (events.length === 1) resolve();
        else setTimeout(check, 2);
      };
      check();
    });
    ac.abort();
    await watching;
    expect(events).toEqual(['ADDED a']);
  });
});
