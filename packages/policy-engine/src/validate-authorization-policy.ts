/**
 * Validation of unknown input as a `security.istio.io/v1` AuthorizationPolicy. Every problem is
 * reported with its field path; nothing throws.
 */
import { PolicyValidationError } from './errors.ts';
import { parseCidr } from './ip-cidr.ts';
import { AuthorizationAction } from './policy-types.ts';
import type {
  AuthorizationPolicy,
  AuthorizationPolicySpec,
  PolicyCondition,
  PolicyOperation,
  PolicyRule,
  PolicySource,
  PolicyTargetReference,
} from './policy-types.ts';
import { parsePattern } from './string-match.ts';
import type { ValidationResult } from './validation-support.ts';
import {
  Issues,
  checkTypeMeta,
  isDnsLabel,
  isDnsSubdomain,
  isRecord,
  join,
  readMetadata,
  readSelector,
} from './validation-support.ts';

const ACTIONS: readonly string[] = Object.values(AuthorizationAction);
const MAX_TARGET_REFS = 16;

/** `when` keys with a fixed name. */
const PLAIN_WHEN_KEYS: readonly string[] = [
  'source.ip',
  'remote.ip',
  'source.namespace',
  'source.principal',
  'request.auth.principal',
  'request.auth.audiences',
  'request.auth.presenter',
  'destination.ip',
  'destination.port',
  'connection.sni',
];
/** `when` keys that carry a name in brackets. */
const BRACKET_WHEN_KEYS: readonly string[] = ['request.headers', 'request.auth.claims'];
const EXPERIMENTAL_PREFIX = 'experimental.envoy.filters.';

/** The L4 `when` keys ztunnel can enforce. */
export const L4_WHEN_KEYS: readonly string[] = [
  'source.ip',
  'source.namespace',
  'source.principal',
  'destination.ip',
  'destination.port',
];

function checkPattern(value: string): string | undefined {
  const p = parsePattern(value);
  return p.value.includes('*')
    ? '`*` is a wildcard only as the whole value, its first or its last character'
    : undefined;
}

function checkIpBlock(value: string): string | undefined {
  return parseCidr(value) === undefined
    ? 'must be an IP address or CIDR block, e.g. 10.1.0.0/16 or 2001:db8::/32'
    : undefined;
}

function checkPort(value: string): string | undefined {
  let ok = value.length > 0 && value.length <= 5;
  for (let i = 0; i < value.length && ok; i++) ok = value.charCodeAt(i) >= 48 && value.charCodeAt(i) <= 57;
  return ok && Number(value) <= 65535 ? undefined : 'must be a port number from 0 to 65535';
}

function checkServiceAccount(value: string): string | undefined {
  const parts = value.split('/');
  const bad =
    'must be `<namespace>/<serviceaccount>` or `<serviceaccount>`, without wildcards (dots are literal)';
  if (value.includes('*') || parts.length > 2) return bad;
  if (parts.length === 2 && !isDnsLabel(parts[0]!)) return `${bad}; the namespace is not a DNS label`;
  return isDnsSubdomain(parts[parts.length - 1]!)
    ? undefined
    : `${bad}; the service account is not a valid name`;
}

/** Path values: `*` wildcards at an end, or a template of whole `{*}` / `{**}` segments. */
function checkPath(value: string): string | undefined {
  if (!value.includes('{') && !value.includes('}')) return checkPattern(value);
  if (value.includes('*') && !value.includes('{*')) return 'a path template cannot also use `*` wildcards';
  if (!value.startsWith('/')) return 'a path template must start with /';
  const segments = value.split('/');
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i]!;
    if (!s.includes('{') && !s.includes('}') && !s.includes('*')) continue;
    if (s === '{*}') continue;
    if (s === '{**}' && i === segments.length - 1) continue;
    return s === '{**}'
      ? '`{**}` may only be the last segment of a path template'
      : 'path template operators must be whole segments: `{*}` or a final `{**}`';
  }
  return undefined;
}

function checkWhenKey(key: string): { ok: boolean; bracketed: string | undefined } {
  if (PLAIN_WHEN_KEYS.includes(key) || key.startsWith(EXPERIMENTAL_PREFIX)) {
    return { ok: true, bracketed: undefined };
  }
  for (const base of BRACKET_WHEN_KEYS) {
    if (key.startsWith(`${base}[`) && key.endsWith(']') && key.length > base.length + 2) {
      return { ok: true, bracketed: base };
    }
  }
  return { ok: false, bracketed: undefined };
}

function readSource(src: Record<string, unknown>, at: string, issues: Issues): PolicySource {
  issues.unknownKeys(
    src,
    [
      'principals',
      'notPrincipals',
      'requestPrincipals',
      'notRequestPrincipals',
      'namespaces',
      'notNamespaces',
      'serviceAccounts',
      'notServiceAccounts',
      'ipBlocks',
      'notIpBlocks',
      'remoteIpBlocks',
      'notRemoteIpBlocks',
    ],
    at,
  );
  const out: PolicySource = {};
  const set = (key: keyof PolicySource, check: (v: string) => string | undefined): void => {
    const list = issues.stringList(src, key, at, check);
    if (list !== undefined) out[key] = list;
  };
  set('principals', checkPattern);
  set('notPrincipals', checkPattern);
  set('requestPrincipals', checkPattern);
  set('notRequestPrincipals', checkPattern);
  set('namespaces', checkPattern);
  set('notNamespaces', checkPattern);
  set('serviceAccounts', checkServiceAccount);
  set('notServiceAccounts', checkServiceAccount);
  set('ipBlocks', checkIpBlock);
  set('notIpBlocks', checkIpBlock);
  set('remoteIpBlocks', checkIpBlock);
  set('notRemoteIpBlocks', checkIpBlock);
  const hasSa = src['serviceAccounts'] !== undefined || src['notServiceAccounts'] !== undefined;
  const hasIdentity = ['principals', 'notPrincipals', 'namespaces', 'notNamespaces'].some(
    k => src[k] !== undefined,
  );
  if (hasSa && hasIdentity) {
    issues.add(at, 'serviceAccounts cannot be combined with principals or namespaces in one source');
  }
  if (Object.keys(src).length === 0) issues.add(at, 'must not be empty: set at least one field');
  return out;
}

function readOperation(op: Record<string, unknown>, at: string, issues: Issues): PolicyOperation {
  issues.unknownKeys(
    op,
    ['hosts', 'notHosts', 'ports', 'notPorts', 'methods', 'notMethods', 'paths', 'notPaths'],
    at,
  );
  const out: PolicyOperation = {};
  const set = (key: keyof PolicyOperation, check: (v: string) => string | undefined): void => {
    const list = issues.stringList(op, key, at, check);
    if (list !== undefined) out[key] = list;
  };
  set('hosts', checkPattern);
  set('notHosts', checkPattern);
  set('ports', checkPort);
  set('notPorts', checkPort);
  set('methods', checkPattern);
  set('notMethods', checkPattern);
  set('paths', checkPath);
  set('notPaths', checkPath);
  if (Object.keys(op).length === 0) issues.add(at, 'must not be empty: set at least one field');
  return out;
}

function readCondition(c: Record<string, unknown>, at: string, issues: Issues): PolicyCondition | undefined {
  issues.unknownKeys(c, ['key', 'values', 'notValues'], at);
  const key = issues.string(c, 'key', at);
  if (c['key'] === undefined) issues.add(join(at, 'key'), 'is required');
  let check: (v: string) => string | undefined = checkPattern;
  if (key !== undefined) {
    const k = checkWhenKey(key);
    if (!k.ok) {
      issues.add(join(at, 'key'), `unknown attribute "${key}"; see Istio's authorization policy conditions`);
    }
    if (key === 'source.ip' || key === 'remote.ip' || key === 'destination.ip') check = checkIpBlock;
    else if (key === 'destination.port') check = checkPort;
  }
  const values = issues.stringList(c, 'values', at, check);
  const notValues = issues.stringList(c, 'notValues', at, check);
  if (c['values'] === undefined && c['notValues'] === undefined) {
    issues.add(at, 'must set values or notValues');
  }
  if (key === undefined) return undefined;
  const out: PolicyCondition = { key };
  if (values !== undefined) out.values = values;
  if (notValues !== undefined) out.notValues = notValues;
  return out;
}

function readRule(rule: unknown, at: string, issues: Issues): PolicyRule | undefined {
  if (!isRecord(rule)) {
    issues.add(at, 'must be an object');
    return undefined;
  }
  issues.unknownKeys(rule, ['from', 'to', 'when'], at);
  const out: PolicyRule = {};
  const from = issues.array(rule, 'from', at);
  if (from !== undefined) {
    out.from = [];
    from.forEach((f, i) => {
      const fa = `${join(at, 'from')}[${i}]`;
      if (!isRecord(f)) {
        issues.add(fa, 'must be an object');
        return;
      }
      issues.unknownKeys(f, ['source'], fa);
      const src = issues.object(f, 'source', fa);
      if (src === undefined) {
        issues.add(join(fa, 'source'), 'is required');
        return;
      }
      out.from?.push({ source: readSource(src, join(fa, 'source'), issues) });
    });
  }
  const to = issues.array(rule, 'to', at);
  if (to !== undefined) {
    out.to = [];
    to.forEach((t, i) => {
      const ta = `${join(at, 'to')}[${i}]`;
      if (!isRecord(t)) {
        issues.add(ta, 'must be an object');
        return;
      }
      issues.unknownKeys(t, ['operation'], ta);
      const op = issues.object(t, 'operation', ta);
      if (op === undefined) {
        issues.add(join(ta, 'operation'), 'is required');
        return;
      }
      out.to?.push({ operation: readOperation(op, join(ta, 'operation'), issues) });
    });
  }
  const when = issues.array(rule, 'when', at);
  if (when !== undefined) {
    out.when = [];
    when.forEach((w, i) => {
      const wa = `${join(at, 'when')}[${i}]`;
      if (!isRecord(w)) {
        issues.add(wa, 'must be an object');
        return;
      }
      const c = readCondition(w, wa, issues);
      if (c !== undefined) out.when?.push(c);
    });
  }
  return out;
}

function readTargetRef(ref: unknown, at: string, policyNamespace: string | undefined, issues: Issues) {
  if (!isRecord(ref)) {
    issues.add(at, 'must be an object');
    return undefined;
  }
  issues.unknownKeys(ref, ['group', 'kind', 'name', 'namespace'], at);
  const group = issues.string(ref, 'group', at, true);
  const kind = issues.string(ref, 'kind', at);
  const name = issues.string(ref, 'name', at);
  const namespace = issues.string(ref, 'namespace', at);
  if (ref['kind'] === undefined) issues.add(join(at, 'kind'), 'is required');
  if (ref['name'] === undefined) issues.add(join(at, 'name'), 'is required');
  if (namespace !== undefined && policyNamespace !== undefined && namespace !== policyNamespace) {
    issues.add(
      join(at, 'namespace'),
      'cross-namespace references are not supported: use the policy namespace',
    );
  }
  if (kind === undefined || name === undefined) return undefined;
  const out: PolicyTargetReference = { kind, name };
  if (group !== undefined) out.group = group;
  if (namespace !== undefined) out.namespace = namespace;
  return out;
}

/**
 * Validates unknown input (typically `@ambient-mesh/mesh-api`'s `AuthorizationPolicy`, the CRD shape, as
 * read from the API server) as an AuthorizationPolicy and returns the typed policy, or every error
 * with its field path (`spec.rules[0].from[1].source.principals[2]: ...`). Never throws.
 */
export function validateAuthorizationPolicy(input: unknown): ValidationResult<AuthorizationPolicy> {
  const issues = new Issues();
  if (!isRecord(input)) {
    issues.add('', 'an AuthorizationPolicy must be an object');
    return { ok: false, errors: issues.list };
  }
  issues.unknownKeys(input, ['apiVersion', 'kind', 'metadata', 'spec', 'status'], '');
  checkTypeMeta(input, 'AuthorizationPolicy', issues);
  const metadata = readMetadata(input, issues);
  const rawSpec = input['spec'] ?? {};
  const spec: AuthorizationPolicySpec = {};
  if (!isRecord(rawSpec)) {
    issues.add('spec', 'must be an object');
  } else {
    issues.unknownKeys(
      rawSpec,
      ['selector', 'targetRef', 'targetRefs', 'action', 'provider', 'rules'],
      'spec',
    );
    const selector = readSelector(rawSpec, 'spec', issues);
    if (selector !== undefined) spec.selector = selector;
    const ns = metadata?.namespace;
    if (rawSpec['targetRef'] !== undefined && rawSpec['targetRef'] !== null) {
      const ref = readTargetRef(rawSpec['targetRef'], 'spec.targetRef', ns, issues);
      if (ref !== undefined) spec.targetRef = ref;
    }
    const refs = issues.array(rawSpec, 'targetRefs', 'spec');
    if (refs !== undefined) {
      if (refs.length > MAX_TARGET_REFS)
        issues.add('spec.targetRefs', `must have at most ${MAX_TARGET_REFS} entries`);
      const list: PolicyTargetReference[] = [];
      refs.forEach((r, i) => {
        const ref = readTargetRef(r, `spec.targetRefs[${i}]`, ns, issues);
        if (ref !== undefined) list.push(ref);
      });
      if (list.length > 0) spec.targetRefs = list;
    }
    if (spec.targetRef !== undefined && refs !== undefined && refs.length > 0) {
      issues.add('spec.targetRefs', 'cannot be set together with targetRef');
    }
    if (selector !== undefined && (spec.targetRef !== undefined || (refs !== undefined && refs.length > 0))) {
      issues.add('spec.selector', 'cannot be set together with targetRef or targetRefs');
    }
    const action = issues.string(rawSpec, 'action', 'spec');
    if (action !== undefined) {
      if (ACTIONS.includes(action)) spec.action = action as AuthorizationAction;
      else issues.add('spec.action', `must be one of ${ACTIONS.join(', ')}`);
    }
    const provider = issues.object(rawSpec, 'provider', 'spec');
    if (provider !== undefined) {
      issues.unknownKeys(provider, ['name'], 'spec.provider');
      const name = issues.string(provider, 'name', 'spec.provider');
      if (name === undefined) issues.add('spec.provider.name', 'is required');
      else spec.provider = { name };
    }
    if (action === 'CUSTOM' && provider === undefined) {
      issues.add('spec.provider', 'is required with action CUSTOM: name the extension provider');
    }
    if (action !== 'CUSTOM' && provider !== undefined) {
      issues.add('spec.provider', 'is only allowed with action CUSTOM');
    }
    const rules = issues.array(rawSpec, 'rules', 'spec');
    if (rules !== undefined) {
      spec.rules = [];
      rules.forEach((r, i) => {
        const rule = readRule(r, `spec.rules[${i}]`, issues);
        if (rule !== undefined) spec.rules?.push(rule);
      });
    }
  }
  if (issues.list.length > 0 || metadata === undefined) return { ok: false, errors: issues.list };
  const value: AuthorizationPolicy = { metadata, spec };
  if (typeof input['apiVersion'] === 'string') value.apiVersion = input['apiVersion'];
  if (typeof input['kind'] === 'string') value.kind = input['kind'];
  return { ok: true, value };
}

/** Like {@link validateAuthorizationPolicy}, but throws a `PolicyValidationError` (code `POLICY_INVALID`). */
export function parseAuthorizationPolicy(input: unknown): AuthorizationPolicy {
  const r = validateAuthorizationPolicy(input);
  if (!r.ok) throw new PolicyValidationError('AuthorizationPolicy', r.errors);
  return r.value;
}
