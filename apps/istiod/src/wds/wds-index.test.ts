import { describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import {
  goldenFixture,
  makeAuthorizationPolicy,
  makePod,
  makeService,
  makeWaypoint,
} from '../testing/fixtures.ts';
import { renderForDebug } from './debug-view.ts';
import { compileAuthorizationPolicyObject, type CompiledPolicy } from './policies.ts';
import { ObjectKinds, WdsIndex } from './wds-index.ts';
import type { AuthorizationPolicy, Service } from '../kube/objects.ts';

function newIndex(onPolicyCompiled?: (p: AuthorizationPolicy, r: CompiledPolicy) => void): WdsIndex {
  return new WdsIndex({
    clusterId: 'Kubernetes',
    trustDomain: 'cluster.local',
    domain: 'cluster.local',
    rootNamespace: 'istio-system',
    compilePolicy: compileAuthorizationPolicyObject,
    ...(onPolicyCompiled ? { onPolicyCompiled } : {}),
  });
}

function loadGolden(index: WdsIndex): void {
  const f = goldenFixture();
  for (const n of f.nodes) index.upsert(ObjectKinds.NODE, n);
  for (const n of f.namespaces) index.upsert(ObjectKinds.NAMESPACE, n);
  for (const p of f.pods) index.upsert(ObjectKinds.POD, p);
  for (const s of f.services) index.upsert(ObjectKinds.SERVICE, s);
  for (const p of f.policies) index.upsert(ObjectKinds.AUTHORIZATION_POLICY, p);
  for (const p of f.peerAuthentications) index.upsert(ObjectKinds.PEER_AUTHENTICATION, p);
}

function snapshot(index: WdsIndex): unknown {
  const byName = (m: ReadonlyMap<string, { value: unknown }>): Record<string, unknown> =>
    Object.fromEntries(
      [...m].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, renderForDebug(v.value)]),
    );
  return { addresses: byName(index.addresses), authorizations: byName(index.authorizations) };
}

describe('WdsIndex golden fixture', () => {
  it('produces exactly the golden Address and Authorization resources', async () => {
    const index = newIndex();
    loadGolden(index);
    expect(index.addresses.size).toBe(8);
    expect([...index.authorizations.keys()].sort()).toEqual([
      'golden/allow-web',
      'golden/deny-db-port',
      'golden/ns-allow',
      'istio-system/istio_converted_static_strict',
    ]);
    // The golden file is reviewed by hand; it is compared as data, so its formatting is free.
    const golden = JSON.parse(
      await readFile(new URL('testdata/golden-wds.json', import.meta.url), 'utf8'),
    ) as unknown;
    expect(snapshot(index)).toEqual(golden);
  });

  it('gives the same result whatever the order of events', () => {
    const a = newIndex();
    loadGolden(a);
    const b = newIndex();
    const f = goldenFixture();
    for (const p of f.peerAuthentications) b.upsert(ObjectKinds.PEER_AUTHENTICATION, p);
    for (const p of f.policies) b.upsert(ObjectKinds.AUTHORIZATION_POLICY, p);
    for (const s of f.services) b.upsert(ObjectKinds.SERVICE, s);
    for (const p of [...f.pods].reverse()) b.upsert(ObjectKinds.POD, p);
    for (const n of f.namespaces) b.upsert(ObjectKinds.NAMESPACE, n);
    for (const n of f.nodes) b.upsert(ObjectKinds.NODE, n);
    expect(snapshot(b)).toEqual(snapshot(a));
    for (const [name, r] of a.addresses) expect(b.addresses.get(name)?.version).toBe(r.version);
  });
});

describe('WdsIndex incremental changes', () => {
  it('recomputes only the changed pod when a pod is relabelled', () => {
    const index = newIndex();
    loadGolden(index);
    const pod = goldenFixture().pods[2]!; // api-0
    const relabelled = { ...pod, metadata: { ...pod.metadata, labels: { app: 'api', version: 'v9' } } };
    const changes = index.upsert(ObjectKinds.POD, relabelled);
    expect([...changes.addresses]).toEqual(['Kubernetes//Pod/golden/api-0']);
    expect(changes.authorizations.size).toBe(0);
    const w = index.addresses.get('Kubernetes//Pod/golden/api-0')!.value.workload!;
    expect(w.canonicalRevision).toBe('v9');
  });

  it('reports a removal when a pod is deleted and nothing when an unchanged pod is re-sent', () => {
    const index = newIndex();
    loadGolden(index);
    const pod = goldenFixture().pods[0]!;
    expect(index.upsert(ObjectKinds.POD, pod).addresses.size).toBe(0);
    const changes = index.delete(ObjectKinds.POD, pod);
    expect([...changes.addresses]).toEqual(['Kubernetes//Pod/golden/web-7d4b9c-abcde']);
    expect(index.addresses.has('Kubernetes//Pod/golden/web-7d4b9c-abcde')).toBe(false);
  });

  it('adds a selector policy to the pods it selects, and only those', () => {
    const index = newIndex();
    loadGolden(index);
    const changes = index.upsert(
      ObjectKinds.AUTHORIZATION_POLICY,
      makeAuthorizationPolicy('deny-api', 'golden', {
        selector: { matchLabels: { app: 'api' } },
        action: 'DENY',
        rules: [{}],
      }),
    );
    expect([...changes.authorizations]).toEqual(['golden/deny-api']);
    expect([...changes.addresses]).toEqual(['Kubernetes//Pod/golden/api-0']);
    expect(
      index.addresses.get('Kubernetes//Pod/golden/api-0')!.value.workload!.authorizationPolicies,
    ).toEqual(['golden/deny-api', 'istio-system/istio_converted_static_strict']);
  });

  it('reports a malformed policy with its field path and leaves other resources alone', () => {
    const reports: CompiledPolicy[] = [];
    const index = newIndex((_p, r) => reports.push(r));
    loadGolden(index);
    const before = snapshot(index);
    const bad = makeAuthorizationPolicy('broken', 'golden', {
      selector: { matchLabels: { app: 'web' } },
      rules: [{ from: [{ source: { ipBlocks: ['not-an-ip'] } }] }],
    });
    const changes = index.upsert(ObjectKinds.AUTHORIZATION_POLICY, bad);
    expect(changes.addresses.size).toBe(0);
    expect(changes.authorizations.size).toBe(0);
    expect(snapshot(index)).toEqual(before);
    const last = reports.at(-1)!;
    expect(last.authorization).toBeUndefined();
    expect(last.errors.map(e => e.path)).toContain('spec.rules[0].from[0].source.ipBlocks[0]');
  });

  it('updates the pods of a service when its selector changes', () => {
    const index = newIndex();
    loadGolden(index);
    const svc = goldenFixture().services[1]!; // api → now selects db
    const moved: Service = { ...svc, spec: { ...svc.spec, selector: { app: 'db' } } };
    const changes = index.upsert(ObjectKinds.SERVICE, moved);
    expect([...changes.addresses].sort()).toEqual([
      'Kubernetes//Pod/golden/api-0',
      'Kubernetes//Pod/golden/db-0',
    ]);
    // The Service resource carries no selector, so it is unchanged and not re-sent.
  });

  it('binds services to a waypoint once its Gateway has an address', () => {
    const index = newIndex();
    const svc = makeService(
      's',
      'wp',
      { clusterIP: '10.96.1.1', selector: { app: 's' } },
      { 'istio.io/use-waypoint': 'waypoint' },
    );
    index.upsert(ObjectKinds.SERVICE, svc);
    index.upsert(
      ObjectKinds.POD,
      makePod({ name: 'p', namespace: 'wp', node: 'n', ip: '10.1.0.1', labels: { app: 's' } }),
    );
    index.upsert(ObjectKinds.GATEWAY, makeWaypoint('waypoint', 'wp'));
    expect(index.addresses.get('wp/s.wp.svc.cluster.local')!.value.service!.waypoint).toBeUndefined();
    const changes = index.upsert(
      ObjectKinds.GATEWAY,
      makeWaypoint('waypoint', 'wp', 'waypoint.wp.svc.cluster.local'),
    );
    expect([...changes.addresses]).toEqual(['wp/s.wp.svc.cluster.local']);
    expect(index.addresses.get('wp/s.wp.svc.cluster.local')!.value.service!.waypoint).toEqual({
      hostname: { namespace: 'wp', hostname: 'waypoint.wp.svc.cluster.local' },
      hboneMtlsPort: 15008,
    });
    // The pod is not bound: the waypoint serves services by default.
    expect(index.addresses.get('Kubernetes//Pod/wp/p')!.value.workload!.waypoint).toBeUndefined();
  });

  it('drops objects missing from a relist', () => {
    const index = newIndex();
    loadGolden(index);
    const pods = goldenFixture().pods.slice(1);
    const changes = index.replaceAll(ObjectKinds.POD, pods);
    expect([...changes.addresses]).toEqual(['Kubernetes//Pod/golden/web-7d4b9c-abcde']);
  });

  it('notifies listeners after the change is committed', () => {
    const index = newIndex();
    const seen: number[] = [];
    const off = index.onChange(cs => seen.push(cs.addresses.size + index.addresses.size));
    index.upsert(ObjectKinds.POD, makePod({ name: 'p', node: 'n', ip: '10.1.0.1' }));
    off();
    index.upsert(ObjectKinds.POD, makePod({ name: 'q', node: 'n', ip: '10.1.0.2' }));
    expect(seen).toEqual([2]);
  });
});
