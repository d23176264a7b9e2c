import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ExitCode } from '../errors.ts';
import { runCli } from '../testing.ts';
import { startFakeApiserver, type FakeApiserver } from '../testing-apiserver.ts';
import { installResources, readiness, resourceState, type SailResource } from './install.ts';

const opts = {
  version: 'v1.27.9',
  profile: 'ambient',
  istioNamespace: 'istio-system',
  cniNamespace: 'istio-cni',
  ztunnelNamespace: 'ztunnel',
};
const CRDS = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';

describe('install resources', () => {
  it('writes an Istio, an IstioCNI and a ZTunnel named default for the ambient profile', () => {
    expect(installResources(opts)).toEqual([
      {
        apiVersion: 'sailoperator.io/v1',
        kind: 'Istio',
        metadata: { name: 'default' },
        spec: {
          version: 'v1.27.9',
          namespace: 'istio-system',
          profile: 'ambient',
          values: { pilot: { trustedZtunnelNamespace: 'ztunnel' } },
        },
      },
      {
        apiVersion: 'sailoperator.io/v1',
        kind: 'IstioCNI',
        metadata: { name: 'default' },
        spec: { version: 'v1.27.9', namespace: 'istio-cni', profile: 'ambient' },
      },
      {
        apiVersion: 'sailoperator.io/v1',
        kind: 'ZTunnel',
        metadata: { name: 'default' },
        spec: { version: 'v1.27.9', namespace: 'ztunnel', profile: 'ambient' },
      },
    ]);
    expect(installResources({ ...opts, ztunnelNamespace: 'istio-system' })[0]?.spec.values).toBeUndefined();
    expect(installResources({ ...opts, profile: 'default' }).map(r => r.kind)).toEqual(['Istio']);
  });

  it('refuses a malformed version or an unknown profile', () => {
    expect(() => installResources({ ...opts, version: '1.27' })).toThrow(
      /invalid --version "1.27"; use e.g. v1.27.9/,
    );
    expect(() => installResources({ ...opts, profile: 'huge' })).toThrow(/unknown --profile "huge"/);
  });

  it('is Ready only once the operator observed the latest generation and says Ready=True', () => {
    const r = (gen: number, observed: number, ready?: string, reason?: string): SailResource => ({
      ...installResources(opts)[2]!,
      metadata: { name: 'default', generation: gen },
      status: {
        observedGeneration: observed,
        conditions: ready === undefined ? [] : [{ type: 'Ready', status: ready, reason }],
      },
    });
    expect(resourceState(r(2, 1, 'True')).ready).toBe(false);
    expect(resourceState(r(2, 2, 'True'))).toEqual({ ready: true, text: 'ZTunnel default: Ready' });
    expect(resourceState(r(2, 2, 'False', 'DaemonSetNotReady')).text).toBe(
      'ZTunnel default: not Ready (DaemonSetNotReady)',
    );
    expect(readiness([r(1, 1, 'True'), undefined], ['ZTunnel', 'Istio'])).toEqual({
      done: false,
      status: '1/2 Ready — ZTunnel default: Ready; Istio default: not found',
    });
  });
});

describe('install, upgrade and uninstall against a cluster', () => {
  let api: FakeApiserver;
  let operatorReady = true;
  beforeEach(async () => {
    api = await startFakeApiserver();
    operatorReady = true;
    for (const plural of ['istios', 'istiocnis', 'ztunnels']) {
      api.put(`${CRDS}/${plural}.sailoperator.io`, { metadata: { name: `${plural}.sailoperator.io` } });
    }
    // The operator: every write of a resource bumps its generation and reports its status.
    api.onWrite = (method, path) => {
      const obj = api.objects.get(path) as (SailResource & Record<string, unknown>) | undefined;
      if (method === 'DELETE' || obj === undefined || !path.startsWith('/apis/sailoperator.io/')) return;
      const generation = (obj.metadata.generation ?? 0) + 1;
      api.put(path, {
        ...obj,
        metadata: { ...obj.metadata, generation },
        status: {
          observedGeneration: generation,
          state: operatorReady ? 'Healthy' : 'ReconcileError',
          conditions: [
            {
              type: 'Ready',
              status: operatorReady ? 'True' : 'False',
              reason: operatorReady ? 'Healthy' : 'ReconcileError',
            },
          ],
        },
      });
    };
  });
  afterEach(async () => {
    await api.close();
  });
  const run = (...argv: string[]): ReturnType<typeof runCli> =>
    runCli(['--kubeconfig', api.kubeconfig, ...argv], { cluster: api.cluster() });

  it('installs: creates the namespaces and the resources, and waits until each is Ready', async () => {
    const r = await run('install', '--profile', 'ambient');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(
      [
        'KIND     NAME    NAMESPACE    PROFILE VERSION STATUS',
        'Istio    default istio-system ambient v1.27.9 Healthy',
        'IstioCNI default istio-cni    ambient v1.27.9 Healthy',
        'ZTunnel  default ztunnel      ambient v1.27.9 Healthy',
        '',
      ].join('\n'),
    );
    for (const ns of ['istio-system', 'istio-cni', 'ztunnel'])
      expect(api.objects.has(`/api/v1/namespaces/${ns}`)).toBe(true);
    const again = await run('install');
    expect(again.code).toBe(ExitCode.Failure);
    expect(again.stderr).toMatch(
      /Istio default already exists: the mesh is installed; use ambientctl upgrade --version/,
    );
  });

  it('upgrades every resource to --version and waits until Ready at it', async () => {
    expect((await run('install', '--no-wait')).code).toBe(0);
    const r = await run('upgrade', '--version', 'v1.27-latest', '-o', 'json');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('Istio default: v1.27.9 -> v1.27-latest');
    expect((JSON.parse(r.stdout) as SailResource[]).map(x => [x.kind, x.spec.version])).toEqual([
      ['Istio', 'v1.27-latest'],
      ['IstioCNI', 'v1.27-latest'],
      ['ZTunnel', 'v1.27-latest'],
    ]);
    expect((await run('upgrade')).code).toBe(ExitCode.Usage);
  });

  it('times out with the last state and what to check, exit 6', async () => {
    operatorReady = false;
    const r = await run('install', '--timeout', '0s');
    expect(r.code).toBe(ExitCode.Timeout);
    expect(r.stderr).toMatch(
      /the mesh is not Ready after 0s \(0\/3 Ready — Istio default: not Ready \(ReconcileError\).*\); check the operator is running/,
    );
  });

  it('uninstalls the resources, and says when there is nothing to uninstall', async () => {
    expect((await run('install', '--no-wait')).code).toBe(0);
    const r = await run('uninstall');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('ZTunnel default deleted\nIstioCNI default deleted\nIstio default deleted\n');
    const none = await run('uninstall');
    expect(none.code).toBe(ExitCode.NotFound);
    expect(none.stderr).toMatch(/the mesh is not installed through the operator; check the context/);
    expect((await run('upgrade', '--version', 'v1.27.9')).code).toBe(ExitCode.NotFound);
  });

  it('says the operator is missing when its CRDs are not installed, exit 7', async () => {
    api.objects.delete(`${CRDS}/istios.sailoperator.io`);
    const r = await run('install');
    expect(r.code).toBe(ExitCode.MeshUnavailable);
    expect(r.stderr).toMatch(/the CRD istios.sailoperator.io is not installed; install the operator first/);
  });
});
