/**
 * Per-listener status of an ingress Gateway (class `istio`), as Istio 1.27 reports it
 * (`gateway/conversion.go` `buildListener`, `gatewaycommon` `GenerateSupportedKinds`):
 *
 * - `supportedKinds`: the route kinds of the protocol, narrowed by `allowedRoutes.kinds`; a kind
 *   the protocol does not take gives `ResolvedRefs=False` `InvalidRouteKinds`.
 * - `tls.certificateRefs` (HTTPS, and TLS in `Terminate` mode): a core `Secret` holding a
 *   certificate and key, in the Gateway's namespace or allowed by a ReferenceGrant. Otherwise
 *   `ResolvedRefs=False` `InvalidCertificateRef` (not a Secret, missing, malformed) or
 *   `RefNotPermitted` (no grant), and `Programmed=False` `Invalid`.
 * - A protocol istiod does not serve: `Accepted=False` `UnsupportedProtocol`.
 * - Two listeners on one port with different protocols, or the same protocol and hostname:
 *   `Conflicted=True` (`ProtocolConflict` / `HostnameConflict`), `Accepted=False`.
 *
 * Pure: the cluster (Secrets, ReferenceGrants) is a `ListenerRefs`.
 */
import { portSharable } from '../waypoint/ingress-gateway.ts';
import type { GatewayListener, GatewayModel, GatewayStatusCondition, RouteGroupKind } from './model.ts';

const ROUTE_GROUP = 'gateway.networking.k8s.io';
const OK_MESSAGE = 'No errors found';

/** The protocols a listener of ours may use (HBONE: waypoints). */
const SERVED_PROTOCOLS: ReadonlySet<string> = new Set(['HTTP', 'HTTPS', 'TLS', 'TCP', 'HBONE']);

/** What listener status needs of the cluster. */
export interface ListenerRefs {
  /**
   * The Secret `namespace/name`: undefined when missing, else whether it holds a usable
   * certificate and key, and whether it holds a CA certificate (`ca.crt`, for MUTUAL).
   */
  secret(namespace: string, name: string): { readonly valid: boolean; readonly ca?: boolean } | undefined;
  /** A ReferenceGrant in `toNamespace` lets Gateways of `fromNamespace` refer to that Secret. */
  secretGrantAllows(fromNamespace: string, toNamespace: string, name: string): boolean;
}

/** The route kinds a listener's protocol takes (upstream's `GenerateSupportedKinds`). */
export function protocolKinds(protocol: string): RouteGroupKind[] {
  switch (protocol) {
    case 'HTTP':
    case 'HTTPS':
      return [
        { group: ROUTE_GROUP, kind: 'HTTPRoute' },
        { group: ROUTE_GROUP, kind: 'GRPCRoute' },
      ];
    case 'TCP':
      return [{ group: ROUTE_GROUP, kind: 'TCPRoute' }];
    case 'TLS':
      return [{ group: ROUTE_GROUP, kind: 'TLSRoute' }];
    default:
      return [];
  }
}

/** The kinds a listener takes and whether `allowedRoutes.kinds` named one it cannot take. */
export function listenerKinds(l: GatewayListener): { kinds: RouteGroupKind[]; invalid: RouteGroupKind[] } {
  const byProtocol = protocolKinds(l.protocol);
  if (l.allowedKinds === undefined) return { kinds: byProtocol, invalid: [] };
  const kinds: RouteGroupKind[] = [];
  const invalid: RouteGroupKind[] = [];
  for (const k of l.allowedKinds) {
    const ok = byProtocol.some(p => p.group === k.group && p.kind === k.kind);
    if (!ok) invalid.push(k);
    else if (!kinds.some(x => x.group === k.group && x.kind === k.kind)) kinds.push(k);
  }
  return { kinds, invalid };
}

interface Problem {
  readonly reason: string;
  readonly message: string;
}

/** The first problem of the listener's certificate references, if any. */
export function certificateProblem(
  gw: Pick<GatewayModel, 'namespace'>,
  l: GatewayListener,
  refs: ListenerRefs,
): Problem | undefined {
  const terminates =
    l.protocol === 'HTTPS' || (l.protocol === 'TLS' && (l.tls?.mode ?? 'Terminate') === 'Terminate');
  if (!terminates) return undefined;
  const certs = l.tls?.certificateRefs ?? [];
  if (certs.length === 0)
    return {
      reason: 'InvalidCertificateRef',
      message: 'listener terminates TLS but names no certificateRefs',
    };
  for (const ref of certs) {
    const where = `${ref.namespace}/${ref.name}`;
    if ((ref.group !== '' && ref.group !== 'core') || ref.kind !== 'Secret')
      return {
        reason: 'InvalidCertificateRef',
        message: `invalid certificate reference ${ref.group === '' ? 'core' : ref.group}/${ref.kind} ${where}: only Secret is supported`,
      };
    if (ref.namespace !== gw.namespace && !refs.secretGrantAllows(gw.namespace, ref.namespace, ref.name))
      return {
        reason: 'RefNotPermitted',
        message: `certificate reference Secret ${where} not permitted by any ReferenceGrant`,
      };
    const secret = refs.secret(ref.namespace, ref.name);
    if (secret === undefined)
      return {
        reason: 'InvalidCertificateRef',
        message: `invalid certificate reference ${where}, secret not found`,
      };
    if (!secret.valid)
      return {
        reason: 'InvalidCertificateRef',
        message: `invalid certificate reference ${where}: tls.crt and tls.key must hold a PEM certificate and its private key`,
      };
    if (l.tls?.mutual === true && ref === certs[0] && secret.ca !== true)
      return {
        reason: 'InvalidCertificateRef',
        message: `invalid certificate reference ${where}: MUTUAL needs ca.crt to hold the PEM CA certificate of the clients`,
      };
  }
  return undefined;
}

/** Listeners in conflict with another listener of the same Gateway (by name). */
export function listenerConflicts(listeners: readonly GatewayListener[]): Map<string, Problem> {
  const out = new Map<string, Problem>();
  for (const a of listeners)
    for (const b of listeners) {
      if (a === b || a.port !== b.port) continue;
      if (!portSharable(a.protocol, b.protocol))
        out.set(a.name, {
          reason: 'ProtocolConflict',
          message: `listener ${a.name} and listener ${b.name} use port ${a.port} with different protocols`,
        });
      else if ((a.hostname ?? '') === (b.hostname ?? '') && !out.has(a.name))
        out.set(a.name, {
          reason: 'HostnameConflict',
          message: `listener ${a.name} and listener ${b.name} use port ${a.port} and hostname "${a.hostname ?? '*'}"`,
        });
    }
  return out;
}

export interface ListenerEvaluation {
  readonly supportedKinds: RouteGroupKind[];
  readonly conditions: GatewayStatusCondition[];
}

/** Every condition and the supported kinds of one listener. */
export function evaluateListener(
  gw: Pick<GatewayModel, 'namespace' | 'generation'>,
  l: GatewayListener,
  refs: ListenerRefs,
  conflict: Problem | undefined,
): ListenerEvaluation {
  const cond = (
    type: string,
    status: 'True' | 'False',
    reason: string,
    message = OK_MESSAGE,
  ): GatewayStatusCondition => ({
    type,
    status,
    reason,
    message,
    observedGeneration: gw.generation,
  });
  const { kinds, invalid } = listenerKinds(l);
  if (!SERVED_PROTOCOLS.has(l.protocol)) {
    const message = `protocol ${l.protocol} is not supported`;
    return {
      supportedKinds: kinds,
      conditions: [
        cond('Accepted', 'False', 'UnsupportedProtocol', message),
        cond('Conflicted', 'False', 'NoConflicts'),
        cond('Programmed', 'False', 'Invalid', message),
        cond('ResolvedRefs', 'True', 'ResolvedRefs'),
      ],
    };
  }
  const cert = certificateProblem(gw, l, refs);
  const kindProblem: Problem | undefined =
    invalid.length === 0
      ? undefined
      : {
          reason: 'InvalidRouteKinds',
          message: `Invalid route kinds: ${invalid.map(k => `${k.group}/${k.kind}`).join(', ')}`,
        };
  const refProblem = cert ?? kindProblem;
  return {
    supportedKinds: kinds,
    conditions: [
      conflict === undefined
        ? cond('Accepted', 'True', 'Accepted')
        : cond('Accepted', 'False', conflict.reason, conflict.message),
      conflict === undefined
        ? cond('Conflicted', 'False', 'NoConflicts')
        : cond('Conflicted', 'True', conflict.reason, conflict.message),
      conflict !== undefined
        ? cond('Programmed', 'False', 'Invalid', conflict.message)
        : cert !== undefined
          ? cond('Programmed', 'False', 'Invalid', 'Bad TLS configuration')
          : cond('Programmed', 'True', 'Programmed'),
      refProblem === undefined
        ? cond('ResolvedRefs', 'True', 'ResolvedRefs')
        : cond('ResolvedRefs', 'False', refProblem.reason, refProblem.message),
    ],
  };
}
