/**
 * The official Gateway API conformance suite (sigs.k8s.io/gateway-api/conformance, the version of
 * the installed CRDs), run against a local cluster with our mesh: the suite's own test binary
 * (`go test -c`, built by tools/install-deps.d/gateway-conformance.sh), with its own manifests and
 * its own ConformanceReport. Nothing of the suite is rewritten here; this module only starts it,
 * prepares what Istio's ambient conformance run prepares (the namespaces in ambient, a waypoint for
 * the mesh namespace), follows its output and reads its results.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import type { KubeClient } from '@ambient-mesh/kube';
import { runBuildScript, waitFor } from '../exec.ts';
import { GATEWAY_API_VERSION } from '../upstream-tools/gateway-api.ts';
import { GATEWAY_PATH, waypointGateway } from '../mesh/waypoint.ts';

export const CONFORMANCE_VERSION = GATEWAY_API_VERSION;

export type ConformanceProfileName = 'MESH-HTTP' | 'MESH-GRPC' | 'GATEWAY-HTTP';

/** What one profile's run claims and how it is prepared. */
export interface ProfileRun {
  readonly profile: ConformanceProfileName;
  /** `--gateway-class` */
  readonly gatewayClass: string;
  /** `--supported-features`: the features we claim (the profile's core features are implied). */
  readonly supportedFeatures: readonly string[];
  /** `--namespace-labels` for every namespace of the suite's manifests. */
  readonly namespaceLabels: Readonly<Record<string, string>>;
  /** Bind a waypoint to the suite's mesh namespace (as Istio's ambient conformance run does). */
  readonly meshWaypoint: boolean;
  /** The report file name under docs/conformance/. */
  readonly reportFile: string;
}

/** The suite's mesh namespace and the waypoint Istio's ambient run binds to it. */
export const MESH_NAMESPACE = 'gateway-conformance-mesh';
export const MESH_WAYPOINT = 'namespace';

const AMBIENT = { 'istio.io/dataplane-mode': 'ambient' } as const;

/**
 * MESH-HTTP as Istio 1.27 runs it in ambient mode: every suite namespace in ambient, a waypoint
 * named `namespace` in gateway-conformance-mesh with `istio.io/use-waypoint: namespace`.
 */
export const MESH_HTTP: ProfileRun = {
  profile: 'MESH-HTTP',
  gatewayClass: 'istio',
  supportedFeatures: [
    'Mesh',
    'HTTPRoute',
    'HTTPRouteResponseHeaderModification',
    'HTTPRouteParentRefPort',
    'MeshClusterIPMatching',
    'MeshHTTPRouteRewritePath',
    'MeshHTTPRouteSchemeRedirect',
    'MeshHTTPRouteRedirectPort',
    'MeshHTTPRouteRedirectPath',
    'MeshHTTPRouteBackendRequestHeaderModification',
    'MeshHTTPRouteQueryParamMatching',
    'MeshHTTPRouteNamedRouteRule',
  ],
  namespaceLabels: AMBIENT,
  meshWaypoint: true,
  reportFile: 'mesh-http-report.yaml',
};

/**
 * MESH-GRPC, set up like MESH-HTTP (same namespaces, same waypoint). Its core features are Mesh and
 * GRPCRoute; the suite's mesh extended features all need HTTPRoute, so none of them belongs to
 * this profile and none is claimed here.
 */
export const MESH_GRPC: ProfileRun = {
  profile: 'MESH-GRPC',
  gatewayClass: 'istio',
  supportedFeatures: ['Mesh', 'GRPCRoute'],
  namespaceLabels: AMBIENT,
  meshWaypoint: true,
  reportFile: 'mesh-grpc-report.yaml',
};

/**
 * GATEWAY-HTTP against ingress Gateways of class `istio` (istiod deploys each as our proxy in
 * router mode behind a LoadBalancer Service; the local cluster gives that Service a fabric
 * address the suite, a process on the host, reaches). Every suite namespace is in ambient as in
 * Istio's ambient conformance run, so the backends are reached over HBONE. Claimed: the profile's
 * core (Gateway, HTTPRoute, ReferenceGrant) and the extended HTTPRoute features our route
 * translation implements (the same translation serves waypoints).
 */
export const GATEWAY_HTTP: ProfileRun = {
  profile: 'GATEWAY-HTTP',
  gatewayClass: 'istio',
  supportedFeatures: [
    'Gateway',
    'HTTPRoute',
    'ReferenceGrant',
    'GatewayPort8080',
    'HTTPRouteResponseHeaderModification',
    'HTTPRouteQueryParamMatching',
    'HTTPRouteMethodMatching',
    'HTTPRouteSchemeRedirect',
    'HTTPRoutePortRedirect',
    'HTTPRoutePathRedirect',
    'HTTPRouteHostRewrite',
    'HTTPRoutePathRewrite',
    'HTTPRouteBackendRequestHeaderModification',
    'HTTPRouteNamedRouteRule',
    'HTTPRouteParentRefPort',
  ],
  namespaceLabels: AMBIENT,
  meshWaypoint: false,
  reportFile: 'gateway-http-report.yaml',
};

/** The profiles whose tests run in the suite's mesh namespace (prestaged, waypoint bound). */
const MESH_PROFILES: ReadonlySet<ConformanceProfileName> = new Set(['MESH-HTTP', 'MESH-GRPC']);

export type TestOutcome = 'PASS' | 'FAIL' | 'SKIP';

/** The fields of the suite's ConformanceReport (conformance/apis/v1) that we read. */
export interface ConformanceReport {
  readonly apiVersion: string;
  readonly kind: string;
  readonly gatewayAPIVersion?: string;
  readonly gatewayAPIChannel?: string;
  readonly implementation?: Record<string, unknown>;
  readonly mode?: string;
  readonly profiles?: readonly ProfileReport[];
  readonly succeededProvisionalTests?: readonly string[];
}

export interface ResultSummary {
  /** `success`, `partial`, `failure` or `skipped`. */
  readonly result: string;
  readonly statistics: { readonly Passed: number; readonly Failed: number; readonly Skipped: number };
  readonly failedTests?: readonly string[];
  readonly skippedTests?: readonly string[];
}

export interface ProfileReport {
  readonly name: string;
  readonly summary?: string;
  readonly core?: ResultSummary;
  readonly extended?: ResultSummary & {
    readonly supportedFeatures?: readonly string[];
    readonly unsupportedFeatures?: readonly string[];
  };
}

export interface ConformanceRunResult {
  /** The test binary's exit code (non-zero when any test failed). */
  readonly exitCode: number;
  /** Outcome of each top-level conformance test (`TestConformance/<ShortName>`), from `-test.v`. */
  readonly tests: ReadonlyMap<string, TestOutcome>;
  /** The suite's report as it wrote it; undefined when it wrote none (setup failed). */
  readonly report: ConformanceReport | undefined;
  readonly reportPath: string;
  /** The suite's whole output. */
  readonly logPath: string;
  readonly wallMs: number;
}

function repoDir(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
}

export function conformanceInstallScriptPath(): string {
  return join(repoDir(), 'tools', 'install-deps.d', 'gateway-conformance.sh');
}

/** Runs the install script (a no-op when cached) and returns the suite's folder. */
export function ensureConformanceSuite(
  onProgress: (line: string) => void = () => undefined,
): Promise<string> {
  return runBuildScript(conformanceInstallScriptPath(), {
    progressPrefix: '[gateway-conformance]',
    onProgress,
    what: `the Gateway API ${CONFORMANCE_VERSION} conformance suite`,
    needs: 'Go and the Go module proxy',
  });
}

/** Our implementation's entry in the report (the suite requires all five fields). */
function implementationFlags(): string[] {
  const pkg = JSON.parse(readFileSync(join(repoDir(), 'e2e', 'package.json'), 'utf8')) as { version: string };
  return [
    '--organization=ambient-mesh',
    '--project=ambient-mesh',
    '--url=https://github.com/ambient-mesh/ambient-mesh',
    `--version=v${pkg.version}`,
    '--contact=https://github.com/ambient-mesh/ambient-mesh/issues',
  ];
}

/** The suite's command line for one profile. */
export function suiteArgs(run: ProfileRun, reportPath: string, extra: readonly string[] = []): string[] {
  // With a mesh waypoint, every suite namespace carries `istio.io/use-waypoint` too: the suite's
  // Setup replaces the labels of the namespaces it updates, and dropping that one would make istiod
  // rewrite the Services' `istio.io/WaypointBound` status while the Setup updates those Services
  // (a 409 before any test). Only gateway-conformance-mesh has Services and the waypoint.
  const labels = Object.entries({
    ...run.namespaceLabels,
    ...(run.meshWaypoint ? { 'istio.io/use-waypoint': MESH_WAYPOINT } : {}),
  })
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  return [
    '-test.run=^TestConformance$',
    '-test.v',
    '-test.timeout=60m',
    `--gateway-class=${run.gatewayClass}`,
    `--conformance-profiles=${run.profile}`,
    `--supported-features=${run.supportedFeatures.join(',')}`,
    ...(labels === '' ? [] : [`--namespace-labels=${labels}`]),
    `--report-output=${reportPath}`,
    ...implementationFlags(),
    ...extra,
  ];
}

const RESULT_LINE = /^\s*--- (PASS|FAIL|SKIP): TestConformance\/([^/\s]+) \(([\d.]+)s\)/;
const RUN_LINE = /^=== RUN\s+TestConformance\/([^/\s]+)$/;

/** Top-level test outcomes from the suite's `-test.v` output. */
export function parseTestOutcomes(output: string): Map<string, TestOutcome> {
  const out = new Map<string, TestOutcome>();
  for (const line of output.split('\n')) {
    const m = RESULT_LINE.exec(line);
    if (m !== null) out.set(m[2]!, m[1] as TestOutcome);
  }
  return out;
}

/**
 * Keeps the mesh namespace as Istio's ambient run sets it up once the suite has created it: a
 * waypoint Gateway `namespace` and the label `istio.io/use-waypoint: namespace` (re-applied if the
 * suite's apply of its Namespace manifest drops it). Returns a stop function.
 */
export function bindMeshWaypoint(client: KubeClient, log: (line: string) => void): () => Promise<void> {
  let stopped = false;
  const nsPath = `/api/v1/namespaces/${MESH_NAMESPACE}`;
  const loop = (async () => {
    while (!stopped) {
      try {
        const ns = await client.find<{
          metadata?: { labels?: Record<string, string>; deletionTimestamp?: string };
        }>(nsPath);
        if (ns !== undefined && ns.metadata?.deletionTimestamp === undefined) {
          const gw = await client.find(`${GATEWAY_PATH(MESH_NAMESPACE)}/${MESH_WAYPOINT}`);
          if (gw === undefined) {
            await client.create(GATEWAY_PATH(MESH_NAMESPACE), waypointGateway(MESH_NAMESPACE, MESH_WAYPOINT));
            log(`waypoint ${MESH_NAMESPACE}/${MESH_WAYPOINT} created`);
          }
          if (ns.metadata?.labels?.['istio.io/use-waypoint'] !== MESH_WAYPOINT) {
            await client.mergePatch(nsPath, {
              metadata: { labels: { 'istio.io/use-waypoint': MESH_WAYPOINT } },
            });
            log(`namespace ${MESH_NAMESPACE} labelled istio.io/use-waypoint=${MESH_WAYPOINT}`);
          }
        }
      } catch {
        // The namespace may be created or deleted under us; the next round looks again.
      }
      await new Promise(r => setTimeout(r, 300));
    }
  })();
  return async () => {
    stopped = true;
    await loop;
  };
}

interface ManifestDoc {
  readonly [field: string]: unknown;
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: { replicas?: number };
  status?: { readyReplicas?: number };
}

/**
 * Applies the suite's mesh manifests (the same objects, with the same namespace labels, that its
 * Setup applies) ahead of the suite and waits until their Deployments are Ready. The suite's
 * Setup then finds them in place (it updates objects that exist) and its readiness check, which
 * passes at once for a namespace whose Deployments have no pods yet, no longer races the
 * ReplicaSet controller of a busy 2-core cluster.
 */
export async function prestageMeshManifests(
  client: KubeClient,
  suiteDir: string,
  run: ProfileRun,
  progress: (line: string) => void,
  timeoutMs = 300_000,
): Promise<void> {
  const docs = parseAllDocuments(readFileSync(join(suiteDir, 'manifests', 'mesh.yaml'), 'utf8'))
    .map(d => d.toJS() as ManifestDoc | null)
    .filter((d): d is ManifestDoc => d !== null);
  // A previous profile's run deletes the namespaces of the suite's base and mesh manifests when it
  // ends (the suite cleans up after itself): objects cannot be created in a namespace that is still
  // terminating, so wait until those are gone before this run (and the suite's Setup) applies them.
  const baseDocs = parseAllDocuments(readFileSync(join(suiteDir, 'manifests', 'base.yaml'), 'utf8'))
    .map(d => d.toJS() as ManifestDoc | null)
    .filter((d): d is ManifestDoc => d !== null);
  for (const d of [...baseDocs, ...docs]) {
    if (d.kind !== 'Namespace') continue;
    const path = `/api/v1/namespaces/${d.metadata.name}`;
    await waitFor(
      `namespace ${d.metadata.name} not terminating`,
      async () => {
        const live = await client.find<{ metadata?: { deletionTimestamp?: string } }>(path);
        return live?.metadata?.deletionTimestamp === undefined ? true : undefined;
      },
      { timeoutMs, intervalMs: 1_000 },
    );
  }
  const deployments: ManifestDoc[] = [];
  for (const d of docs) {
    if (d.kind === 'Namespace') {
      d.metadata.labels = {
        ...d.metadata.labels,
        ...run.namespaceLabels,
        ...(run.meshWaypoint && d.metadata.name === MESH_NAMESPACE
          ? { 'istio.io/use-waypoint': MESH_WAYPOINT }
          : {}),
      };
    }
    if (d.kind === 'Deployment') deployments.push(d);
    await client.apply(d, { fieldManager: 'gateway-conformance-prestage', force: true });
  }
  progress(`${run.profile}: applied the suite's mesh manifests ahead (${docs.length} objects)`);
  for (const d of deployments) {
    const path = `/apis/apps/v1/namespaces/${d.metadata.namespace ?? 'default'}/deployments/${d.metadata.name}`;
    await waitFor(
      `Deployment ${d.metadata.namespace ?? ''}/${d.metadata.name} Ready`,
      async () => {
        const live = await client.get<ManifestDoc>(path);
        return (live.status?.readyReplicas ?? 0) >= (live.spec?.replicas ?? 1) ? true : undefined;
      },
      { timeoutMs, intervalMs: 1_000 },
    );
  }
  progress(`${run.profile}: ${deployments.length} Deployments of the mesh manifests Ready`);
  if (!run.meshWaypoint) return;
  // The waypoint (created by `bindMeshWaypoint` once the namespace exists) serves before any test.
  const selector = encodeURIComponent(`gateway.networking.k8s.io/gateway-name=${MESH_WAYPOINT}`);
  await waitFor(
    `waypoint ${MESH_NAMESPACE}/${MESH_WAYPOINT} pod Ready`,
    async () => {
      const pods = await client.get<{
        items: { status?: { conditions?: { type: string; status: string }[] } }[];
      }>(`/api/v1/namespaces/${MESH_NAMESPACE}/pods?labelSelector=${selector}`);
      return pods.items.some(p => p.status?.conditions?.some(c => c.type === 'Ready' && c.status === 'True'))
        ? true
        : undefined;
    },
    { timeoutMs, intervalMs: 1_000 },
  );
  progress(`${run.profile}: waypoint ${MESH_NAMESPACE}/${MESH_WAYPOINT} Ready`);
}

export interface RunSuiteOptions {
  readonly suiteDir: string;
  readonly kubeconfig: string;
  readonly client: KubeClient;
  readonly run: ProfileRun;
  readonly reportPath: string;
  readonly logPath: string;
  /** Extra suite flags, e.g. `--run-test=MeshBasic` or `--skip-tests=...`. */
  readonly extraArgs?: readonly string[];
  readonly progress: (line: string) => void;
  /** Kill the suite after this long (default 40 min). */
  readonly timeoutMs?: number;
}

/**
 * The suite's Setup updates objects that exist with a plain Get then Update (no retry on a
 * conflict). When the suite's Namespace update drops `istio.io/use-waypoint` and
 * `bindMeshWaypoint` puts it back, istiod rewrites the Services' `istio.io/WaypointBound` status,
 * and an Update of the suite's that raced that write fails with 409 before any test ran.
 */
const SETUP_CONFLICT = /Operation cannot be fulfilled on [^\n]*the object has been modified/;
/** Runs of a profile when its Setup lost such a race (each run is whole: Setup, tests, report). */
const SETUP_ATTEMPTS = 3;

/** Whether a run stopped in the suite's Setup on an update conflict, before any test began. */
export function setupLostUpdateRace(
  result: Pick<ConformanceRunResult, 'report' | 'tests'>,
  output: string,
): boolean {
  return result.report === undefined && result.tests.size === 0 && SETUP_CONFLICT.test(output);
}

/**
 * Runs one profile of the suite against the cluster; resolves when the suite exits. A run whose
 * Setup lost the update race above (no test started) is run again, at most `SETUP_ATTEMPTS` times
 * in all; any other outcome, a failed test included, is returned as it is.
 */
export async function runSuite(options: RunSuiteOptions): Promise<ConformanceRunResult> {
  for (let attempt = 1; ; attempt++) {
    const { result, output } = await runSuiteOnce(options);
    if (attempt >= SETUP_ATTEMPTS || !setupLostUpdateRace(result, output)) return result;
    options.progress(
      `${options.run.profile}: the suite's Setup lost an update race with a status write (409), before any test; running the profile again (attempt ${String(attempt + 1)} of ${String(SETUP_ATTEMPTS)})`,
    );
  }
}

async function runSuiteOnce(
  options: RunSuiteOptions,
): Promise<{ result: ConformanceRunResult; output: string }> {
  const { run, progress } = options;
  const started = Date.now();
  const stopBinding = run.meshWaypoint ? bindMeshWaypoint(options.client, progress) : () => Promise.resolve();
  try {
    if (MESH_PROFILES.has(run.profile))
      await prestageMeshManifests(options.client, options.suiteDir, run, progress);
  } catch (err) {
    await stopBinding();
    throw err;
  }
  const logFile = createWriteStream(options.logPath);
  const args = suiteArgs(run, options.reportPath, options.extraArgs);
  progress(`${run.profile}: conformance.test ${args.join(' ')}`);
  let output = '';
  // Go prints the results of parallel tests only when they all end: say how far the run is.
  const heartbeat = setInterval(() => {
    const begun = (output.match(/^=== RUN\s+TestConformance\/[^/\s]+$/gm) ?? []).length;
    progress(`${run.profile}: ${((Date.now() - started) / 1000).toFixed(0)} s in, ${begun} tests started`);
  }, 30_000);
  const exitCode = await new Promise<number>((resolve, reject) => {
    const child = spawn(join(options.suiteDir, 'bin', 'conformance.test'), args, {
      env: { ...process.env, KUBECONFIG: options.kubeconfig },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: options.timeoutMs ?? 40 * 60_000,
      killSignal: 'SIGKILL',
    });
    let pending = '';
    const onData = (b: Buffer): void => {
      const text = b.toString('utf8');
      logFile.write(text);
      output += text;
      pending += text;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        const r = RESULT_LINE.exec(line);
        if (r !== null) {
          progress(
            `${run.profile}: ${r[1]} ${r[2]} (${r[3]} s, ${((Date.now() - started) / 1000).toFixed(0)} s in)`,
          );
          continue;
        }
        const s = RUN_LINE.exec(line);
        if (s !== null) progress(`${run.profile}: RUN ${s[1]}`);
        else if (line.includes('Test Setup:')) progress(`${run.profile}: ${line.trim()}`);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      resolve(code ?? (signal === null ? 1 : 128));
    });
  });
  clearInterval(heartbeat);
  await stopBinding();
  await new Promise<void>(r => logFile.end(r));
  let report: ConformanceReport | undefined;
  try {
    report = parse(readFileSync(options.reportPath, 'utf8')) as ConformanceReport;
  } catch {
    report = undefined;
    // The suite stopped before its report (its Setup failed): show why, the log may be temporary.
    const tail = output.trimEnd().split('\n').slice(-15);
    progress(`${run.profile}: the suite wrote no report; its last lines:\n${tail.join('\n')}`);
  }
  return {
    result: {
      exitCode,
      tests: parseTestOutcomes(output),
      report,
      reportPath: options.reportPath,
      logPath: options.logPath,
      wallMs: Date.now() - started,
    },
    output,
  };
}

/** One line per profile of the report: core and extended counts, failed and skipped tests. */
export function summarizeReport(report: ConformanceReport): string[] {
  const lines: string[] = [];
  for (const p of report.profiles ?? []) {
    for (const [kind, r] of [
      ['core', p.core],
      ['extended', p.extended],
    ] as const) {
      if (r === undefined) continue;
      const s = r.statistics;
      lines.push(
        `${p.name} ${kind}: ${r.result} (${s.Passed} passed, ${s.Failed} failed, ${s.Skipped} skipped)` +
          (r.failedTests?.length ? `; failed: ${r.failedTests.join(', ')}` : '') +
          (r.skippedTests?.length ? `; skipped: ${r.skippedTests.join(', ')}` : ''),
      );
    }
    if (p.extended?.supportedFeatures?.length)
      lines.push(`${p.name} extended features claimed: ${p.extended.supportedFeatures.join(', ')}`);
    if (p.extended?.unsupportedFeatures?.length)
      lines.push(`${p.name} extended features not claimed: ${p.extended.unsupportedFeatures.join(', ')}`);
  }
  return lines;
}
