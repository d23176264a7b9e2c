import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { ZtunnelPod } from '@ambient-mesh/install';
import { parseZtunnelDump } from '../ztunnel-dump.ts';
import { runCli } from '../testing.ts';
import {
  certificateRows,
  connectionRows,
  formatLogAnswer,
  formatSection,
  loggingRequest,
  policyRows,
  selectZtunnels,
  serialHex,
  serviceRows,
  workloadRows,
} from './ztunnel-config.ts';

const fixturePath = fileURLToPath(new URL('../testdata/ztunnel-dump.json', import.meta.url));
const dump = parseZtunnelDump(readFileSync(fixturePath, 'utf8'));
const now = new Date('2026-12-05T10:00:00Z');

describe('ztunnel-config formatting (istioctl 1.27 columns)', () => {
  it('prints workloads sorted by namespace.name with the waypoint service name', () => {
    expect(formatSection('workload', dump, {}, 'table', now)).toBe(
      [
        'NAMESPACE    POD NAME           ADDRESS    NODE     WAYPOINT PROTOCOL',
        'istio-system istiod-6d5c4-klmno 10.244.0.3 worker-1 None     TCP',
        'sample       client-7c9d8-abcde 10.244.1.5 worker-1 None     HBONE',
        'sample       echo-5f6b7-fghij   10.244.2.7 worker-2 waypoint HBONE',
        '',
      ].join('\n'),
    );
  });

  it('filters workloads by namespace, node and address', () => {
    expect(workloadRows(dump, { namespace: 'sample', node: 'worker-1' }).map(r => r[1])).toEqual([
      'client-7c9d8-abcde',
    ]);
    expect(workloadRows(dump, { address: '10.244.2.7' }).map(r => r[1])).toEqual(['echo-5f6b7-fghij']);
  });

  it('prints services with the VIP without its network and healthy/total endpoints', () => {
    expect(serviceRows(dump, { namespace: 'sample' })).toEqual([
      ['sample', 'echo', '10.96.20.30', 'waypoint', '1/1'],
      ['sample', 'waypoint', '10.96.20.40', 'None', '0/0'],
    ]);
  });

  it('prints policies with action and scope', () => {
    expect(policyRows(dump, {})).toEqual([
      ['default', 'allow-nothing', 'Allow', 'Namespace'],
      ['sample', 'deny-client', 'Deny', 'WorkloadSelector'],
    ]);
  });

  it('prints certificates with hex serials, validity and NA rows for pending identities', () => {
    expect(serialHex('305419896')).toBe('12345678');
    expect(certificateRows(dump, now)).toEqual([
      [
        'spiffe://cluster.local/ns/sample/sa/client',
        'Leaf',
        'Available',
        'true',
        '12345678',
        '2026-12-06T09:00:00Z',
        '2026-12-05T09:00:00Z',
      ],
      [
        'spiffe://cluster.local/ns/sample/sa/client',
        'Root',
        'Available',
        'true',
        'ff',
        '2036-01-01T00:00:00Z',
        '2026-01-01T00:00:00Z',
      ],
      ['spiffe://cluster.local/ns/sample/sa/echo', 'NA', 'Initializing', 'false', 'NA', 'NA', 'NA'],
    ]);
  });

  it('prints connections per workload and direction', () => {
    expect(connectionRows(dump, {})).toEqual([
      [
        'client-7c9d8-abcde.sample',
        'Outbound',
        '10.244.1.5:40000',
        '10.244.2.7:15008',
        '10.96.20.30:8080',
        'HBONE',
      ],
      [
        'echo-5f6b7-fghij.sample',
        'Inbound',
        '10.244.2.7:8080',
        '10.244.1.5:40000',
        'echo.sample.svc.cluster.local',
        'HBONE',
      ],
    ]);
  });

  it('prints json and yaml of the filtered entries', () => {
    const json = JSON.parse(formatSection('workload', dump, { node: 'worker-2' }, 'json', now)) as {
      name: string;
    }[];
    expect(json.map(w => w.name)).toEqual(['echo-5f6b7-fghij']);
    expect(formatSection('policy', dump, { namespace: 'sample' }, 'yaml', now)).toContain(
      'name: deny-client',
    );
  });
});

describe('selectZtunnels', () => {
  const pods: ZtunnelPod[] = [
    { name: 'ztunnel-b', namespace: 'istio-system', node: 'worker-2', uid: 'b', ip: '10.0.0.2' },
    { name: 'ztunnel-a', namespace: 'istio-system', node: 'worker-1', uid: 'a', ip: '10.0.0.1' },
  ];
  it('asks one ztunnel for cluster-wide sections and every ztunnel for per-node ones', () => {
    expect(selectZtunnels(pods, 'workload', {}).map(p => p.name)).toEqual(['ztunnel-a']);
    expect(selectZtunnels(pods, 'certificate', {}).map(p => p.name)).toEqual(['ztunnel-a', 'ztunnel-b']);
    expect(selectZtunnels(pods, 'connections', { node: 'worker-2' }).map(p => p.name)).toEqual(['ztunnel-b']);
    expect(selectZtunnels(pods, 'all', { pod: 'ztunnel-b.istio-system' }).map(p => p.name)).toEqual([
      'ztunnel-b',
    ]);
  });
  it('says what to check for an unknown node or pod', () => {
    expect(() => selectZtunnels(pods, 'workload', { node: 'nope' })).toThrow(
      /no running ztunnel on node "nope"; check/,
    );
    expect(() => selectZtunnels(pods, 'workload', { pod: 'ztunnel-z' })).toThrow(
      /no running ztunnel pod "ztunnel-z"/,
    );
  });
});

describe('ambientctl ztunnel-config (command)', () => {
  it('reads a dump file with -f without touching a cluster', async () => {
    const r = await runCli(['zc', 'workload', '-f', fixturePath, '-n', 'sample']);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe(
      'NAMESPACE POD NAME           ADDRESS    NODE     WAYPOINT PROTOCOL',
    );
    expect(r.stdout).toContain('echo-5f6b7-fghij');
    expect(r.stdout).not.toContain('istiod');
    expect(r.flags).toEqual([]);
  });

  it('reads a dump from stdin with -f -', async () => {
    const r = await runCli(['ztunnel-config', 'service', '-f', '-', '-o', 'json'], {
      stdin: readFileSync(fixturePath, 'utf8'),
    });
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as unknown[]).length).toBe(3);
  });

  it('prints all sections', async () => {
    const r = await runCli(['zc', 'all', '-f', fixturePath]);
    expect(r.code).toBe(0);
    for (const header of ['POD NAME', 'SERVICE VIP', 'POLICY NAME', 'CERTIFICATE NAME', 'REMOTE TARGET']) {
      expect(r.stdout).toContain(header);
    }
  });

  it('fails with exit 1 and what to check on a file that is not a dump, 4 on a missing file', async () => {
    const bad = await runCli(['zc', 'workload', '-f', '-'], { stdin: '{"x":1}' });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/not a ztunnel config dump/);
    const missing = await runCli(['zc', 'workload', '-f', '/nonexistent/dump.json']);
    expect(missing.code).toBe(4);
    expect(missing.stderr).toMatch(/cannot read the dump file .*check the path/);
  });

  it('rejects an unknown output format with exit 2', async () => {
    const r = await runCli(['zc', 'workload', '-f', fixturePath, '-o', 'wide']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Allowed choices are table, json, yaml/);
  });
});

describe('ztunnel-config log', () => {
  it('reads with GET and sets or resets with POST /logging?level=', () => {
    expect(loggingRequest({})).toEqual({ method: 'GET', path: '/logging' });
    expect(loggingRequest({ level: 'debug' })).toEqual({ method: 'POST', path: '/logging?level=debug' });
    expect(loggingRequest({ level: 'access:debug,info' })).toEqual({
      method: 'POST',
      path: '/logging?level=access%3Adebug%2Cinfo',
    });
    expect(loggingRequest({ reset: true })).toEqual({ method: 'POST', path: '/logging?level=reset' });
    expect(() => loggingRequest({ level: 'debug please' })).toThrow(/invalid --level/);
    expect(() => loggingRequest({ level: 'debug', reset: true })).toThrow(/not both/);
  });
  it('prints each answer under the pod name', () => {
    const pod = { name: 'ztunnel-a', namespace: 'istio-system', node: 'n', uid: 'u', ip: '' };
    expect(formatLogAnswer(pod, 'current log level is info')).toBe(
      'ztunnel-a.istio-system:\ncurrent log level is info\n',
    );
  });
  it('rejects a bad level with exit 2 before touching a cluster', async () => {
    const r = await runCli(['zc', 'log', '--level', 'a b']);
    expect(r.code).toBe(2);
    expect(r.flags).toEqual([]);
  });
});
