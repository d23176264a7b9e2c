/**
 * The waypoint's side of xDS (the client is `@ambient-mesh/xds`'s `XdsClient`): one handler per
 * Envoy type. Each decodes the `Any` with the Envoy protos, converts it to a validated domain
 * value and hands the accepted batch to the state's single writer. A resource that fails to
 * decode or validate is rejected on its own, with every problem in the NACK message, and its
 * last good version stays in force.
 */
import { errorMessage } from '@ambient-mesh/errors';
import { TypeUrl } from '@ambient-mesh/mesh-api';
import type { IncomingResource, Rejection, ResourceHandler } from '@ambient-mesh/xds';
import { unpackAny } from '@ambient-mesh/xds-types';
import { convertCluster, convertClusterLoadAssignment } from '../config/convert-cluster.ts';
import { convertListener } from '../config/convert-listener.ts';
import { convertRouteConfiguration } from '../config/convert-route.ts';
import type { Converted, ListenerConfig } from '../config/types.ts';
import type { WaypointStateMutator } from '../state/waypoint-state.ts';
import { convertPeerAddress } from '../state/peer-index.ts';
import type { PeerAddress, PeerIndexMutator } from '../state/peer-index.ts';
import { EnvoyType, decodeEnvoy } from './envoy-protos.ts';
import type { ProtoObject } from './envoy-protos.ts';

type Converter<T> = (name: string, version: string, value: ProtoObject) => Converted<T>;

/**
 * Router mode: binds the listeners' addresses before they are applied. Resolves with the
 * listeners to apply and the ones rejected (a port that cannot be bound).
 */
export type ListenerBinder = (
  accepted: readonly ListenerConfig[],
  removed: readonly string[],
) => Promise<{ readonly applied: readonly ListenerConfig[]; readonly rejected: readonly Rejection[] }>;

function handler<T>(
  typeUrl: string,
  typeName: string,
  convert: Converter<T>,
  apply: (accepted: readonly T[], removed: readonly string[]) => Promise<readonly Rejection[]> | undefined,
): ResourceHandler {
  return {
    typeUrl,
    handle(
      resources: readonly IncomingResource[],
      removed: readonly string[],
    ): readonly Rejection[] | Promise<readonly Rejection[]> {
      const accepted: T[] = [];
      const rejected: Rejection[] = [];
      for (const r of resources) {
        let result: Converted<T>;
        try {
          if (r.resource === null) throw new Error('the resource carries no value');
          if (r.resource.type_url !== typeUrl)
            throw new Error(`expected ${typeUrl}, got ${r.resource.type_url}`);
          result = convert(r.name, r.version, decodeEnvoy(typeName, r.resource.value));
        } catch (err) {
          result = { ok: false, problems: [errorMessage(err)] };
        }
        if (result.ok) accepted.push(result.value);
        else rejected.push({ name: r.name, reason: result.problems.join(', ') });
      }
      const more = apply(accepted, removed);
      return more === undefined ? rejected : more.then(r => [...rejected, ...r]);
    },
  };
}

/**
 * The four handlers, in the order Envoy applies them (CDS, EDS, LDS, RDS). With `bindListeners`
 * (router mode) a listener is applied once its port is bound; one that cannot be is NACKed.
 */
export function waypointHandlers(
  mutator: WaypointStateMutator,
  bindListeners?: ListenerBinder,
): ResourceHandler[] {
  return [
    handler(TypeUrl.cluster, EnvoyType.cluster, convertCluster, (a, r) => {
      mutator.applyClusters(a, r);
      return undefined;
    }),
    handler(
      TypeUrl.clusterLoadAssignment,
      EnvoyType.clusterLoadAssignment,
      convertClusterLoadAssignment,
      (a, r) => {
        mutator.applyEndpoints(a, r);
        return undefined;
      },
    ),
    handler(TypeUrl.listener, EnvoyType.listener, convertListener, (a, r) => {
      if (bindListeners === undefined) {
        mutator.applyListeners(a, r);
        return undefined;
      }
      return bindListeners(a, r).then(({ applied, rejected }) => {
        mutator.applyListeners(applied, r);
        return rejected;
      });
    }),
    handler(TypeUrl.routeConfiguration, EnvoyType.routeConfiguration, convertRouteConfiguration, (a, r) => {
      mutator.applyRoutes(a, r);
      return undefined;
    }),
  ];
}

/**
 * WDS `istio.workload.Address` (wildcard, as upstream waypoints subscribe): the workloads and
 * services behind connections, for the source labels. A malformed resource is NACKed on its own
 * with its problems; its last good version stays in the index.
 */
export function addressHandler(mutator: PeerIndexMutator): ResourceHandler {
  return {
    typeUrl: TypeUrl.address,
    handle(resources, removed) {
      const accepted: PeerAddress[] = [];
      const rejected: Rejection[] = [];
      for (const r of resources) {
        let result: Converted<PeerAddress>;
        try {
          result = convertPeerAddress(r.name, unpackAny(r.resource, TypeUrl.address));
        } catch (err) {
          result = { ok: false, problems: [errorMessage(err)] };
        }
        if (result.ok) accepted.push(result.value);
        else rejected.push({ name: r.name, reason: result.problems.join(', ') });
      }
      mutator.apply(accepted, removed);
      return rejected;
    },
  };
}
