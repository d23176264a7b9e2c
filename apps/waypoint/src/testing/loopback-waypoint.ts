/**
 * A waypoint on loopback for the direct tests: built against a `TestXdsServer`, with its own
 * identity from the test PKI, and returned once its first xDS sync is done. Clients reach it
 * with `clientOptions`, which name the waypoint's HBONE address and identity.
 */
import type { Logs } from '@ambient-mesh/runtime';
import type { HboneIdentity } from '@ambient-mesh/hbone';
import { build } from '../app.ts';
import type { AppDeps, Bound } from '../app.ts';
import { testConfig } from './harness.ts';
import { waitFor } from './loopback.ts';
import type { TestPki, TestXdsServer } from './loopback.ts';

export interface LoopbackWaypoint {
  readonly waypoint: Bound;
  readonly identity: HboneIdentity & { readonly id: string };
  /** `MeshClient` options for a client `sa` of `namespace` sending to `target` through the waypoint. */
  clientOptions(
    sa: string,
    target: string,
    extra?: { readonly namespace?: string; readonly baggage?: string },
  ): Promise<{
    readonly identity: HboneIdentity;
    readonly waypoint: string;
    readonly waypointIdentity: string;
    readonly target: string;
    readonly baggage?: string;
  }>;
}

export async function startLoopbackWaypoint(options: {
  readonly xds: TestXdsServer;
  readonly pki: TestPki;
  readonly logs: Logs;
  /** The waypoint's namespace (its service account is `waypoint`); default `default`. */
  readonly namespace?: string;
  /** More capabilities (`random`, `dnsLookup`, ...). */
  readonly deps?: Omit<AppDeps, 'xdsConnect' | 'identity' | 'logs'>;
}): Promise<LoopbackWaypoint> {
  const namespace = options.namespace ?? 'default';
  const identity = await options.pki.identity(namespace, 'waypoint');
  const waypoint = await build(testConfig(), {
    processMetrics: false,
    ...options.deps,
    xdsConnect: options.xds.connect(),
    identity,
    logs: options.logs,
  });
  await waitFor('xDS sync', () => waypoint.readiness.ready);
  return {
    waypoint,
    identity,
    async clientOptions(sa, target, extra = {}) {
      return {
        identity: await options.pki.identity(extra.namespace ?? namespace, sa),
        waypoint: `127.0.0.1:${waypoint.hboneAddress.port}`,
        waypointIdentity: identity.id,
        target,
        ...(extra.baggage === undefined ? {} : { baggage: extra.baggage }),
      };
    },
  };
}
