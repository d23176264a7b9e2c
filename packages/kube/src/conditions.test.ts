import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KubeClient } from './client.ts';
import {
  mergeConditions,
  ownedConditionsEqual,
  patchStatusConditions,
  type Condition,
} from './conditions.ts';
import { FakeApiServer } from './testing/fake-apiserver.ts';

const theirs: Condition = {
  type: 'WaypointBound',
  status: 'True',
  reason: 'Bound',
  message: 'bound to waypoint',
};
const oldOurs: Condition = {
  type: 'ZtunnelAccepted',
  status: 'True',
  reason: 'Accepted',
  message: 'ok',
  lastTransitionTime: '2026-01-01T00:00:00.000Z',
};
const now = (): Date => new Date('2026-12-05T00:00:00.000Z');

describe('mergeConditions', () => {
  it('replaces only the owned types, in place, and keeps the others untouched', () => {
    const ours: Condition = { type: 'ZtunnelAccepted', status: 'False', reason: 'Invalid', message: 'bad' };
    expect(mergeConditions([oldOurs, theirs], [ours], { ownedTypes: ['ZtunnelAccepted'], now })).toEqual([
      { ...ours, lastTransitionTime: '2026-12-05T00:00:00.000Z' },
      theirs,
    ]);
  });

  it('keeps lastTransitionTime when the status did not change, appends new types, drops owned ones not wanted', () => {
    const same: Condition = { ...oldOurs, message: 'ok, again', lastTransitionTime: undefined };
    const merged = mergeConditions(
      [theirs, oldOurs, { type: 'Stale', status: 'True' }],
      [same, { type: 'Ready', status: 'True' }],
      { ownedTypes: ['ZtunnelAccepted', 'Stale', 'Ready'], now },
    );
    expect(merged).toEqual([
      theirs,
      { ...same, lastTransitionTime: '2026-01-01T00:00:00.000Z' },
      { type: 'Ready', status: 'True', lastTransitionTime: '2026-12-05T00:00:00.000Z' },
    ]);
  });

  it('refuses to write a type it does not own', () => {
    expect(() => mergeConditions([], [theirs], { ownedTypes: ['ZtunnelAccepted'] })).toThrow(
      /not among the owned/,
    );
  });

  it('compares only the owned types', () => {
    const { lastTransitionTime: _t, ...bare } = oldOurs;
    expect(ownedConditionsEqual([theirs, oldOurs], [bare], ['ZtunnelAccepted'])).toBe(true);
    expect(ownedConditionsEqual([theirs], [bare], ['ZtunnelAccepted'])).toBe(false);
  });
});

describe('patchStatusConditions', () => {
  const COLLECTION = '/apis/security.istio.io/v1/authorizationpolicies';
  const PATH = '/apis/security.istio.io/v1/namespaces/ns/authorizationpolicies/p';
  let server: FakeApiServer;
  let client: KubeClient;

  beforeEach(async () => {
    server = await FakeApiServer.start();
    client = new KubeClient(server.kubeConfig());
    server.put(COLLECTION, {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'p', namespace: 'ns' },
      spec: {},
      status: { conditions: [theirs] },
    });
  });

  afterEach(async () => {
    await server.close();
  });

  const ours: Condition = { type: 'ZtunnelAccepted', status: 'True', reason: 'Accepted', message: 'ok' };

  it("writes ours next to another controller's condition, and not again when nothing changed", async () => {
    const opts = { conditions: [ours], ownedTypes: ['ZtunnelAccepted'] };
    expect(await patchStatusConditions(client, PATH, opts)).toBe(true);
    expect(server.get(COLLECTION, 'p', 'ns')?.status).toEqual({ conditions: [theirs, ours] });
    const patch = server.requests.find(r => r.method === 'PATCH');
    expect(patch).toMatchObject({ path: `${PATH}/status`, contentType: 'application/merge-patch+json' });
    expect(await patchStatusConditions(client, PATH, opts)).toBe(false);
    expect(server.count('PATCH', `${PATH}/status`)).toBe(1);
  });

  it('re-reads and merges again after a conflict, keeping a condition written meanwhile', async () => {
    const other: Condition = { type: 'Audited', status: 'True' };
    // Another controller writes between our read and our patch: our patch carries the old
    // resourceVersion and is refused with 409, then retried on the fresh object.
    let raced = false;
    const racing = {
      get: async <T>(path: string): Promise<T> => {
        const v = await client.get<T>(path);
        if (!raced) {
          raced = true;
          const live = server.get(COLLECTION, 'p', 'ns')!;
          server.put(COLLECTION, { ...live, status: { conditions: [theirs, other] } });
        }
        return v;
      },
      request: client.request.bind(client),
    } as unknown as KubeClient;
    expect(
      await patchStatusConditions(racing, PATH, { conditions: [ours], ownedTypes: ['ZtunnelAccepted'] }),
    ).toBe(true);
    expect(server.get(COLLECTION, 'p', 'ns')?.status).toEqual({ conditions: [theirs, other, ours] });
    expect(server.count('PATCH', `${PATH}/status`)).toBe(2);
  });

  it('throws NotFound for a missing object, with what to check', async () => {
    await expect(
      patchStatusConditions(client, `${PATH}-missing`, {
        conditions: [ours],
        ownedTypes: ['ZtunnelAccepted'],
      }),
    ).rejects.toMatchObject({
      code: 'KUBE_NOT_FOUND',
      message: expect.stringContaining('check the name and namespace'),
    });
  });
});
