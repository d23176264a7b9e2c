/**
 * Typed Kubernetes API errors and the helpers that classify them.
 *
 * Every failure this library raises is a `KubeError` with a stable code. An apiserver answer is a
 * `KubeApiError` (HTTP status, the Status `reason`, the operation) whose message ends with what
 * to check; no answer at all is a `KubeUnreachableError`. The `is*` helpers also understand
 * `@kubernetes/client-node`'s `ApiException`, so code that still calls the generated API clients
 * classifies its errors the same way.
 */
import { MeshError, errorMessage, type MeshErrorOptions } from '@ambient-mesh/errors';

export const KubeErrorCode = {
  /** 404: the object, its namespace or its API (a CRD not installed) does not exist. */
  NotFound: 'KUBE_NOT_FOUND',
  /** 409: AlreadyExists on create, or a resourceVersion / field-manager conflict. */
  Conflict: 'KUBE_CONFLICT',
  /** 403: RBAC denies the verb on the resource to the identity in use. */
  Forbidden: 'KUBE_FORBIDDEN',
  /** 401: the credentials of the kubeconfig were refused. */
  Unauthorized: 'KUBE_UNAUTHORIZED',
  /** 410: a watch or list asked for a resourceVersion the apiserver no longer has. */
  Gone: 'KUBE_GONE',
  /** 422 / 400: the object was refused by validation or admission. */
  Invalid: 'KUBE_INVALID',
  /** 429: the apiserver throttled the client. */
  Throttled: 'KUBE_THROTTLED',
  /** 5xx: the apiserver (or etcd, or a webhook) failed. */
  ServerError: 'KUBE_SERVER_ERROR',
  /** Any other non-2xx answer. */
  ApiError: 'KUBE_API_ERROR',
  /** No answer: connection refused or reset, TLS failure, DNS, timeout. */
  Unreachable: 'KUBE_UNREACHABLE',
  /** The kubeconfig has no usable cluster or user. */
  Config: 'KUBE_CONFIG',
  /** An informer was stopped before its first list completed. */
  Stopped: 'KUBE_INFORMER_STOPPED',
  /** A pod port-forward failed on the pod side (nothing listens on the port, the stream broke). */
  PortForward: 'KUBE_PORT_FORWARD',
  /** No answer through a pod port-forward in time. */
  PortForwardTimeout: 'KUBE_PORT_FORWARD_TIMEOUT',
  /** A GET through a pod port-forward was answered with a status other than 200. */
  PortForwardStatus: 'KUBE_PORT_FORWARD_STATUS',
} as const;
export type KubeErrorCode = (typeof KubeErrorCode)[keyof typeof KubeErrorCode];

/** The base of every error of this package; `code` is one of {@link KubeErrorCode}. */
export class KubeError extends MeshError {
  declare readonly code: KubeErrorCode;

  constructor(code: KubeErrorCode, message: string, options: MeshErrorOptions = {}) {
    super(code, message, options);
  }
}

/** The apiserver's `Status` object, as far as this package reads it. */
export interface KubeStatus {
  readonly reason?: string;
  readonly message?: string;
  readonly code?: number;
  readonly details?: unknown;
}

function codeForStatus(status: number): KubeErrorCode {
  if (status === 404) return KubeErrorCode.NotFound;
  if (status === 409) return KubeErrorCode.Conflict;
  if (status === 403) return KubeErrorCode.Forbidden;
  if (status === 401) return KubeErrorCode.Unauthorized;
  if (status === 410) return KubeErrorCode.Gone;
  if (status === 422 || status === 400) return KubeErrorCode.Invalid;
  if (status === 429) return KubeErrorCode.Throttled;
  if (status >= 500) return KubeErrorCode.ServerError;
  return KubeErrorCode.ApiError;
}

/** What to check, per status: the end of every `KubeApiError` message. */
function hintFor(status: number, reason: string): string {
  switch (codeForStatus(status)) {
    case KubeErrorCode.NotFound:
      return 'check the name and namespace, and that the API (CRD) serving this resource is installed';
    case KubeErrorCode.Conflict:
      return reason === 'AlreadyExists'
        ? 'the object exists already; read it, or use apply instead of create'
        : 'the object changed meanwhile (resourceVersion) or another field manager owns the field; read it again and retry';
    case KubeErrorCode.Forbidden:
      return "check the RBAC rules (Role/ClusterRole and their bindings) granting this verb on this resource to the kubeconfig's identity";
    case KubeErrorCode.Unauthorized:
      return "check the kubeconfig's credentials (token, client certificate) and that they have not expired";
    case KubeErrorCode.Gone:
      return 'the resourceVersion is too old (compacted); list again and watch from the new resourceVersion';
    case KubeErrorCode.Invalid:
      return 'check the object against its schema and any admission webhooks';
    case KubeErrorCode.Throttled:
      return 'the apiserver is throttling this client; retry later with back-off';
    case KubeErrorCode.ServerError:
      return 'check the apiserver (and etcd, admission webhooks) logs; retrying may succeed';
    default:
      return 'check the apiserver logs for this request';
  }
}

/** A non-2xx answer of the apiserver. */
export class KubeApiError extends KubeError {
  /** The HTTP status (404, 409, ...). */
  readonly status: number;
  /** The Status `reason` (`NotFound`, `AlreadyExists`, `Conflict`, `Expired`, ...), or `Unknown`. */
  readonly reason: string;
  /** The request, e.g. `GET /api/v1/namespaces/x/pods/y`. */
  readonly operation: string;
  /** The apiserver's own message (Status `message`), without the hint. */
  readonly detail: string;

  constructor(
    status: number,
    reason: string,
    operation: string,
    detail: string,
    options: MeshErrorOptions = {},
  ) {
    super(
      codeForStatus(status),
      `${operation}: HTTP ${status} ${reason}: ${detail}; ${hintFor(status, reason)}`,
      options,
    );
    this.status = status;
    this.reason = reason;
    this.operation = operation;
    this.detail = detail;
  }

  /** Builds the error from a response body (a `Status` object when the apiserver wrote one). */
  static fromResponse(status: number, body: string, operation: string): KubeApiError {
    let parsed: KubeStatus | undefined;
    try {
      const v = JSON.parse(body) as unknown;
      if (typeof v === 'object' && v !== null) parsed = v;
    } catch {
      parsed = undefined;
    }
    const reason = parsed?.reason ?? 'Unknown';
    const detail = parsed?.message ?? (body.trim().slice(0, 200) || 'no body');
    return new KubeApiError(status, reason, operation, detail);
  }
}

/** The apiserver did not answer. */
export class KubeUnreachableError extends KubeError {
  readonly operation: string;

  constructor(operation: string, cause: unknown) {
    super(
      KubeErrorCode.Unreachable,
      `${operation}: no answer from the apiserver (${errorMessage(cause)}); check the server address and CA of the kubeconfig and that the apiserver is running`,
      { cause },
    );
    this.operation = operation;
  }
}

/** The HTTP status of a failed call: ours, or `ApiException.code` of client-node; undefined when none. */
export function httpStatusOf(err: unknown): number | undefined {
  if (err instanceof KubeApiError) return err.status;
  if (typeof err !== 'object' || err === null) return undefined;
  const { code, statusCode } = err as { code?: unknown; statusCode?: unknown };
  const status = typeof code === 'number' ? code : statusCode;
  return typeof status === 'number' && status >= 100 && status < 600 ? status : undefined;
}

export function isNotFound(err: unknown): boolean {
  return httpStatusOf(err) === 404;
}

export function isConflict(err: unknown): boolean {
  return httpStatusOf(err) === 409;
}

/** 409 with reason `AlreadyExists` (a create of an existing object). */
export function isAlreadyExists(err: unknown): boolean {
  if (err instanceof KubeApiError) return err.status === 409 && err.reason === 'AlreadyExists';
  return isConflict(err) && errorMessage(err).includes('AlreadyExists');
}

export function isForbidden(err: unknown): boolean {
  return httpStatusOf(err) === 403;
}

export function isGone(err: unknown): boolean {
  return httpStatusOf(err) === 410;
}

export function isInvalid(err: unknown): boolean {
  const s = httpStatusOf(err);
  return s === 422 || s === 400;
}

/**
 * Worth another try: no answer (connection refused or reset, `fetch failed`), a conflict,
 * throttling, or a server error. Other 4xx answers are verdicts and stay refused.
 */
export function isTransient(err: unknown): boolean {
  const status = httpStatusOf(err);
  return status === undefined || status === 409 || status === 429 || status >= 500;
}
