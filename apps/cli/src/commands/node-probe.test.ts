import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../errors.ts';
import { runCli } from '../testing.ts';
import { startFakeApiserver, type FakeApiserver } from '../testing-apiserver.ts';
import {
  PROBE_CNI_DIR,
  nodeFindings,
  parseProbeLog,
  primaryCniFile,
  probeScript,
  type NodeInfo,
  type NodeProbe,
} from './node-probe.ts';

const bridge = (extra: string[] = []): string =>
  JSON.stringify({
    cniVersion: '1.0.0',
    name: 'net',
    plugins: [{ type: 'bridge' }, { type: 'portmap' }, ...extra.map(type => ({ type }))],
  });

const linux = (name: string, kernelVersion = '6.8.0-45-generic'): NodeInfo => ({
  name,
  os: 'linux',
  kernelVersion,
});
const probe = (node: string, over: Partial<NodeProbe> = {}): NodeProbe => ({
  node,
  kernel: '6.8.0-45-generic',
  nftVersion: 'nftables v1.0.9 (Old Doc Yak #3)',
  nftKernelError: '',
  cniFiles: [{ name: '10-net.conflist', content: bridge() }],
  ...over,
});
const messages = (nodes: NodeInfo[], probes?: NodeProbe[]): string[] =>
  nodeFindings(nodes, probes).map(f => `${f.check} ${f.level}: ${f.message}`);

let scratch = '';
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'node-probe-'));
});
afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

/** Runs the probe's script in a real shell against `dir` as the node's /etc/cni/net.d. */
function runProbe(dir: string): string {
  const r = spawnSync('sh', ['-c', probeScript(dir)], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout;
}

describe('the node probe script', () => {
  it("reports this machine's kernel, nft and every CNI file, byte for byte, in a real shell", () => {
    const dir = join(scratch, 'net.d');
    mkdirSync(dir);
    const odd = '{"cniVersion":"1.0.0",\n "name": "x y",\n "plugins": [{"type":"bridge"}]}\n';
    writeFileSync(join(dir, '10-net.conflist'), odd);
    writeFileSync(join(dir, '99-empty.conf'), '');
    const p = parseProbeLog('node-0', runProbe(dir));
    expect(p.error).toBeUndefined();
    expect(p.kernel).toBe(release());
    expect(p.cniFiles).toEqual([
      { name: '10-net.conflist', content: odd },
      { name: '99-empty.conf', content: '' },
    ]);
    // With or without nft on this machine the answer is one of the two shapes.
    if (p.nftVersion === undefined) expect(p.nftKernelError).not.toBe('');
    else expect(p.nftVersion).toMatch(/^nftables v\d+\.\d+/);
  });

  it('reports an empty or missing CNI directory as no files, and an unfinished log as an error', () => {
    expect(parseProbeLog('n', runProbe(join(scratch, 'absent'))).cniFiles).toEqual([]);
    expect(parseProbeLog('n', 'kernel 6.1.0\nnft-missing\n')).toEqual({
      node: 'n',
      error: 'the probe did not finish its report',
      cniFiles: [],
    });
  });

  it("picks the kubelet's configuration: the first .conf/.conflist/.json by name", () => {
    expect(
      primaryCniFile([
        { name: '20-b.conflist', content: '' },
        { name: '05-a.conf', content: '' },
        { name: '00-readme.txt', content: '' },
      ])?.name,
    ).toBe('05-a.conf');
  });
});

describe('node findings', () => {
  it('passes nodes with a recent kernel, nft and a chainable conflist', () => {
    expect(messages([linux('node-1'), linux('node-0')], [probe('node-0'), probe('node-1')])).toEqual([
      'nftables ok: node node-0: Linux 6.8.0-45-generic, nftables v1.0.9 (Old Doc Yak #3), nftables usable',
      'cni-conflicts ok: node node-0: 10-net.conflist (bridge, portmap)',
      'nftables ok: node node-1: Linux 6.8.0-45-generic, nftables v1.0.9 (Old Doc Yak #3), nftables usable',
      'cni-conflicts ok: node node-1: 10-net.conflist (bridge, portmap)',
    ]);
    expect(
      messages(
        [linux('n')],
        [probe('n', { cniFiles: [{ name: '10-net.conflist', content: bridge(['ambient-istio-cni']) }] })],
      )[1],
    ).toBe(
      'cni-conflicts ok: node n: 10-net.conflist (bridge, portmap, ambient-istio-cni), the mesh chained',
    );
  });

  it('flags a kernel older than 5.13, from the API alone when probes are skipped', () => {
    expect(messages([linux('old', '5.10.0-28-amd64'), linux('new', '5.13.0')])).toEqual([
      'nftables ok: node new: Linux 5.13.0 (nft not probed)',
      "nftables error: node old runs Linux 5.10.0-28-amd64, older than 5.13, the oldest the mesh's nftables rules support; upgrade the node's kernel",
    ]);
    expect(messages([{ name: 'win', os: 'windows', kernelVersion: '10.0.17763' }], [])).toEqual([
      "nftables warning: node win runs windows: the mesh's data plane runs on Linux nodes only; keep ambient pods off it",
    ]);
  });

  it('flags a missing or old nft, and a kernel that refuses nftables, saying what to check', () => {
    const nft = (over: Partial<NodeProbe>): string => messages([linux('n')], [probe('n', over)])[0] ?? '';
    expect(nft({ nftVersion: undefined })).toMatch(
      /^nftables error: node n: the nft binary is missing .*check the cni-agent image \(--probe-image\) ships nftables 1\.0\.1 or newer$/,
    );
    expect(nft({ nftVersion: 'nftables v0.9.8 (E.D.S.)' })).toMatch(
      /^nftables error: node n: nftables v0\.9\.8 \(E\.D\.S\.\) is older than nftables 1\.0\.1/,
    );
    expect(nft({ nftKernelError: 'Error: Could not process rule: Operation not supported' })).toMatch(
      /^nftables error: node n: the kernel refused nftables \(Error: .*\); check the nf_tables, .* modules load there$/,
    );
  });

  it('flags CNI configurations the mesh cannot chain into or that another mesh owns', () => {
    const cni = (files: { name: string; content: string }[]): string =>
      messages([linux('n')], [probe('n', { cniFiles: files })])[1] ?? '';
    expect(cni([])).toMatch(
      /^cni-conflicts warning: node n has no CNI configuration in \/etc\/cni\/net\.d; install/,
    );
    expect(
      cni([
        { name: '05-flannel.conf', content: '{"type":"flannel"}' },
        { name: '10-net.conflist', content: bridge() },
      ]),
    ).toMatch(
      /^cni-conflicts error: node n: the kubelet uses \/etc\/cni\/net\.d\/05-flannel\.conf, a single-plugin configuration .*convert it to a \.conflist/,
    );
    expect(cni([{ name: '10-net.conflist', content: '{oops' }])).toMatch(/10-net\.conflist is not JSON/);
    expect(cni([{ name: '10-net.conflist', content: bridge(['istio-cni']) }])).toMatch(
      /^cni-conflicts error: node n: \/etc\/cni\/net\.d\/10-net\.conflist chains another Istio installation's CNI plugin \(istio-cni\).*uninstall it first$/,
    );
    expect(
      messages([linux('n')], [probe('n', { error: 'its probe pod did not finish in time', cniFiles: [] })]),
    ).toEqual([
      'nftables ok: node n: Linux 6.8.0-45-generic',
      'cni-conflicts warning: node n: the probe did not report (its probe pod did not finish in time); check its CNI configuration (/etc/cni/net.d) by hand',
    ]);
    expect(messages([linux('n')], [])[1]).toMatch(/the probe did not report \(no probe ran there\)/);
  });
});

describe('x precheck node probes against an apiserver', () => {
  let api: FakeApiserver;
  const created: string[] = [];

  beforeAll(async () => {
    api = await startFakeApiserver();
    api.put('/version', { gitVersion: 'v1.33.2' });
    for (const [name, kernel] of [
      ['node-0', release()],
      ['node-1', release()],
    ] as const) {
      api.put(`/api/v1/nodes/${name}`, {
        metadata: { name },
        status: { nodeInfo: { operatingSystem: 'linux', kernelVersion: kernel } },
      });
      const dir = join(scratch, `host-${name}`);
      mkdirSync(dir);
      writeFileSync(join(dir, '10-net.conflist'), bridge());
    }
    // node-1 also carries another mesh's chained plugin in a configuration the kubelet reads first.
    writeFileSync(join(scratch, 'host-node-1', '05-other.conflist'), bridge(['linkerd-cni']));
    // A kubelet stand-in: each probe pod runs its real script, with the node's directory mounted.
    api.onWrite = (method, path) => {
      // Access reviews are not stored (each POST is a new question).
      if (path.startsWith('/apis/authorization.k8s.io/')) api.objects.delete(path);
      const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)$/.exec(path);
      if (method !== 'POST' || m === null) return;
      created.push(path);
      const pod = api.objects.get(path) as {
        spec: { nodeName: string; containers: { command: string[]; image: string }[] };
      };
      const container = pod.spec.containers[0];
      expect(container?.command.slice(0, 2)).toEqual(['sh', '-c']);
      const script = (container?.command[2] ?? '').replaceAll(
        PROBE_CNI_DIR,
        join(scratch, `host-${pod.spec.nodeName}`),
      );
      const r = spawnSync('sh', ['-c', script], { encoding: 'utf8' });
      api.put(`${path}/log`, r.stdout);
      api.put(path, { ...pod, status: { phase: r.status === 0 ? 'Succeeded' : 'Failed' } });
    };
  });
  afterAll(async () => {
    await api.close();
  });

  it('runs one probe pod per node in a throw-away namespace and reports each node, then removes it', async () => {
    const r = await runCli(['x', 'precheck', '-o', 'json'], { cluster: api.cluster() });
    expect(r.code).toBe(ExitCode.Failure);
    const findings = JSON.parse(r.stdout) as { check: string; level: string; message: string }[];
    const cni = findings.filter(f => f.check === 'cni-conflicts').map(f => `${f.level}: ${f.message}`);
    expect(cni).toEqual([
      'ok: no known conflicting CNI configuration',
      'ok: node node-0: 10-net.conflist (bridge, portmap)',
      "error: node node-1: /etc/cni/net.d/05-other.conflist chains Linkerd's CNI plugin (linkerd-cni), which captures the same pods as the mesh; uninstall it first",
    ]);
    // Each node judged from its own probe (this machine's nft decides ok or error).
    const nft = findings.filter(f => f.check === 'nftables').map(f => f.message);
    expect([...new Set(nft.map(m => m.split(':')[0]))]).toEqual(['node node-0', 'node node-1']);
    expect(nft.every(m => m.includes('(nft not probed)'))).toBe(false);
    expect(created.map(p => p.split('/').pop())).toEqual(['precheck-node-0', 'precheck-node-1']);
    const ns = created[0]?.split('/')[4] ?? '';
    expect(ns).toMatch(/^ambientctl-precheck-/);
    expect(api.requests).toContain(`DELETE /api/v1/namespaces/${ns}`);
    const pod = api.objects.get(created[0] ?? '') as { spec: Record<string, unknown> };
    expect(pod.spec).toMatchObject({ nodeName: 'node-0', hostNetwork: true, restartPolicy: 'Never' });
  });

  it('--no-node-probe creates nothing and judges nftables from the API', async () => {
    created.length = 0;
    const r = await runCli(['x', 'precheck', '--no-node-probe', '-o', 'json'], { cluster: api.cluster() });
    expect(r.stderr).toMatch(/precheck found issues/);
    const findings = JSON.parse(r.stdout) as { check: string; message: string }[];
    expect(created).toEqual([]);
    expect(findings.filter(f => f.check === 'nftables').map(f => f.message)).toEqual([
      `node node-0: Linux ${release()} (nft not probed)`,
      `node node-1: Linux ${release()} (nft not probed)`,
    ]);
  });
});
