/**
 * Bearer-token authentication through the Kubernetes TokenReview API, injected as a function so
 * tests (and other clusters) can fake it. Shared by the xDS server and the CA.
 */
import { errorMessage } from '@ambient-mesh/errors';
import { AuthenticationError } from '../errors.ts';

export const POD_NAME_EXTRA = 'authentication.kubernetes.io/pod-name';
export const POD_UID_EXTRA = 'authentication.kubernetes.io/pod-uid';

/** The parts of a TokenReview status istiod reads. */
export interface TokenReviewStatus {
  readonly authenticated: boolean;
  /** `system:serviceaccount:<namespace>:<name>` for service account tokens. */
  readonly username?: string;
  readonly extra?: Readonly<Record<string, readonly string[]>>;
  /** Audiences the token was validated for; a subset of the requested ones. */
  readonly audiences?: readonly string[];
  readonly error?: string;
}

/** Performs a TokenReview for `token` with the given audiences. May reject on transport errors. */
export type TokenReviewer = (token: string, audiences: readonly string[]) => Promise<TokenReviewStatus>;

export interface CallerIdentity {
  readonly namespace: string;
  readonly serviceAccount: string;
  /** Set only for pod-bound tokens. */
  readonly podName?: string;
  readonly podUid?: string;
}

export type AuthResult = { ok: true; identity: CallerIdentity } | { ok: false; error: AuthenticationError };

const SA_PREFIX = 'system:serviceaccount:';

/** Extracts the token from an `authorization: Bearer <token>` header value. */
export function bearerToken(header: unknown): string | undefined {
  if (typeof header !== 'string' || !header.startsWith('Bearer ')) return undefined;
  const token = header.slice('Bearer '.length).trim();
  return token === '' ? undefined : token;
}

/** Reviews a bearer token and maps it to a service account (and pod, when bound). Never throws. */
export async function authenticateBearer(
  header: unknown,
  reviewer: TokenReviewer,
  audiences: readonly string[],
): Promise<AuthResult> {
  const fail = (detail: string, cause?: unknown): AuthResult => ({
    ok: false,
    error: new AuthenticationError(detail, cause),
  });
  const token = bearerToken(header);
  if (token === undefined) return fail('no "authorization: Bearer <token>" metadata');
  let status: TokenReviewStatus;
  try {
    status = await reviewer(token, audiences);
  } catch (err) {
    return fail(`TokenReview request failed: ${errorMessage(err)}`, err);
  }
  if (!status.authenticated)
    return fail(`token rejected by TokenReview${status.error ? `: ${status.error}` : ''}`);
  if (status.audiences !== undefined && !status.audiences.some(a => audiences.includes(a))) {
    return fail(
      `token audiences ${JSON.stringify(status.audiences)} do not include ${JSON.stringify(audiences)}`,
    );
  }
  const username = status.username ?? '';
  const parts = username.startsWith(SA_PREFIX) ? username.slice(SA_PREFIX.length).split(':') : [];
  if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
    return fail(`token user ${JSON.stringify(username)} is not a service account`);
  }
  const podName = status.extra?.[POD_NAME_EXTRA]?.[0];
  const podUid = status.extra?.[POD_UID_EXTRA]?.[0];
  return {
    ok: true,
    identity: {
      namespace: parts[0]!,
      serviceAccount: parts[1]!,
      ...(podName !== undefined && podName !== '' ? { podName } : {}),
      ...(podUid !== undefined && podUid !== '' ? { podUid } : {}),
    },
  };
}
