import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../kube/objects.ts';
import { makeNamespace, makePod } from '../testing/fixtures.ts';
import { ObjectKinds, type ObjectKind } from '../wds/wds-index.ts';
import { DiscoveryFilter, namespaceSelected } from './discovery-filter.ts';

function recorder(): {
  events: string[];
  sink: { upsert(k: ObjectKind, o: KubeObject): void; delete(k: ObjectKind, o: KubeObject): void };
} {
  const events: string[] = [];
  const name = (o: KubeObject): string => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
  return {
    events,
    sink: {
      upsert: (k, o) => events.push(`+${k} ${name(o)}`),
      delete: (k, o) => events.push(`-${k} ${name(o)}`),
    },
  };
}

const pod = (name: string, namespace: string): KubeObject =>
  makePod({ name, namespace, node: 'node-a', ip: '10.0.0.1', serviceAccount: 'default' });

describe('namespaceSelected', () => {
  it('selects every namespace without selectors and any match otherwise', () => {
    expect(namespaceSelected([], {})).toBe(true);
    expect(namespaceSelected([{ matchLabels: { a: '1' } }], { a: '2' })).toBe(false);
    expect(namespaceSelected([{ matchLabels: { a: '1' } }, { matchLabels: { b: '1' } }], { b: '1' })).toBe(
      true,
    );
    expect(namespaceSelected([{}], {})).toBe(true);
  });
});

describe('DiscoveryFilter', () => {
  it('passes everything without selectors', () => {
    const r = recorder();
    const f = new DiscoveryFilter(r.sink);
    f.upsert(ObjectKinds.POD, pod('p', 'apps'));
    expect(r.events).toEqual([`+${ObjectKinds.POD} apps/p`]);
  });

  it('holds objects of unselected namespaces and replays them when their namespace enters', () => {
    const r = recorder();
    const f = new DiscoveryFilter(r.sink, [{ matchLabels: { mesh: 'yes' } }]);
    f.upsert(ObjectKinds.POD, pod('early', 'apps')); // before its Namespace is known
    f.upsert(ObjectKinds.NAMESPACE, makeNamespace('apps'));
    f.upsert(ObjectKinds.NAMESPACE, makeNamespace('other', { mesh: 'yes' }));
    f.upsert(ObjectKinds.POD, pod('o', 'other'));
    expect(r.events).toEqual([
      `+${ObjectKinds.NAMESPACE} /apps`,
      `+${ObjectKinds.NAMESPACE} /other`,
      `+${ObjectKinds.POD} other/o`,
    ]);
    r.events.length = 0;
    // Labelling the namespace makes it enter.
    f.upsert(ObjectKinds.NAMESPACE, makeNamespace('apps', { mesh: 'yes' }));
    expect(r.events).toEqual([`+${ObjectKinds.NAMESPACE} /apps`, `+${ObjectKinds.POD} apps/early`]);
    expect(f.selectedNamespaces()).toEqual(['apps', 'other']);
  });

  it('removes and replays namespaces when the selectors change', () => {
    const r = recorder();
    const f = new DiscoveryFilter(r.sink);
    f.upsert(ObjectKinds.NAMESPACE, makeNamespace('a', { team: 'a' }));
    f.upsert(ObjectKinds.NAMESPACE, makeNamespace('b', { team: 'b' }));
    f.upsert(ObjectKinds.POD, pod('pa', 'a'));
    f.upsert(ObjectKinds.POD, pod('pb', 'b'));
    r.events.length = 0;

    expect(f.setSelectors([{ matchLabels: { team: 'a' } }])).toEqual({ entered: [], left: ['b'] });
    expect(r.events).toEqual([`-${ObjectKinds.POD} b/pb`]);
    r.events.length = 0;

    // A pod of a namespace outside the selectors is held, its deletion forgets it.
    f.upsert(ObjectKinds.POD, pod('pb2', 'b'));
    f.delete(ObjectKinds.POD, pod('pb', 'b'));
    expect(r.events).toEqual([]);

    expect(f.setSelectors([{ matchLabels: { team: 'b' } }])).toEqual({ entered: ['b'], left: ['a'] });
    expect(r.events).toEqual([`-${ObjectKinds.POD} a/pa`, `+${ObjectKinds.POD} b/pb2`]);
    r.events.length = 0;

    expect(f.setSelectors([])).toEqual({ entered: ['a'], left: [] });
    expect(r.events).toEqual([`+${ObjectKinds.POD} a/pa`]);
  });
});
