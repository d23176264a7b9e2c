import { describe, expect, it } from 'vitest';
import {
  activeRevisionName,
  desiredRevision,
  pruneRevisions,
  resolveVersion,
  type IstioSpec,
} from './revisions.ts';
import type { SailObject } from './resources.ts';

function istio(name: string, spec: Partial<IstioSpec> = {}): SailObject<IstioSpec> {
  return {
    apiVersion: 'sailoperator.io/v1',
    kind: 'Istio',
    metadata: { name, uid: 'uid-1' },
    spec: { namespace: 'istio-system', version: 'v1.27.9', ...spec },
  };
}

describe('Istio → IstioRevision', () => {
  it('InPlace (the default) keeps one revision named like the Istio', () => {
    expect(activeRevisionName(istio('default'))).toBe('default');
    expect(activeRevisionName(istio('default', { version: 'v1.26.0' }))).toBe('default');
  });

  it('RevisionBased names the revision <name>-v<x>-<y>-<z>, resolving -latest aliases', () => {
    const rb = { updateStrategy: { type: 'RevisionBased' as const } };
    expect(activeRevisionName(istio('default', { ...rb, version: 'v1.26.0' }))).toBe('default-v1-26-0');
    expect(activeRevisionName(istio('default', { ...rb, version: 'v1.27-latest' }))).toBe('default-v1-27-9');
    expect(resolveVersion('v1.24.3')).toBe('v1.24.3');
  });

  it('forces revision, istioNamespace and profile, drops defaultRevision, owns the revision', () => {
    const rev = desiredRevision(
      istio('main', {
        profile: 'ambient',
        version: 'v1.27-latest',
        values: { defaultRevision: 'x', revision: 'wrong', pilot: { trustedZtunnelNamespace: 'ztunnel' } },
      }),
    );
    expect(rev.metadata.name).toBe('main');
    expect(rev.metadata.ownerReferences).toEqual([
      {
        apiVersion: 'sailoperator.io/v1',
        kind: 'Istio',
        name: 'main',
        uid: 'uid-1',
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    expect(rev.spec).toEqual({
      namespace: 'istio-system',
      version: 'v1.27.9',
      values: {
        profile: 'ambient',
        revision: 'main',
        global: { istioNamespace: 'istio-system' },
        pilot: { trustedZtunnelNamespace: 'ztunnel' },
      },
    });
  });

  it('leaves revision empty for the revision named default (Sail’s CEL rule)', () => {
    expect(desiredRevision(istio('default')).spec.values.revision).toBe('');
  });
});

describe('pruneRevisions', () => {
  const rb = istio('default', {
    version: 'v1.27.9',
    updateStrategy: { type: 'RevisionBased', inactiveRevisionDeletionGracePeriodSeconds: 60 },
  });

  it('InPlace deletes every non-active revision at once', () => {
    expect(
      pruneRevisions(
        istio('default'),
        [
          { name: 'default', inUse: 'True' },
          { name: 'old', inUse: 'True' },
        ],
        0,
      ),
    ).toEqual({
      kind: 'delete',
      names: ['old'],
    });
  });

  it('RevisionBased keeps revisions in use or of unknown use, and never the active one', () => {
    const owned = [
      { name: 'default-v1-27-9', inUse: 'False' as const, notInUseSinceMs: 0 },
      { name: 'default-v1-26-0', inUse: 'True' as const },
      { name: 'default-v1-25-1', inUse: 'Unknown' as const },
    ];
    expect(pruneRevisions(rb, owned, 1_000_000)).toEqual({ kind: 'delete', names: [] });
  });

  it('RevisionBased waits for the grace period after InUse turns False', () => {
    const owned = [{ name: 'default-v1-26-0', inUse: 'False' as const, notInUseSinceMs: 10_000 }];
    expect(pruneRevisions(rb, owned, 40_000)).toEqual({
      kind: 'wait',
      names: ['default-v1-26-0'],
      retryAfterMs: 30_000,
    });
    expect(pruneRevisions(rb, owned, 70_000)).toEqual({ kind: 'delete', names: ['default-v1-26-0'] });
  });
});
