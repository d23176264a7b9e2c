/** Type URLs of the xDS resources istiod serves and ztunnel subscribes to (delta ADS). */
import type { MessageTypeName } from './codec.ts';

export const TYPE_URL_PREFIX = 'type.googleapis.com/';

export const TypeUrl = {
  /** `istio.workload.Address`: a Workload or a Service. ztunnel subscribes to it. */
  ADDRESS: 'type.googleapis.com/istio.workload.Address',
  /** `istio.security.Authorization`: an L4 policy. ztunnel subscribes to it. */
  AUTHORIZATION: 'type.googleapis.com/istio.security.Authorization',
  /** `istio.workload.Workload`: bare workloads. istiod registers it; ztunnel does not use it. */
  WORKLOAD: 'type.googleapis.com/istio.workload.Workload',
} as const;
export type TypeUrl = (typeof TypeUrl)[keyof typeof TypeUrl];

/** The `type.googleapis.com/<full name>` URL of any message this package defines. */
export type MessageTypeUrl<N extends MessageTypeName = MessageTypeName> = `type.googleapis.com/${N}`;

/** `istio.workload.Address` → `type.googleapis.com/istio.workload.Address`. */
export function typeUrlOf<N extends MessageTypeName>(typeName: N): MessageTypeUrl<N> {
  return `${TYPE_URL_PREFIX}${typeName}`;
}

/** The message name a type URL refers to: the text after its last `/`. */
export function typeNameOfUrl(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
}
