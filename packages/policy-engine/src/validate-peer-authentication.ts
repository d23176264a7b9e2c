/**
 * Validation of unknown input as a `security.istio.io/v1` PeerAuthentication. Every problem is
 * reported with its field path; nothing throws.
 */
import { PolicyValidationError } from './errors.ts';
import { MtlsMode } from './policy-types.ts';
import type { MutualTls, PeerAuthentication, PeerAuthenticationSpec } from './policy-types.ts';
import type { ValidationResult } from './validation-support.ts';
import { Issues, checkTypeMeta, isRecord, join, readMetadata, readSelector } from './validation-support.ts';

const MODES: readonly string[] = Object.values(MtlsMode);

function readMtls(v: unknown, at: string, issues: Issues): MutualTls | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isRecord(v)) {
    issues.add(at, 'must be an object');
    return undefined;
  }
  issues.unknownKeys(v, ['mode'], at);
  const mode = issues.string(v, 'mode', at);
  if (mode === undefined) return {};
  if (!MODES.includes(mode)) {
    issues.add(join(at, 'mode'), `must be one of ${MODES.join(', ')}`);
    return undefined;
  }
  return { mode: mode as MtlsMode };
}

function isPortKey(key: string): boolean {
  if (key.length === 0 || key.length > 5 || key.startsWith('0')) return false;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return Number(key) <= 65535;
}

/**
 * Validates unknown input (typically `@ambient-mesh/mesh-api`'s `PeerAuthentication`, the CRD shape, as
 * read from the API server) as a PeerAuthentication and returns the typed policy, or every error
 * with its field path. Never throws.
 */
export function validatePeerAuthentication(input: unknown): ValidationResult<PeerAuthentication> {
  const issues = new Issues();
  if (!isRecord(input)) {
    issues.add('', 'a PeerAuthentication must be an object');
    return { ok: false, errors: issues.list };
  }
  issues.unknownKeys(input, ['apiVersion', 'kind', 'metadata', 'spec', 'status'], '');
  checkTypeMeta(input, 'PeerAuthentication', issues);
  const metadata = readMetadata(input, issues);
  const rawSpec = input['spec'] ?? {};
  const spec: PeerAuthenticationSpec = {};
  if (!isRecord(rawSpec)) {
    issues.add('spec', 'must be an object');
  } else {
    issues.unknownKeys(rawSpec, ['selector', 'mtls', 'portLevelMtls'], 'spec');
    const selector = readSelector(rawSpec, 'spec', issues);
    if (selector !== undefined) spec.selector = selector;
    const mtls = readMtls(rawSpec['mtls'], 'spec.mtls', issues);
    if (mtls !== undefined) spec.mtls = mtls;
    const ports = issues.object(rawSpec, 'portLevelMtls', 'spec');
    if (ports !== undefined) {
      const out: Record<string, MutualTls> = {};
      for (const [port, value] of Object.entries(ports)) {
        const at = join('spec.portLevelMtls', port);
        if (!isPortKey(port)) {
          issues.add(at, 'the key must be a port number from 1 to 65535');
          continue;
        }
        const m = readMtls(value, at, issues);
        if (m === undefined) issues.add(at, 'must set a mode');
        else out[port] = m;
      }
      const hasLabels = Object.keys(selector?.matchLabels ?? {}).length > 0;
      if (Object.keys(ports).length > 0 && !hasLabels) {
        issues.add(
          'spec.portLevelMtls',
          'requires a selector with matchLabels: port-level mTLS applies to selected workloads only',
        );
      }
      if (Object.keys(out).length > 0) spec.portLevelMtls = out;
    }
  }
  if (issues.list.length > 0 || metadata === undefined) return { ok: false, errors: issues.list };
  const value: PeerAuthentication = { metadata, spec };
  if (typeof input['apiVersion'] === 'string') value.apiVersion = input['apiVersion'];
  if (typeof input['kind'] === 'string') value.kind = input['kind'];
  return { ok: true, value };
}

/** Like {@link validatePeerAuthentication}, but throws a `PolicyValidationError` (code `POLICY_INVALID`). */
export function parsePeerAuthentication(input: unknown): PeerAuthentication {
  const r = validatePeerAuthentication(input);
  if (!r.ok) throw new PolicyValidationError('PeerAuthentication', r.errors);
  return r.value;
}
