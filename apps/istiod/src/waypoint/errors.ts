/** Typed errors of the waypoint xDS. Codes are stable API and prefixed `ISTIOD_WAYPOINT_`. */
import { MeshError } from '@ambient-mesh/errors';

export const WaypointErrorCode = {
  /** The Envoy API protos from `@grpc/grpc-js-xds` could not be loaded. */
  ProtoLoad: 'ISTIOD_WAYPOINT_PROTO_LOAD',
  /** A generated resource failed protobuf verification (a translator bug; the resource is not pushed). */
  Encode: 'ISTIOD_WAYPOINT_ENCODE',
  /** A RequestAuthentication's `jwksUri` could not be fetched or is not a JSON Web Key Set. */
  JwksFetch: 'ISTIOD_WAYPOINT_JWKS_FETCH',
} as const;
export type WaypointErrorCode = (typeof WaypointErrorCode)[keyof typeof WaypointErrorCode];

export class WaypointError extends MeshError {
  constructor(code: WaypointErrorCode, message: string, cause?: unknown) {
    super(code, message, { cause });
  }
}
