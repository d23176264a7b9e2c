import { describe, expect, it } from 'vitest';
import { RevisionScope, istiodServiceName } from './revision-scope.ts';

const tag = (name: string, tagName: string, revision: string) => ({
  metadata: { name, labels: { 'istio.io/tag': tagName, 'istio.io/rev': revision } },
});
const ns = (name: string, rev?: string) => ({
  metadata: { name, ...(rev === undefined ? {} : { labels: { 'istio.io/rev': rev } }) },
});

describe('RevisionScope (upstream tag watcher)', () => {
  it('the default istiod takes unlabelled namespaces and objects, and namespaces of an unknown label are not its', () => {
    const s = new RevisionScope();
    expect(s.revision).toBe('default');
    s.onNamespace(ns('plain'), false);
    s.onNamespace(ns('canary', 'canary'), false);
    expect(s.isMine('plain', {})).toBe(true);
    expect(s.isMine('canary', {})).toBe(false);
    expect(s.isMine('plain', { 'istio.io/rev': 'canary' })).toBe(false);
    expect(s.isMine('canary', { 'istio.io/rev': 'default' })).toBe(true);
    // A namespace not listed yet: taken, as upstream.
    expect(s.isMine('unknown', {})).toBe(true);
  });

  it('a revisioned istiod takes its revision and the tags pointing at it; moving a tag moves its namespaces', () => {
    const s = new RevisionScope('default-v1-27-9');
    s.onNamespace(ns('plain'), false);
    s.onNamespace(ns('prod', 'prod'), false);
    s.onNamespace(ns('pinned', 'default-v1-27-9'), false);
    expect(s.isMine('pinned', {})).toBe(true);
    expect(s.isMine('plain', {})).toBe(false);
    expect(s.onTag(tag('istio-revision-tag-default', 'default', 'default-v1-27-8'), false)).toBe(false);
    expect(s.isMine('plain', {})).toBe(false);

    expect(s.onTag(tag('istio-revision-tag-default', 'default', 'default-v1-27-9'), false)).toBe(true);
    expect([...s.myTags()].sort()).toEqual(['default', 'default-v1-27-9']);
    expect(s.isMine('plain', {})).toBe(true);
    expect(s.isMine('prod', {})).toBe(false);
    expect(s.onTag(tag('istio-revision-tag-prod', 'prod', 'default-v1-27-9'), false)).toBe(true);
    expect(s.isMine('prod', {})).toBe(true);

    expect(s.onTag(tag('istio-revision-tag-prod', 'prod', 'default-v1-27-9'), true)).toBe(true);
    expect(s.isMine('prod', {})).toBe(false);
  });

  it('reports a namespace change only when its revision label changed', () => {
    const s = new RevisionScope('canary');
    expect(s.onNamespace(ns('a'), false)).toBe(true);
    expect(s.onNamespace(ns('a'), false)).toBe(false);
    expect(s.onNamespace(ns('a', 'canary'), false)).toBe(true);
    expect(s.isMine('a', {})).toBe(true);
    expect(s.onNamespace(ns('a', 'canary'), true)).toBe(true);
  });

  it('names istiod’s Service after its revision', () => {
    expect(istiodServiceName('default')).toBe('istiod');
    expect(istiodServiceName('')).toBe('istiod');
    expect(istiodServiceName('canary')).toBe('istiod-canary');
  });
});
