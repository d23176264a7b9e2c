// `npm run conformance`: the official Gateway API conformance suite against our mesh.
//
//   npm run conformance                          # every profile below, reports to docs/conformance/
//   npm run conformance -- --profile MESH-GRPC   # one profile (MESH-HTTP, MESH-GRPC, GATEWAY-HTTP)
//   npm run conformance -- --run-test MeshBasic  # one test (report not written to docs/)
//   npm run conformance -- --name NAME --slot S  # cluster name and fabric slot (default: conform, lowest free)
//
// Starts a local cluster with the mesh (as the cluster-tier tests do), builds or reuses the suite
// (tools/install-deps.d/gateway-conformance.sh), runs it per profile, writes the suite's own
// ConformanceReport YAML unedited to docs/conformance/, prints progress and a summary, and stops
// the cluster. Exits non-zero when a test failed or the suite did not run.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { defaultCacheRoot } from '../layout.ts';
import { startMeshCluster } from '../mesh/mesh-cluster.ts';
import { repoRoot } from '../kubelet/images.ts';
import {
  GATEWAY_HTTP,
  MESH_GRPC,
  MESH_HTTP,
  ensureConformanceSuite,
  runSuite,
  summarizeReport,
  type ProfileRun,
} from './suite.ts';

const PROFILES: readonly ProfileRun[] = [MESH_HTTP, MESH_GRPC, GATEWAY_HTTP];

const flagValue = (f: string): string | undefined => {
  const i = process.argv.indexOf(f);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const say = (line: string): void => {
  process.stdout.write(`[conformance] ${line}\n`);
};

async function main(): Promise<number> {
  const started = Date.now();
  const name = flagValue('--name') ?? 'conform';
  const slotFlag = flagValue('--slot');
  const only = flagValue('--profile');
  const runTest = flagValue('--run-test');
  const profiles = PROFILES.filter(p => only === undefined || p.profile === only);
  if (profiles.length === 0) {
    say(`unknown profile '${only ?? ''}'; known: ${PROFILES.map(p => p.profile).join(', ')}`);
    return 2;
  }
  const suiteDir = await ensureConformanceSuite(say);
  say(`suite: ${suiteDir}`);
  const { cluster } = await startMeshCluster({
    name,
    ...(slotFlag === undefined ? {} : { slot: Number(slotFlag) }),
    nodes: 2,
  });
  let failed = false;
  try {
    const logDir = join(defaultCacheRoot(), 'conformance');
    mkdirSync(logDir, { recursive: true });
    const docsDir = join(repoRoot(), 'docs', 'conformance');
    mkdirSync(docsDir, { recursive: true });
    for (const run of profiles) {
      // A single-test run is a debugging aid: its report stays out of docs/.
      const reportPath = join(runTest === undefined ? docsDir : logDir, run.reportFile);
      const logPath = join(logDir, `${name}-${run.profile}.log`);
      const result = await runSuite({
        suiteDir,
        kubeconfig: cluster.kubeconfig,
        client: cluster.client,
        run,
        reportPath,
        logPath,
        extraArgs: runTest === undefined ? [] : [`--run-test=${runTest}`],
        progress: say,
      });
      const counts = { PASS: 0, FAIL: 0, SKIP: 0 };
      for (const o of result.tests.values()) counts[o] += 1;
      say(
        `${run.profile}: ${counts.PASS} passed, ${counts.FAIL} failed, ${counts.SKIP} skipped in ` +
          `${(result.wallMs / 1000).toFixed(0)} s (suite exit ${result.exitCode}); output ${logPath}`,
      );
      if (result.report === undefined) {
        say(`${run.profile}: the suite wrote no report (see ${logPath})`);
        failed = true;
        continue;
      }
      for (const line of summarizeReport(result.report)) say(line);
      say(`${run.profile}: report ${reportPath}`);
      if (result.exitCode !== 0 || counts.FAIL > 0) failed = true;
    }
  } finally {
    await cluster.stop();
  }
  say(`wall time ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return failed ? 1 : 0;
}

main().then(
  code => process.exit(code),
  (err: unknown) => {
    say(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
