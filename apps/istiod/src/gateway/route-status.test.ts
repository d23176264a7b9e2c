import { systemTimers } from '@ambient-mesh/kube';
import { FakeApiServer, until } from '@ambient-mesh/kube/testing';
import { silentLogger } from '@ambient-mesh/runtime';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RouteParentStatus } from '../waypoint/resolve-route.ts';
import { kubeGatewayApi } from './kube-gateway-api.ts';
import {
  RouteAttachments,
  RouteStatusWriter,
  routeParentsWire,
  type RouteParentWire,
  type StatusRouteKind,
} from './route-status.ts';

const ROUTES = '/apis/gateway.networking.k8s.io/v1/httproutes';

function parent(
  ref: Partial<RouteParentStatus['parentRef']>,
  accepted = true,
  resolved: [string, string] = ['True', 'ResolvedRefs'],
): RouteParentStatus {
  return {
    parentRef: { group: '', kind: 'Service', namespace: 'app', name: 'reviews', ...ref },
    controllerName: 'istio.io/gateway-controller',
    conditions: [
      accepted
        ? {
            type: 'Accepted',
            status: 'True',
            reason: 'Accepted',
            message: 'Route was valid',
            observedGeneration: 1,
          }
        : {
            type: 'Accepted',
            status: 'False',
            reason: 'NoMatchingParent',
            message: 'parent not found',
            observedGeneration: 1,
          },
      {
        type: 'ResolvedRefs',
        status: resolved[0] as 'True' | 'False',
        reason: resolved[1],
        message: resolved[0] === 'True' ? 'All references resolved' : 'backend(nope.app) not found',
        observedGeneration: 1,
      },
    ],
  };
}

describe('RouteStatusWriter', () => {
  it('writes a route’s parents once while leading, again on resync, and nothing for a deleted route', async () => {
    const writes: string[] = [];
    let leader = false;
    const writer = new RouteStatusWriter({
      patch: (kind: StatusRouteKind, ns, name, parents: readonly RouteParentWire[]) => {
        writes.push(`${kind} ${ns}/${name} ${parents.map(p => p.conditions[1]!.reason).join()}`);
        return Promise.resolve();
      },
      logger: silentLogger(),
      timers: systemTimers,
      isLeader: () => leader,
    });
    writer.update('HTTPRoute', 'app/r', [parent({})]);
    await writer.idle();
    expect(writes).toEqual([]);
    leader = true;
    writer.update('HTTPRoute', 'app/r', [parent({})]);
    writer.update('GRPCRoute', 'app/g', [parent({}, true, ['False', 'BackendNotFound'])]);
    await writer.idle();
    writer.update('HTTPRoute', 'app/r', [parent({})]);
    await writer.idle();
    expect(writes).toEqual(['HTTPRoute app/r ResolvedRefs', 'GRPCRoute app/g BackendNotFound']);
    writer.forget('GRPCRoute', 'app/g');
    writer.resync();
    await writer.idle();
    expect(writes.slice(2)).toEqual(['HTTPRoute app/r ResolvedRefs']);
    writer.close();
  });

  it('names the parent as the spec does: namespace only when it is not the route’s', () => {
    const wire = routeParentsWire('app', [
      parent({ port: 9080 }),
      parent({ group: 'gateway.networking.k8s.io', kind: 'Gateway', namespace: 'infra', name: 'wp' }),
    ]);
    expect(wire.map(w => w.parentRef)).toEqual([
      { group: '', kind: 'Service', name: 'reviews', port: 9080 },
      { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'wp', namespace: 'infra' },
    ]);
  });
});

describe('RouteAttachments', () => {
  it('counts accepted Gateway parents per listener and reports the Gateways whose count changed', () => {
    const a = new RouteAttachments();
    const changed: string[][] = [];
    a.onChange(gws => changed.push([...gws]));
    const gwParent = (sectionName?: string, accepted = true) =>
      parent(
        {
          group: 'gateway.networking.k8s.io',
          kind: 'Gateway',
          name: 'wp',
          ...(sectionName === undefined ? {} : { sectionName }),
        },
        accepted,
      );
    const mesh = { name: 'mesh', port: 15008 };
    const other = { name: 'other', port: 80 };
    a.record('HTTPRoute', 'app/any', [gwParent()]);
    a.record('HTTPRoute', 'app/mesh-only', [gwParent('mesh')]);
    a.record('HTTPRoute', 'app/refused', [gwParent(undefined, false)]);
    a.record('HTTPRoute', 'app/service', [parent({})]);
    expect(a.attachedRoutes('app/wp', mesh)).toBe(2);
    expect(a.attachedRoutes('app/wp', other)).toBe(1);
    expect(changed).toEqual([['app/wp'], ['app/wp']]);
    a.record('HTTPRoute', 'app/any', [gwParent()]);
    expect(changed).toHaveLength(2);
    a.forget('HTTPRoute', 'app/any');
    expect(a.attachedRoutes('app/wp', mesh)).toBe(1);
    expect(changed).toHaveLength(3);
  });
});

describe('kubeGatewayApi.patchRouteStatus', () => {
  let server: FakeApiServer;
  beforeEach(async () => {
    server = await FakeApiServer.start();
  });
  afterEach(async () => {
    await server.close();
  });

  it('writes our parents beside another controller’s, and nothing when they are already there', async () => {
    const theirs = {
      parentRef: { kind: 'Gateway', name: 'edge' },
      controllerName: 'example.com/other',
      conditions: [{ type: 'Accepted', status: 'True', reason: 'Accepted', message: 'ok' }],
    };
    server.put(ROUTES, {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: 'r', namespace: 'app', generation: 1 },
      spec: {},
      status: { parents: [theirs] },
    });
    const api = kubeGatewayApi(server.kubeConfig());
    const ours = routeParentsWire('app', [parent({ port: 9080 }, true, ['False', 'BackendNotFound'])]);
    await api.patchRouteStatus('HTTPRoute', 'app', 'r', ours);
    type Stored = { metadata: { resourceVersion: string }; status: { parents: RouteParentWire[] } };
    const stored = await until(
      'status written',
      () => server.get(ROUTES, 'r', 'app') as unknown as Stored | undefined,
    );
    expect(stored.status.parents).toHaveLength(2);
    expect(stored.status.parents[0]).toEqual(theirs);
    expect(stored.status.parents[1]).toMatchObject({
      parentRef: { group: '', kind: 'Service', name: 'reviews', port: 9080 },
      controllerName: 'istio.io/gateway-controller',
    });
    const resolved = stored.status.parents[1]!.conditions.find(c => c.type === 'ResolvedRefs');
    expect(resolved).toMatchObject({ status: 'False', reason: 'BackendNotFound' });
    expect(resolved?.lastTransitionTime).toBeTypeOf('string');
    const version = stored.metadata.resourceVersion;
    await api.patchRouteStatus('HTTPRoute', 'app', 'r', ours);
    expect((server.get(ROUTES, 'r', 'app') as unknown as Stored).metadata.resourceVersion).toBe(version);
  });
});
