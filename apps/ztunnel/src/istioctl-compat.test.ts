// Upstream istioctl reads our dump: `istioctl ztunnel-config <kind> -f dump.json` on the dump
// of the fixture state. istioctl is the one built from the Go module proxy by
// tools/install-deps.d/istioctl.sh into the shared cache; the test is skipped where it is absent.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { configDump } from './admin-server.ts';
import { fixtureSources } from './testing/dump-fixture.ts';

const run = promisify(execFile);

function findIstioctl(): string | undefined {
  const explicit = process.env.ISTIOCTL;
  if (explicit !== undefined && existsSync(explicit)) return explicit;
  const root = join(process.env.AMBIENT_MESH_CACHE ?? join(homedir(), '.cache', 'ambient-mesh'), 'istio');
  if (!existsSync(root)) return undefined;
  for (const label of readdirSync(root).sort().reverse()) {
    const bin = join(root, label, 'bin', 'istioctl');
    if (existsSync(bin)) return bin;
  }
  return undefined;
}

const istioctl = findIstioctl();
const dir = mkdtempSync(join(tmpdir(), 'ztunnel-dump-'));
const file = join(dir, 'dump.json');
writeFileSync(file, JSON.stringify(configDump(fixtureSources()), null, 2));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function zc(...args: string[]): Promise<string> {
  const { stdout } = await run(istioctl ?? 'istioctl', ['ztunnel-config', ...args, '-f', file], {
    timeout: 30_000,
  });
  return stdout;
}

/** The data rows of an istioctl table (the header dropped), split on whitespace. */
function rows(table: string): string[][] {
  return table
    .trim()
    .split('\n')
    .slice(1)
    .map(line => line.trim().split(/\s+/));
}

describe.skipIf(istioctl === undefined)('upstream istioctl ztunnel-config reads our config_dump', () => {
  it('workload: our workloads with node, waypoint and protocol', async () => {
    const out = await zc('workload');
    expect(out).toMatch(/^NAMESPACE\s+POD NAME\s+ADDRESS\s+NODE\s+WAYPOINT\s+PROTOCOL\n/);
    const table = rows(out);
    expect(table).toContainEqual(['default', 'pod-a', '10.244.0.2', 'node-1', 'waypoint', 'HBONE']);
    expect(table).toContainEqual(['default', 'pod-c', '10.244.0.3', 'node-1', 'None', 'TCP']);
  });

  it('service: our service with its VIP and endpoints', async () => {
    const out = await zc('service');
    expect(out).toMatch(/^NAMESPACE\s+SERVICE NAME\s+SERVICE VIP\s+WAYPOINT\s+ENDPOINTS\n/);
    const table = rows(out);
    expect(table).toContainEqual(['default', 'svc-b', '10.96.0.10', 'waypoint', '1/1']);
    expect(table).toContainEqual(['default', 'waypoint', '10.96.0.20', 'None', '0/0']);
  });

  it('policy: our policy with its scope and action', async () => {
    const out = await zc('policy');
    expect(out).toMatch(/default\s+allow-a\s+Allow\s+WorkloadSelector/);
    const json = JSON.parse(await zc('policy', '-o', 'json')) as { rules: unknown[][][] }[];
    expect(json[0]?.rules[0]).toHaveLength(2);
  });

  it('certificate: the identity, with the decimal serial read back (istioctl prints it in hex)', async () => {
    const table = rows(await zc('certificate'));
    expect(table[0]?.slice(0, 3)).toEqual(['spiffe://cluster.local/ns/default/sa/sa-a', 'Leaf', 'Available']);
    expect(table[0]).toContain('a1b');
  });

  it('connections and all parse too', async () => {
    expect(rows(await zc('connections'))).toContainEqual([
      'pod-a.default',
      'Outbound',
      'pod-a.default:40000',
      '10.244.0.5:15008',
      'svc-b.default.svc.cluster.local:80',
      'HBONE',
    ]);
    const all = await zc('all');
    expect(all).toContain('pod-a');
    expect(all).toContain('svc-b');
  });
});
