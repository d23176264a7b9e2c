import { KubeClient } from '@ambient-mesh/kube';
import { FakeApiServer, ManualTimers, until } from '@ambient-mesh/kube/testing';
import { Logs, silentLogger } from '@ambient-mesh/runtime';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { build, manualEditor, type Bound } from './app.ts';
import { loadConfig } from './config.ts';

const ZTUNNELS = '/apis/sailoperator.io/v1/ztunnels';
const DAEMONSETS = '/apis/apps/v1/daemonsets';

describe('operator app', () => {
  let server: FakeApiServer;
  let app: Bound | undefined;

  beforeEach(async () => {
    server = await FakeApiServer.start();
  });
  afterEach(async () => {
    await app?.shutdown();
    await server.close();
  });

  it('reconciles a ZTunnel seen by its informer, reverts a manual edit of its DaemonSet, and reconciles again each resync', async () => {
    server.put(ZTUNNELS, {
      apiVersion: 'sailoperator.io/v1',
      kind: 'ZTunnel',
      metadata: { name: 'default', uid: 'zt-uid' },
      spec: {
        namespace: 'ztunnel',
        version: 'v1.27.9',
        values: { ztunnel: { terminationGracePeriodSeconds: 45 } },
      },
    });
    const timers = new ManualTimers();
    app = await build(loadConfig({ OPERATOR_RESYNC_PERIOD: '10s', OPERATOR_METRICS_PORT: '0' }), {
      client: new KubeClient(server.kubeConfig()),
      logs: new Logs({ logger: silentLogger() }),
      timers,
    });
    const grace = () =>
      (
        server.get(DAEMONSETS, 'ztunnel', 'ztunnel') as unknown as
          { spec?: { template: { spec: { terminationGracePeriodSeconds: number } } } } | undefined
      )?.spec?.template.spec.terminationGracePeriodSeconds;
    await until('the DaemonSet has the CR’s grace period', () => grace() === 45);

    const ds = server.get(DAEMONSETS, 'ztunnel', 'ztunnel') as unknown as {
      spec: { template: { spec: { terminationGracePeriodSeconds: number } } };
    };
    ds.spec.template.spec.terminationGracePeriodSeconds = 1;
    server.put(DAEMONSETS, ds);
    expect(grace()).toBe(1);
    // The DaemonSet's informer queues its owner: no resync needed.
    await until('the DaemonSet has the CR’s grace period', () => grace() === 45);
    await app.idle();

    const reconciles = async (): Promise<number> => {
      const text = await (await fetch(`http://127.0.0.1:${app!.ops.port}/metrics`)).text();
      return Number(
        /controller_runtime_reconcile_total\{controller="ZTunnel",result="success"\} (\d+)/.exec(text)?.[1] ??
          0,
      );
    };
    const before = await reconciles();
    expect(before).toBeGreaterThan(0);
    expect(timers.fire()).toBe(10_000);
    // Polled with a bound: the metrics endpoint answers asynchronously.
    for (let i = 0; i < 100 && (await reconciles()) <= before; i++) await new Promise(r => setTimeout(r, 50));
    expect(await reconciles()).toBeGreaterThan(before);
    await app.idle();
  });
});

describe('manualEditor', () => {
  const meta = (spec: object, managers: [string, string][]) => ({
    metadata: { name: 'istiod', managedFields: managers.map(([manager, time]) => ({ manager, time })) },
    spec,
  });
  it('names who changed the spec last when it was not the operator', () => {
    const old = meta({ replicas: 1 }, [['ambient-mesh-operator', '2026-01-01T00:00:00Z']]);
    const edited = meta({ replicas: 0 }, [
      ['ambient-mesh-operator', '2026-01-01T00:00:00Z'],
      ['kubectl', '2026-01-01T00:01:00Z'],
    ]);
    expect(manualEditor(old, edited)).toBe('kubectl');
    expect(
      manualEditor(
        edited,
        meta({ replicas: 1 }, [
          ['kubectl', '2026-01-01T00:01:00Z'],
          ['ambient-mesh-operator', '2026-01-01T00:02:00Z'],
        ]),
      ),
    ).toBeUndefined();
    expect(manualEditor(old, old)).toBeUndefined();
  });
});
