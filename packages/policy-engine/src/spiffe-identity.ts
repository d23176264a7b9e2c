/**
 * The peer identity a policy sees: a SPIFFE ID `spiffe://<trust-domain>/ns/<ns>/sa/<sa>`,
 * parsed strictly as ztunnel does (exactly five `/`-separated parts after the scheme).
 */

/** A parsed SPIFFE workload identity. */
export interface SpiffeIdentity {
  readonly trustDomain: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  /** The ID without `spiffe://`: what policy `principals` are compared with. */
  readonly principal: string;
}

const SCHEME = 'spiffe://';

/** True for characters that never belong in an identity: ASCII controls (NUL included), space, DEL. */
function hasForbiddenChar(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f || c > 0x7e) return true;
  }
  return false;
}

/**
 * Parses a SPIFFE ID. Returns undefined for anything else, including IDs with an embedded NUL
 * byte or other control characters (CVE-2025-66220): such a SAN must never match a policy.
 */
export function parseSpiffeIdentity(id: string): SpiffeIdentity | undefined {
  if (!id.startsWith(SCHEME) || hasForbiddenChar(id)) return undefined;
  const principal = id.slice(SCHEME.length);
  const parts = principal.split('/');
  if (parts.length !== 5 || parts[1] !== 'ns' || parts[3] !== 'sa') return undefined;
  const [trustDomain, , namespace, , serviceAccount] = parts as [string, string, string, string, string];
  if (trustDomain === '' || namespace === '' || serviceAccount === '') return undefined;
  return { trustDomain, namespace, serviceAccount, principal };
}
