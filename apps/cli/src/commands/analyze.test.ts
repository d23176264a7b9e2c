import { describe, expect, it } from 'vitest';
import { AnalyzerCode, analyze, formatMessages, type Snapshot } from './analyze.ts';

const clean: Snapshot = {
  namespaces: [
    {
      metadata: {
        name: 'sample',
        labels: { 'istio.io/dataplane-mode': 'ambient', 'istio.io/use-waypoint': 'waypoint' },
      },
    },
    { metadata: { name: 'plain' } },
  ],
  pods: [
    { metadata: { name: 'echo', namespace: 'sample' }, node: 'node-0' },
    { metadata: { name: 'web', namespace: 'plain' }, node: 'node-2' },
  ],
  services: [{ metadata: { name: 'echo', namespace: 'sample' } }],
  ztunnelNodes: ['node-0', 'node-1'],
  gateways: [
    {
      metadata: { name: 'waypoint', namespace: 'sample' },
      className: 'istio-waypoint',
      conditions: [{ type: 'Programmed', status: 'True' }],
    },
  ],
  policies: [],
};

function codes(s: Snapshot): string[] {
  return analyze(s).map(m => `${m.code} ${m.resource}`);
}

describe('analyze', () => {
  it('reports nothing on a clean mesh', () => {
    expect(analyze(clean)).toEqual([]);
    expect(formatMessages([], 'table')).toBe('✔ No validation issues found when analyzing the cluster.\n');
  });

  it('flags an ambient namespace with pods on a node without ztunnel', () => {
    const s = { ...clean, ztunnelNodes: ['node-1'] };
    expect(codes(s)).toEqual([`${AnalyzerCode.NoZtunnelOnNode} Namespace sample`]);
    expect(analyze(s)[0]?.message).toMatch(/node node-0 runs its pods with no ztunnel; check/);
  });

  it('flags waypoint labels outside ambient and waypoints that do not exist', () => {
    const s: Snapshot = {
      ...clean,
      pods: [
        ...clean.pods,
        {
          metadata: { name: 'lost', namespace: 'plain', labels: { 'istio.io/use-waypoint': 'wp' } },
          node: 'node-0',
        },
      ],
    };
    expect(codes(s)).toEqual(
      [
        `${AnalyzerCode.WaypointOutsideAmbient} Pod plain/lost`,
        `${AnalyzerCode.WaypointNotFound} Pod plain/lost`,
      ].sort(),
    );
  });

  it('flags a waypoint whose Programmed condition is False (IST0171)', () => {
    const s: Snapshot = {
      ...clean,
      gateways: [
        {
          ...clean.gateways[0]!,
          conditions: [{ type: 'Programmed', status: 'False', message: 'no deployment' }],
        },
      ],
    };
    expect(analyze(s)).toEqual([
      {
        level: 'Error',
        code: 'IST0171',
        resource: 'Gateway sample/waypoint',
        message: 'condition Programmed is False: no deployment',
      },
    ]);
  });

  it('flags HTTP rules with no waypoint as ineffective (IST0167)', () => {
    const policy = {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'get-only', namespace: 'nowp' },
      spec: { action: 'ALLOW', rules: [{ to: [{ operation: { methods: ['GET'] } }] }] },
    };
    const s: Snapshot = {
      ...clean,
      namespaces: [
        ...clean.namespaces,
        { metadata: { name: 'nowp', labels: { 'istio.io/dataplane-mode': 'ambient' } } },
      ],
      policies: [policy, { ...policy, metadata: { name: 'covered', namespace: 'sample' } }],
    };
    expect(codes(s)).toEqual(['IST0167 AuthorizationPolicy nowp/get-only']);
    expect(formatMessages(analyze(s), 'table')).toMatch(
      /^Warning \[IST0167\] \(AuthorizationPolicy nowp\/get-only\) the policy's HTTP rules \(methods\)/,
    );
  });
});
