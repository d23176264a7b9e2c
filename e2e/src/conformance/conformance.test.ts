// Cluster tier: the official Gateway API conformance suite, profile MESH-HTTP, against our mesh on
// a 2-node local cluster (name `conf105`, slot 105), set up as `npm run conformance` does (every
// suite namespace in ambient, a waypoint bound to gateway-conformance-mesh). The suite decides
// pass or fail; this file holds us to the committed list of tests known to pass
// (known-passing.ts): each must be reported PASS by the suite's own output and appear in neither
// the failed nor the skipped list of its ConformanceReport. A skipped test never counts as passed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMeshCluster } from '../mesh/mesh-cluster.ts';
import { ScenarioContext } from '../mesh/scenario.ts';
import { MESH_HTTP_KNOWN_PASSING } from './known-passing.ts';
import {
  MESH_HTTP,
  ensureConformanceSuite,
  runSuite,
  summarizeReport,
  type ConformanceRunResult,
} from './suite.ts';

const scenario = new ScenarioContext('conformance');
const { log, kube } = scenario;
let dir: string;
let result: ConformanceRunResult;

describe('Gateway API conformance, MESH-HTTP, on a 2-node local cluster', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'conformance-'));
    const suiteDir = await ensureConformanceSuite(log);
    ({ cluster: scenario.cluster } = await startMeshCluster({ name: 'conf105', slot: 105, nodes: 2 }));
    scenario.logSetupTime();
    result = await runSuite({
      suiteDir,
      kubeconfig: kube().kubeconfig,
      client: kube().client,
      run: MESH_HTTP,
      reportPath: join(dir, MESH_HTTP.reportFile),
      logPath: join(dir, 'suite.log'),
      progress: log,
      timeoutMs: 25 * 60_000,
    });
    if (result.report !== undefined) for (const line of summarizeReport(result.report)) log(line);
  }, 30 * 60_000);

  afterAll(async () => {
    await scenario.cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
    scenario.logWallTime();
  }, 180_000);

  it('writes the official ConformanceReport for MESH-HTTP, Gateway API v1.4.1', () => {
    expect(result.report?.kind).toBe('ConformanceReport');
    expect(result.report?.gatewayAPIVersion).toBe('v1.4.1');
    expect(result.report?.profiles?.map(p => p.name)).toContain('MESH-HTTP');
  });

  it('passes every test of the known-passing list (a skipped test is not a pass)', () => {
    const profile = result.report?.profiles?.find(p => p.name === 'MESH-HTTP');
    const notPassed = [...(profile?.core?.failedTests ?? []), ...(profile?.extended?.failedTests ?? [])];
    const skipped = [...(profile?.core?.skippedTests ?? []), ...(profile?.extended?.skippedTests ?? [])];
    const outcomes = Object.fromEntries(
      MESH_HTTP_KNOWN_PASSING.map(t => [t, result.tests.get(t) ?? 'NOT RUN']),
    );
    expect(outcomes).toEqual(Object.fromEntries(MESH_HTTP_KNOWN_PASSING.map(t => [t, 'PASS'])));
    for (const t of MESH_HTTP_KNOWN_PASSING) {
      expect(notPassed, t).not.toContain(t);
      expect(skipped, t).not.toContain(t);
    }
  });
});
