import { TokenUnreadableError } from '../errors.ts';

/** An unreadable istiod token fails the call as `ZTUNNEL_TOKEN_UNREADABLE` (`CallIdentity.tokenError`). */
export function tokenUnreadable(path: string, cause: unknown): Error {
  return new TokenUnreadableError(path, { cause });
}
