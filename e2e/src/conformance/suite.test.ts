import { describe, expect, it } from 'vitest';
import { MESH_GRPC, MESH_HTTP, parseTestOutcomes, suiteArgs, summarizeReport } from './suite.ts';

describe('reading the conformance suite', () => {
  it('takes each top-level test outcome from -test.v output, keeping SKIP apart from PASS', () => {
    const output = [
      '=== RUN   TestConformance/MeshBasic',
      '--- FAIL: TestConformance (47.37s)',
      '    --- SKIP: TestConformance/MeshGRPCRouteWeight (0.00s)',
      '    --- FAIL: TestConformance/MeshHTTPRouteMatching (0.27s)',
      '    --- PASS: TestConformance/MeshBasic (0.45s)',
      "        --- FAIL: TestConformance/MeshBasic/0_request_to_'/'_should_go_to_echo (19.93s)",
      '        --- PASS: TestConformance/MeshHTTPRouteMatching/1_case (1.00s)',
    ].join('\n');
    expect(Object.fromEntries(parseTestOutcomes(output))).toEqual({
      MeshGRPCRouteWeight: 'SKIP',
      MeshHTTPRouteMatching: 'FAIL',
      MeshBasic: 'PASS',
    });
  });

  it('runs MESH-HTTP on the claimed features, namespaces in ambient, with the report path and our implementation', () => {
    const args = suiteArgs(MESH_HTTP, '/tmp/report.yaml', ['--run-test=MeshBasic']);
    expect(args).toContain('--conformance-profiles=MESH-HTTP');
    expect(args).toContain('--namespace-labels=istio.io/dataplane-mode=ambient');
    expect(args).toContain('--report-output=/tmp/report.yaml');
    expect(args).toContain('--organization=ambient-mesh');
    expect(args.at(-1)).toBe('--run-test=MeshBasic');
    const features = args
      .find(a => a.startsWith('--supported-features='))
      ?.split('=')[1]
      ?.split(',');
    expect(features).toContain('Mesh');
    expect(features).not.toContain('MeshConsumerRoute');
  });

  it('runs MESH-GRPC on Mesh and GRPCRoute only, into its own report file', () => {
    const args = suiteArgs(MESH_GRPC, '/tmp/grpc.yaml');
    expect(args).toContain('--conformance-profiles=MESH-GRPC');
    expect(args).toContain('--supported-features=Mesh,GRPCRoute');
    expect(args).toContain('--namespace-labels=istio.io/dataplane-mode=ambient');
    expect(MESH_GRPC.meshWaypoint).toBe(true);
    expect(MESH_GRPC.reportFile).not.toBe(MESH_HTTP.reportFile);
  });

  it('summarizes a report per profile with its failed and skipped tests', () => {
    const lines = summarizeReport({
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'ConformanceReport',
      profiles: [
        {
          name: 'MESH-HTTP',
          core: { result: 'success', statistics: { Passed: 7, Failed: 0, Skipped: 0 } },
          extended: {
            result: 'failure',
            statistics: { Passed: 6, Failed: 1, Skipped: 1 },
            failedTests: ['MeshHTTPRouteBackendRequestHeaderModifier'],
            skippedTests: ['MeshHTTPRouteRewritePath'],
            unsupportedFeatures: ['MeshConsumerRoute'],
          },
        },
      ],
    });
    expect(lines).toEqual([
      'MESH-HTTP core: success (7 passed, 0 failed, 0 skipped)',
      'MESH-HTTP extended: failure (6 passed, 1 failed, 1 skipped); failed: MeshHTTPRouteBackendRequestHeaderModifier; skipped: MeshHTTPRouteRewritePath',
      'MESH-HTTP extended features not claimed: MeshConsumerRoute',
    ]);
  });
});
