import { describe, expect, it } from 'vitest';
import {
  MESH_GRPC,
  MESH_HTTP,
  parseTestOutcomes,
  setupLostUpdateRace,
  suiteArgs,
  summarizeReport,
} from './suite.ts';

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
    expect(args).toContain(
      '--namespace-labels=istio.io/dataplane-mode=ambient,istio.io/use-waypoint=namespace',
    );
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
    expect(args).toContain(
      '--namespace-labels=istio.io/dataplane-mode=ambient,istio.io/use-waypoint=namespace',
    );
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

  it('runs a profile again only when its Setup lost an update race before any test, never after a test ran', () => {
    // The suite's own output when its Get-then-Update of a Service raced istiod's status write.
    const setupConflict = [
      'suite.go:401: Test Setup: Applying base manifests',
      '        \tError:      \tReceived unexpected error:',
      '        \t            \tOperation cannot be fulfilled on services "echo-v1": the object has been modified; please apply your changes to the latest version and try again',
      '        \tMessages:   \terror updating resource',
      '--- FAIL: TestConformance (0.14s)',
    ].join('\n');
    expect(
      setupLostUpdateRace({ report: undefined, tests: parseTestOutcomes(setupConflict) }, setupConflict),
    ).toBe(true);
    // Another Setup failure is reported as it is.
    const otherSetupFailure = setupConflict.replace(
      /Operation cannot be fulfilled[^\n]*/,
      'namespaces "x" not found',
    );
    expect(setupLostUpdateRace({ report: undefined, tests: new Map() }, otherSetupFailure)).toBe(false);
    // Once a test ran, its outcome stands, whatever else the output says.
    const afterTests = `${setupConflict}\n    --- FAIL: TestConformance/MeshBasic (0.45s)`;
    expect(setupLostUpdateRace({ report: undefined, tests: parseTestOutcomes(afterTests) }, afterTests)).toBe(
      false,
    );
  });
});
