/**
 * What the CA scenarios (plugin-ca, ca-migration, external-ca, k8s-csr) share: their own cluster
 * with the mesh installed, Secret `cacerts` plugged in before the install, a client on node-0 and
 * an echo server on node-1 in an ambient namespace, the workload certificates ztunnel holds (its
 * config dump), `openssl verify` of them, and the mTLS connections counted between the two.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { expect } from 'vitest';
import { startCluster, type Cluster } from '../cluster.ts';
import { runCommand, waitFor } from '../exec.ts';
import { installMesh, MESH_NAMESPACE } from '../mesh/install.ts';
import { ztunnelPods } from '../mesh/observe.ts';
import { ScenarioContext } from '../mesh/scenario.ts';
import { jsonLines, podLog } from './cni-observe.ts';
import {
  createAppNamespace,
  echoPod,
  heldCert,
  mtlsConnectionsTo,
  readyPod,
  setZtunnelEnv,
  type CertDump,
  type MeshPod,
} from '../mesh/workloads.ts';

export { heldCert, type CertDump } from '../mesh/workloads.ts';

/** A 2-node cluster of the scenario's own name and slot, progress logged through `log`. */
export function startCaCluster(name: string, slot: number, log: (line: string) => void): Promise<Cluster> {
  return startCluster({
    name,
    slot,
    nodes: 2,
    progress: l => {
      log(`cluster: ${l}`);
    },
  });
}

/** Installs the mesh and asserts every component is Ready. */
export async function installMeshReady(c: Cluster, log: (line: string) => void): Promise<void> {
  const status = await installMesh(c, {
    progress: l => {
      log(`mesh: ${l}`);
    },
  });
  expect(
    status.components.every(x => x.ready),
    JSON.stringify(status),
  ).toBe(true);
}

/** Secret `cacerts` (base64 `data`) in the mesh namespace, created before the mesh is installed. */
export async function plugCacerts(
  c: Cluster,
  data: Record<string, string>,
  fieldManager: string,
): Promise<void> {
  await c.client.apply(
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: MESH_NAMESPACE } },
    { fieldManager },
  );
  await c.client.create(`/api/v1/namespaces/${MESH_NAMESPACE}/secrets`, {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'cacerts', namespace: MESH_NAMESPACE },
    data,
  });
}

/**
 * The ambient namespace `ns` with service accounts `echo` and `client`, pod `echo` on node-1 and
 * pod `client` (PORT 9090) on node-0, both waited for enrolled and Ready.
 */
export async function clientAndEcho(
  c: Cluster,
  ns: string,
  options: { readonly echoEnv?: Record<string, string>; readonly timeoutMs?: number } = {},
): Promise<{ client: MeshPod; echo: MeshPod }> {
  await createAppNamespace(c, ns, ['echo', 'client']);
  await c.client.create(
    `/api/v1/namespaces/${ns}/pods`,
    echoPod('echo', { namespace: ns, node: 'node-1', env: options.echoEnv ?? {} }),
  );
  await c.client.create(
    `/api/v1/namespaces/${ns}/pods`,
    echoPod('client', { namespace: ns, node: 'node-0', env: { PORT: '9090' } }),
  );
  const wait = options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs };
  const echo = await readyPod(c, ns, 'echo', wait);
  const client = await readyPod(c, ns, 'client', wait);
  return { client, echo };
}

/**
 * `openssl verify` of the dumped leaf against `dir`/root-cert.pem (the plugged root), with the
 * dumped intermediates; the tool's output.
 */
export async function opensslVerify(dir: string, cert: CertDump): Promise<string> {
  const leaf = join(dir, 'leaf.pem');
  const untrusted = join(dir, 'untrusted.pem');
  writeFileSync(leaf, cert.certChain[0]?.pem ?? '');
  writeFileSync(
    untrusted,
    cert.certChain
      .slice(1)
      .map(x => x.pem)
      .join(''),
  );
  const r = await runCommand(
    [
      'openssl',
      'verify',
      '-CAfile',
      join(dir, 'root-cert.pem'),
      '-untrusted',
      untrusted,
      '-purpose',
      'any',
      leaf,
    ],
    { allowFailure: true },
  );
  return (r.stdout + r.stderr).trim();
}

/** mTLS connections from `ns`/client to the echo workload, as the destination ztunnels count them. */
export function mtlsToEcho(c: Cluster, ns: string): Promise<number> {
  return mtlsConnectionsTo(c, 'echo', `spiffe://cluster.local/ns/${ns}/sa/client`);
}

/**
 * Per ztunnel, its warnings and errors (pino levels 40 and up): how many, and the first `first`
 * (message and error), so a lost request in a CA scenario shows its cause.
 */
export async function ztunnelWarnings(c: Cluster, first = 3): Promise<string[]> {
  const out: string[] = [];
  for (const z of await ztunnelPods(c.client, c.layout)) {
    const bad = jsonLines(await podLog(c.client, MESH_NAMESPACE, z.name)).filter(
      l => typeof l.level === 'number' && l.level >= 40,
    );
    const show = (l: Record<string, unknown>): string =>
      `${typeof l.msg === 'string' ? l.msg : ''}${l.error === undefined ? '' : `: ${JSON.stringify(l.error)}`}`;
    out.push(
      `ztunnel ${z.node}: ${String(bad.length)} warning/error line(s)${bad.length === 0 ? '' : ` (${bad.slice(0, first).map(show).join(' | ')})`}`,
    );
  }
  return out;
}

/** A workload's leaf certificate as its node's ztunnel holds it. */
export interface HeldLeaf {
  readonly sa: string;
  readonly node: string;
  readonly cert: CertDump;
  readonly leaf: X509Certificate;
}

/**
 * One CA scenario file's state: its cluster, its scratch folder (CA material, `openssl verify`
 * inputs), its app namespace and its `[tag]` log lines. The methods are bound, so a file may take
 * them apart (`const { log, kube } = scenario`).
 */
export class CaScenario extends ScenarioContext<MeshPod> {
  readonly ns: string;
  private scratch = '';

  constructor(tag: string, ns: string) {
    super(tag);
    this.ns = ns;
  }

  /** The scratch folder, made on the first call. */
  readonly dir = (): string => {
    if (this.scratch === '') this.scratch = mkdtempSync(join(tmpdir(), `${this.tag}-`));
    return this.scratch;
  };

  /** Starts the file's 2-node cluster (its own name and slot). */
  readonly start = async (name: string, slot: number): Promise<Cluster> => {
    this.cluster = await startCaCluster(name, slot, this.log);
    return this.cluster;
  };

  /** Stops the cluster, removes the scratch folder and logs the wall time. */
  readonly stop = async (): Promise<void> => {
    await this.cluster?.stop();
    if (this.scratch !== '') rmSync(this.scratch, { recursive: true, force: true });
    this.logWallTime();
  };

  /**
   * Installs the mesh, gives workload certificates `certTtlS` (ztunnel's SECRET_TTL, when set),
   * starts the client and echo pods (see `clientAndEcho`; kept as `pods` `client` and `echo`) and
   * logs the setup time.
   */
  readonly meshAndApps = async (
    c: Cluster,
    options: { readonly certTtlS?: number; readonly echoEnv?: Record<string, string> },
  ): Promise<{ client: MeshPod; echo: MeshPod }> => {
    await installMeshReady(c, this.log);
    if (options.certTtlS !== undefined)
      await setZtunnelEnv(c, { SECRET_TTL: `${String(options.certTtlS)}s` });
    const apps = await clientAndEcho(
      c,
      this.ns,
      options.echoEnv === undefined ? {} : { echoEnv: options.echoEnv },
    );
    this.pods.set('echo', apps.echo).set('client', apps.client);
    this.logSetupTime();
    return apps;
  };

  /** The Available certificate of `sa` (in the app namespace) held by the ztunnel of `node`. */
  readonly heldCert = (node: string, sa: string): Promise<CertDump | undefined> =>
    heldCert(this.kube(), this.ns, node, sa);

  readonly opensslVerify = (cert: CertDump): Promise<string> => opensslVerify(this.dir(), cert);

  readonly mtlsToEcho = (): Promise<number> => mtlsToEcho(this.kube(), this.ns);

  /** Waits (60 s each) for the client's and then echo's certificate on their nodes. */
  readonly leaves = async (pods: { client: MeshPod; echo: MeshPod }): Promise<HeldLeaf[]> => {
    const out: HeldLeaf[] = [];
    for (const [node, sa] of [
      [pods.client.node, 'client'],
      [pods.echo.node, 'echo'],
    ] as const) {
      const cert = await waitFor(`the ${sa} certificate on ${node}`, () => this.heldCert(node, sa), {
        timeoutMs: 60_000,
        intervalMs: 500,
      });
      out.push({ sa, node, cert, leaf: new X509Certificate(cert.certChain[0]!.pem) });
    }
    return out;
  };
}
