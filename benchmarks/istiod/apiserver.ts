// The apiserver mode of the istiod benchmark: a local cluster (real etcd + kube-apiserver +
// controller-manager, one real node), the mesh created as objects on fake nodes, and istiod's
// executable (`main.ts`) as a child process with real informers, watched by delta-xDS clients
// like ztunnels. Everything it starts is stopped in `finally`, and on SIGINT/SIGTERM.
import { spawn, type ChildProcess } from 'node:child_process';
import {
  openSync,
  closeSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  DeltaXdsClient,
  applyCrds,
  ensureUpstreamIstio,
  startUpstreamIstiod,
  freeLoopbackPort,
  mintServiceAccountToken,
  prepareIstioSystem,
  startCluster,
  waitFor,
  ztunnelNode,
  type Cluster,
} from '@ambient-mesh/e2e';
import { CertificateAuthority } from '@ambient-mesh/spiffe-certs';
import {
  FAKE_NODE_PREFIX,
  createMesh,
  expectedNames,
  keepFakeNodesAlive,
  podRef,
  type MeshShape,
  type PhaseTiming,
} from './cluster-objects.ts';

export interface ApiserverOptions extends MeshShape {
  readonly clients: number;
  readonly changes: number;
  readonly concurrency: number;
  /** istiod's PILOT_DEBOUNCE_AFTER (Go duration). */
  readonly debounce: string;
  readonly progress: (line: string) => void;
  /** The local cluster (name ≤ 8 characters, slot of 10.211.<slot>.0/24); default `istiodbn`, 13. */
  readonly cluster?: { readonly name: string; readonly slot: number };
  /**
   * Also measure upstream istiod (the oracle build, `pilot-discovery`) on the same apiserver
   * state, after ours and with the same delta client, same changes and same measures.
   */
  readonly upstream?: boolean;
}

/** One istiod's figures against the apiserver. */
export interface IstiodFigures {
  /** `ours` or the upstream version. */
  readonly who: string;
  /** istiod spawn → /ready (informers synced); upstream's start returns at /ready. */
  readonly readyMs: number | undefined;
  /** istiod spawn → the first client holds every expected resource. */
  readonly syncMs: number;
  readonly addresses: number;
  readonly authorizations: number;
  readonly connectMs: number;
  readonly latencies: readonly number[];
  /** istiod process VmRSS after the sync with one client, after all clients, and VmHWM at the end. */
  readonly rssAfterSync: number;
  readonly rssAfterClients: number;
  readonly rssPeak: number;
}

export interface ApiserverResult {
  readonly creation: readonly PhaseTiming[];
  /** istiod spawn → /ready (informers synced). */
  readonly readyMs: number | undefined;
  /** istiod spawn → the first client holds every expected resource. */
  readonly syncMs: number;
  readonly addresses: number;
  readonly authorizations: number;
  readonly connectMs: number;
  readonly latencies: readonly number[];
  /** istiod process VmRSS after the sync with one client, after all clients, and VmHWM at the end. */
  readonly rssAfterSync: number;
  readonly rssAfterClients: number;
  readonly rssPeak: number;
  readonly leaseFailures: number;
  /** Upstream istiod's figures from the same run (`upstream: true`). */
  readonly upstream?: IstiodFigures;
}

const DEFAULT_CLUSTER = { name: 'istiodbn', slot: 13 } as const;
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

/** VmRSS / VmHWM of a process, in bytes. */
function procMemory(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string): number =>
    Number(/\s(\d+) kB/.exec(status.split('\n').find(l => l.startsWith(key)) ?? '')?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS:'), hwm: kb('VmHWM:') };
}

function portOpen(port: number): Promise<true | undefined> {
  return new Promise(resolve => {
    const s = tcpConnect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => {
      resolve(undefined);
    });
  });
}

async function httpOk(url: string): Promise<true | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    return res.status === 200 ? true : undefined;
  } catch {
    return undefined;
  }
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise(resolve => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** A running istiod under measurement. */
interface RunningIstiod {
  readonly who: string;
  /** When its start began (`performance.now()`). */
  readonly t0: number;
  readonly pid: number;
  readonly xdsAddress: string;
  readonly rootCert: string;
  readonly token: string;
  readonly node: (i: number) => ReturnType<typeof ztunnelNode>;
  /** Rejects if the process exits. */
  readonly exited: Promise<never>;
  readonly readyMs: () => number | undefined;
  stop(): Promise<void>;
}

type OurIstiod = RunningIstiod & { readonly cacerts: ReturnType<CertificateAuthority['exportCaCerts']> };

/** Our istiod's executable (`main.ts`) as a child process with a plug-in CA the clients trust. */
async function startOurs(o: ApiserverOptions, cluster: Cluster, workDir: string): Promise<OurIstiod> {
  const client = cluster.client;
  // A plug-in CA, so the clients know the root before istiod starts.
  const ca = await CertificateAuthority.createSelfSigned({ keyAlgorithm: 'ecdsa-p256', extractable: true });
  const cacerts = ca.exportCaCerts();
  const caDir = join(workDir, 'cacerts');
  mkdirSync(caDir);
  for (const [file, pem] of Object.entries(cacerts) as [string, string][])
    writeFileSync(join(caDir, file), pem);
  const rootCert = cacerts['root-cert.pem'];
  const token = await mintServiceAccountToken(client, {
    namespace: 'istio-system',
    serviceAccount: 'ztunnel',
  });
  const [grpcPort, httpPort, monPort, debugPort] = [
    await freeLoopbackPort(),
    await freeLoopbackPort(),
    await freeLoopbackPort(),
    await freeLoopbackPort(),
  ];

  const main = fileURLToPath(import.meta.resolve('@ambient-mesh/istiod/main'));
  const logFile = join(workDir, 'istiod.log');
  const logFd = openSync(logFile, 'a');
  o.progress(`istiod: starting ${main} (log ${logFile})`);
  const t0 = performance.now();
  const child = spawn(
    process.execPath,
    [
      '--conditions=@ambient-mesh/source',
      main,
      '--kubeconfig', cluster.kubeconfig,
      '--secureGRPCAddr', `127.0.0.1:${grpcPort}`,
      '--httpAddr', `127.0.0.1:${httpPort}`,
      '--monitoringAddr', `127.0.0.1:${monPort}`,
      '--debugAddr', `127.0.0.1:${debugPort}`,
    ], // prettier-ignore
    {
      env: {
        PATH: process.env.PATH ?? '',
        POD_NAMESPACE: 'istio-system',
        ROOT_CA_DIR: caDir,
        PILOT_DEBOUNCE_AFTER: o.debounce,
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', logFd, logFd],
    },
  );
  closeSync(logFd);
  let stopped = false;
  const exited = new Promise<never>((_, reject) => {
    child.once('exit', code => {
      if (stopped) return;
      reject(
        new Error(`istiod exited (${code}); see ${logFile}:\n${readFileSync(logFile, 'utf8').slice(-2000)}`),
      );
    });
  });
  exited.catch(() => undefined);
  const stop = async (): Promise<void> => {
    stopped = true;
    await stopChild(child);
  };

  let readyMs: number | undefined;
  void waitFor('istiod /ready', () => httpOk(`http://127.0.0.1:${httpPort}/ready`), {
    timeoutMs: 600_000,
    intervalMs: 100,
  }).then(
    () => {
      readyMs = performance.now() - t0;
    },
    () => undefined,
  );
  try {
    await Promise.race([
      waitFor('istiod xDS port', () => portOpen(grpcPort), { timeoutMs: 120_000, intervalMs: 50 }),
      exited,
    ]);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    who: 'ours',
    t0,
    pid: child.pid ?? 0,
    xdsAddress: `127.0.0.1:${grpcPort}`,
    rootCert,
    token,
    node: i =>
      ztunnelNode({
        ip: `10.252.0.${(i % 250) + 1}`,
        podName: `ztunnel-bench-${i}`,
        namespace: 'istio-system',
        nodeName: `${FAKE_NODE_PREFIX}${i % o.fakeNodes}`,
      }),
    exited,
    readyMs: () => readyMs,
    stop,
    cacerts,
  };
}

export async function runApiserver(o: ApiserverOptions): Promise<ApiserverResult> {
  const cleanups: (() => Promise<void> | void)[] = [];
  // One cleanup run, shared by the signal handler and `finally` (whichever comes first).
  let cleaning: Promise<void> | undefined;
  const cleanUp = (): Promise<void> =>
    (cleaning ??= (async () => {
      for (const c of cleanups.splice(0).reverse()) {
        try {
          await c();
        } catch (err) {
          o.progress(`cleanup failed: ${String(err)}`);
        }
      }
    })());
  const onSignal = (signal: NodeJS.Signals): void => {
    o.progress(`${signal}: cleaning up`);
    void cleanUp().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  cleanups.push(() => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  });
  const workDir = mkdtempSync(join(tmpdir(), 'istiod-bench-'));
  cleanups.push(() => {
    rmSync(workDir, { recursive: true, force: true });
  });

  try {
    const clusterRef = o.cluster ?? DEFAULT_CLUSTER;
    const cluster: Cluster = await startCluster({
      ...clusterRef,
      nodes: 1,
      progress: line => {
        o.progress(`[cluster] ${line}`);
      },
    });
    cleanups.push(() => cluster.stop());
    const client = cluster.client;
    const crdDir = join(repoRoot, 'deploy', 'crds');
    await applyCrds(
      client,
      readdirSync(crdDir)
        .filter(f => f.endsWith('.yaml'))
        .map(f => join(crdDir, f)),
    );
    await prepareIstioSystem(client);

    const creation = await createMesh(client, o, o.concurrency, o.progress);
    const leases = keepFakeNodesAlive(client, o, 10_000);
    cleanups.push(() => {
      leases.stop();
    });

    const expected = expectedNames(o);
    // `addresses`/`authorizations` are live read-only views of the client's maps (no copies).
    const complete = (c: DeltaXdsClient): boolean => {
      const addresses = c.addresses;
      const authorizations = c.authorizations;
      if (addresses.size < expected.addresses.length || authorizations.size < expected.authorizations.length)
        return false;
      return (
        expected.addresses.every(n => addresses.has(n)) &&
        expected.authorizations.every(n => authorizations.has(n))
      );
    };

    /**
     * Measures one running istiod with the same client and changes: start → the first client
     * holds every expected resource, the other clients, the pushes of pod label patches, RSS.
     * Its clients are closed at the end; `revisionBase` keeps each run's labels new.
     */
    const measure = async (t: RunningIstiod, revisionBase: number): Promise<IstiodFigures> => {
      const own: DeltaXdsClient[] = [];
      const newClient = (i: number): DeltaXdsClient => {
        const c = new DeltaXdsClient({
          address: t.xdsAddress,
          rootCert: t.rootCert,
          token: t.token,
          node: t.node(i),
        });
        own.push(c);
        return c.start();
      };
      try {
        const first = newClient(0);
        await Promise.race([first.waitFor('the full WDS', complete, { timeoutMs: 600_000 }), t.exited]);
        const syncMs = performance.now() - t.t0;
        o.progress(`${t.who}: first client complete after ${(syncMs / 1000).toFixed(1)} s`);
        await new Promise(resolve => setTimeout(resolve, 0));
        const rssAfterSync = procMemory(t.pid).rss;

        const tc = performance.now();
        const clients = [first];
        for (let i = 1; i < o.clients; i += 10) {
          const batch = Array.from({ length: Math.min(10, o.clients - i) }, (_, k) => newClient(i + k));
          await Promise.race([
            Promise.all(batch.map(c => c.waitFor('the full WDS', complete, { timeoutMs: 300_000 }))),
            t.exited,
          ]);
          clients.push(...batch);
          o.progress(`${t.who}: clients connected: ${clients.length}/${o.clients}`);
        }
        const connectMs = performance.now() - tc;
        const rssAfterClients = procMemory(t.pid).rss;

        const latencies: number[] = [];
        for (let i = 0; i < o.changes; i++) {
          const ref = podRef(o, (i * 337) % o.pods);
          const name = `Kubernetes//Pod/${ref.namespace}/${ref.name}`;
          const revision = `v${revisionBase + i + 2}`;
          const started = performance.now();
          await client.mergePatch(`/api/v1/namespaces/${ref.namespace}/pods/${ref.name}`, {
            metadata: { labels: { version: revision } },
          });
          // Timed: until every client has a response that carries the pod (the response log is cheap
          // to read). Then, untimed, check that each holds the new revision.
          const marks = clients.map(c => c.responses.length);
          await Promise.race([
            Promise.all(
              clients.map((c, k) =>
                c.waitFor(
                  `a push of ${name}`,
                  x => x.responses.slice(marks[k]).some(r => r.resourceNames.includes(name)),
                  { timeoutMs: 30_000 },
                ),
              ),
            ),
            t.exited,
          ]);
          const took = performance.now() - started;
          const stale = clients.filter(
            c => c.addresses.get(name)?.workload?.canonicalRevision !== revision,
          ).length;
          if (stale > 0)
            throw new Error(`${t.who}: ${stale} clients received ${name} without revision ${revision}`);
          latencies.push(took);
        }
        o.progress(`${t.who}: pushes measured: ${latencies.length}`);
        return {
          who: t.who,
          readyMs: t.readyMs(),
          syncMs,
          addresses: first.addresses.size,
          authorizations: first.authorizations.size,
          connectMs,
          latencies,
          rssAfterSync,
          rssAfterClients,
          rssPeak: procMemory(t.pid).hwm,
        };
      } finally {
        await Promise.all(own.map(c => c.close()));
      }
    };

    const ours = await startOurs(o, cluster, workDir);
    let oursFigures: IstiodFigures;
    try {
      oursFigures = await measure(ours, 0);
    } finally {
      await ours.stop();
    }

    let upstreamFigures: IstiodFigures | undefined;
    if (o.upstream === true) {
      const istio = await ensureUpstreamIstio(line => {
        o.progress(`[upstream build] ${line}`);
      });
      // The same plug-in CA as ours (upstream reads ./etc/cacerts in its working dir), so the root
      // the clients trust and the published istio-ca-root-cert stay the same.
      const upstreamDir = join(workDir, 'upstream');
      const upstreamCa = join(upstreamDir, 'etc', 'cacerts');
      mkdirSync(upstreamCa, { recursive: true });
      for (const [file, pem] of Object.entries(ours.cacerts) as [string, string][])
        writeFileSync(join(upstreamCa, file), pem);
      o.progress(`upstream istiod ${istio.version}: starting`);
      const upstream = await startUpstreamIstiod({
        cluster,
        istio,
        workDir: upstreamDir,
        env: { PILOT_DEBOUNCE_AFTER: o.debounce },
        readyTimeoutMs: 600_000,
        progress: line => {
          o.progress(`[upstream] ${line}`);
        },
      });
      // Timed from the spawn, as ours (the CRDs and the ztunnel pod come before it).
      const t0 = upstream.process.startedAt;
      // Upstream's start returns at /ready (and its root ConfigMap present).
      const readyMs = performance.now() - t0;
      try {
        const token = await upstream.mintZtunnelToken();
        const z = upstream.ztunnel;
        upstreamFigures = await measure(
          {
            who: `upstream ${istio.version}`,
            t0,
            pid: upstream.process.pid ?? 0,
            xdsAddress: upstream.xdsAddress,
            rootCert: upstream.rootCert,
            token,
            // Upstream ties a ztunnel's stream to its pod: every client is that ztunnel pod.
            node: () =>
              ztunnelNode({ ip: z.ip, podName: z.podName, namespace: z.namespace, nodeName: z.nodeName }),
            exited: new Promise<never>(() => undefined),
            readyMs: () => readyMs,
            stop: () => upstream.stop(),
          },
          o.changes,
        );
      } finally {
        await upstream.stop();
      }
    }

    return {
      creation,
      ...oursFigures,
      leaseFailures: leases.failures(),
      ...(upstreamFigures === undefined ? {} : { upstream: upstreamFigures }),
    };
  } finally {
    await cleanUp();
  }
}
