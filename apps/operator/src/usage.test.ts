import { describe, expect, it } from 'vitest';
import { namespaceSelection, revisionReferences, tagReferences, type MeshReferences } from './usage.ts';

const refs = (over: Partial<MeshReferences>): MeshReferences => ({
  namespaces: [],
  waypoints: [],
  tags: [],
  ...over,
});

describe('what refers to a revision or tag', () => {
  it('a namespace selects its istio.io/rev, else default when ambient or injection-enabled', () => {
    expect(namespaceSelection({ 'istio.io/rev': 'canary' })).toBe('canary');
    expect(namespaceSelection({ 'istio.io/dataplane-mode': 'ambient' })).toBe('default');
    expect(namespaceSelection({ 'istio-injection': 'enabled' })).toBe('default');
    expect(namespaceSelection({})).toBeUndefined();
  });

  it('an ambient namespace refers to the revision its tag points at, and moves with the tag', () => {
    const namespaces = [{ name: 'app', labels: { 'istio.io/dataplane-mode': 'ambient' } }];
    const before = refs({ namespaces, tags: [{ name: 'default', revision: 'default-v1-27-8' }] });
    expect(revisionReferences('default-v1-27-8', before)).toEqual(['namespace app']);
    expect(revisionReferences('default-v1-27-9', before)).toEqual([]);
    expect(tagReferences('default', before)).toEqual(['namespace app']);
    const after = refs({ namespaces, tags: [{ name: 'default', revision: 'default-v1-27-9' }] });
    expect(revisionReferences('default-v1-27-8', after)).toEqual([]);
    expect(revisionReferences('default-v1-27-9', after)).toEqual(['namespace app']);
  });

  it('without tags the revision named default takes unlabelled ambient namespaces (InPlace)', () => {
    const r = refs({ namespaces: [{ name: 'app', labels: { 'istio.io/dataplane-mode': 'ambient' } }] });
    expect(revisionReferences('default', r)).toEqual(['namespace app']);
  });

  it('a waypoint counts for the revision it selects by its own label, its namespace’s, or default', () => {
    const r = refs({
      namespaces: [
        { name: 'plain', labels: {} },
        { name: 'pinned', labels: { 'istio.io/rev': 'default-v1-27-8' } },
      ],
      waypoints: [
        { namespace: 'plain', name: 'waypoint', labels: {} },
        { namespace: 'pinned', name: 'waypoint', labels: {} },
        { namespace: 'plain', name: 'own', labels: { 'istio.io/rev': 'default-v1-27-8' } },
      ],
      tags: [{ name: 'default', revision: 'default-v1-27-9' }],
    });
    expect(revisionReferences('default-v1-27-9', r)).toEqual(['waypoint plain/waypoint']);
    expect(revisionReferences('default-v1-27-8', r)).toEqual([
      'namespace pinned',
      'waypoint pinned/waypoint',
      'waypoint plain/own',
    ]);
  });
});
