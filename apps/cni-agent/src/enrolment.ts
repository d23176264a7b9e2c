/**
 * Which pods are captured, and with which rule options (docs/protocols.md#enrolment-labels, Istio 1.27's
 * default enablement selectors). Pure functions: no I/O.
 *
 * A pod is enrolled when
 *   (a) its label `istio.io/dataplane-mode` is `ambient`, or
 *   (b) its namespace's label is `ambient` and the pod's label is not `none`;
 * and it is never enrolled when it has a sidecar (annotation `sidecar.istio.io/status`), is
 * ztunnel itself (system namespace + `app=ztunnel`), uses the host network, or is terminal.
 */
import type { InpodRuleOptions } from '@ambient-mesh/nft-rules';
import type { NamespaceView, PodView } from './kube-types.ts';

export const Label = {
  dataplaneMode: 'istio.io/dataplane-mode',
  app: 'app',
} as const;

export const Annotation = {
  redirection: 'ambient.istio.io/redirection',
  sidecarStatus: 'sidecar.istio.io/status',
  bypassInboundCapture: 'ambient.istio.io/bypass-inbound-capture',
  dnsCapture: 'ambient.istio.io/dns-capture',
  rerouteVirtualInterfaces: 'istio.io/reroute-virtual-interfaces',
} as const;

export const DataplaneMode = { ambient: 'ambient', none: 'none' } as const;

/** Values of the `ambient.istio.io/redirection` annotation. */
export const RedirectionState = { enabled: 'enabled', pending: 'pending' } as const;
export type RedirectionState = (typeof RedirectionState)[keyof typeof RedirectionState];

/** Why a pod is or is not enrolled (for logs and tests). */
export const EnrolmentReason = {
  podLabel: 'pod-label',
  namespaceLabel: 'namespace-label',
  podOptOut: 'pod-opt-out',
  notSelected: 'not-selected',
  sidecar: 'sidecar',
  ztunnel: 'ztunnel',
  hostNetwork: 'host-network',
  terminal: 'terminal',
} as const;
export type EnrolmentReason = (typeof EnrolmentReason)[keyof typeof EnrolmentReason];

export interface EnrolmentDecision {
  readonly enrol: boolean;
  readonly reason: EnrolmentReason;
}

export interface EnrolmentContext {
  readonly systemNamespace: string;
}

/** Decides whether `pod` belongs in ambient. `namespace` is `undefined` when it is not known (yet). */
export function decideEnrolment(
  pod: PodView,
  namespace: NamespaceView | undefined,
  context: EnrolmentContext,
): EnrolmentDecision {
  const no = (reason: EnrolmentReason): EnrolmentDecision => ({ enrol: false, reason });
  if (pod.phase === 'Succeeded' || pod.phase === 'Failed') return no(EnrolmentReason.terminal);
  if (pod.hostNetwork) return no(EnrolmentReason.hostNetwork);
  if (Annotation.sidecarStatus in pod.annotations) return no(EnrolmentReason.sidecar);
  if (pod.namespace === context.systemNamespace && pod.labels[Label.app] === 'ztunnel') {
    return no(EnrolmentReason.ztunnel);
  }
  const podMode = pod.labels[Label.dataplaneMode];
  if (podMode === DataplaneMode.ambient) return { enrol: true, reason: EnrolmentReason.podLabel };
  if (podMode === DataplaneMode.none) return no(EnrolmentReason.podOptOut);
  if (namespace?.labels[Label.dataplaneMode] === DataplaneMode.ambient) {
    return { enrol: true, reason: EnrolmentReason.namespaceLabel };
  }
  return no(EnrolmentReason.notSelected);
}

export interface GlobalRuleSettings {
  readonly dnsCapture: boolean;
  readonly ipv6: boolean;
  readonly probeSnatV4: string;
  readonly probeSnatV6: string;
}

/** Parses a boolean annotation the way Go's strconv.ParseBool does; anything else is `undefined`. */
export function parseBoolAnnotation(value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(value)) return false;
  return undefined;
}

/** The in-pod rule options for `pod`: global settings overridden by its annotations. */
export function ruleOptionsFor(pod: PodView, settings: GlobalRuleSettings): InpodRuleOptions {
  const dns = parseBoolAnnotation(pod.annotations[Annotation.dnsCapture]) ?? settings.dnsCapture;
  const bypass = parseBoolAnnotation(pod.annotations[Annotation.bypassInboundCapture]) ?? false;
  const reroute = (pod.annotations[Annotation.rerouteVirtualInterfaces] ?? '')
    .split(',')
    .map(s => s.trim())
    .filter(s => s !== '');
  return {
    dnsCapture: dns,
    bypassInboundCapture: bypass,
    rerouteVirtualInterfaces: reroute,
    ipv4: true,
    ipv6: settings.ipv6,
    probeSnatV4: settings.probeSnatV4,
    probeSnatV6: settings.probeSnatV6,
  };
}
