/**
 * Typed errors of the waypoint. Codes are prefixed `WAYPOINT_` and are stable; messages say what
 * to check.
 */
import { MeshError } from '@ambient-mesh/errors';
import type { MeshErrorOptions } from '@ambient-mesh/errors';

export const WaypointErrorCode = {
  ConfigInvalid: 'WAYPOINT_CONFIG_INVALID',
  BindFailed: 'WAYPOINT_BIND_FAILED',
  CertificatesUnreadable: 'WAYPOINT_CERTIFICATES_UNREADABLE',
  TokenUnreadable: 'WAYPOINT_TOKEN_UNREADABLE',
  CertificateRequestFailed: 'WAYPOINT_CERTIFICATE_REQUEST_FAILED',
} as const;
export type WaypointErrorCode = (typeof WaypointErrorCode)[keyof typeof WaypointErrorCode];

export { ConfigError } from '@ambient-mesh/runtime';

/** A port could not be bound. */
export class BindError extends MeshError {
  constructor(name: string, address: string, options?: MeshErrorOptions) {
    super(
      WaypointErrorCode.BindFailed,
      `cannot listen for ${name} on ${address}: is the port taken?`,
      options,
    );
  }
}

/** The mounted workload certificate files are missing or unreadable. */
export class CertificatesUnreadableError extends MeshError {
  constructor(dir: string, options?: MeshErrorOptions) {
    super(
      WaypointErrorCode.CertificatesUnreadable,
      `cannot read the workload certificate from ${dir} (cert-chain.pem, key.pem, root-cert.pem); check WAYPOINT_CERT_DIR and the volume mount`,
      options,
    );
  }
}

/** The service account token for istiod could not be read. */
export class TokenUnreadableError extends MeshError {
  constructor(path: string, options?: MeshErrorOptions) {
    super(
      WaypointErrorCode.TokenUnreadable,
      `cannot read the istiod token at ${path}; check the projected token volume`,
      options,
    );
  }
}

/** istiod's CA did not issue the waypoint's certificate. */
export class CertificateRequestError extends MeshError {
  constructor(identity: string, reason: string, options?: MeshErrorOptions) {
    super(
      WaypointErrorCode.CertificateRequestFailed,
      `istiod's CA did not issue a certificate for ${identity}: ${reason}; check CA_ADDR, the projected token (audience istio-ca) and the pod's service account`,
      options,
    );
  }
}
