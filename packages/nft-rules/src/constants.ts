/**
 * Ports, marks and names of ambient in-pod redirection (Istio 1.27; nftables names as in 1.28).
 * Facts from docs/protocols.md#constants and docs/protocols.md#redirection. The ports are the mesh's (`@ambient-mesh/mesh-api`).
 */
import { Port as MeshPort } from '@ambient-mesh/mesh-api';

/** ztunnel's in-pod listeners, under the names this package has always exported. */
export const Port = {
  outbound: MeshPort.ztunnelOutbound,
  inboundPlaintext: MeshPort.ztunnelInboundPlaintext,
  hbone: MeshPort.hbone,
  dns: MeshPort.dns,
  dnsUpstream: MeshPort.dnsUpstream,
} as const;

/** Packet and connection marks (all compared under {@link MARK_MASK}). */
export const Mark = {
  /** SO_MARK on every ztunnel socket in the pod: never redirect it. */
  ztunnel: 0x539,
  /** Connmark of connections from ztunnel; replies are routed back through table 100. */
  connection: 0x111,
} as const;

export const MARK_MASK = 0xfff;

/** The policy-routing entry that returns replies of spoofed inbound connections to ztunnel. */
export const PolicyRoute = {
  table: 100,
  rulePriority: 32764,
} as const;

/** nftables table names, all in family `inet`. */
export const TableName = {
  nat: 'istio-ambient-nat',
  mangle: 'istio-ambient-mangle',
  raw: 'istio-ambient-raw',
} as const;
export type TableName = (typeof TableName)[keyof typeof TableName];

/** Regular chains the base chains jump to. */
export const ChainName = {
  prerouting: 'istio-prerouting',
  output: 'istio-output',
  postrouting: 'istio-postrouting',
} as const;

/** Host sets of pod IPs whose kubelet probes are SNATed (the CNI agent fills them). */
export const ProbeSet = {
  v4: 'istio-inpod-probes-v4',
  v6: 'istio-inpod-probes-v6',
} as const;

/** Default source addresses kubelet probes are SNATed to. */
export const DEFAULT_PROBE_SNAT_V4 = '169.254.7.127';
export const DEFAULT_PROBE_SNAT_V6 = 'fd16:9254:7127:1337:ffff:ffff:ffff:ffff';

/** Numeric base-chain priorities (nft's named ones; `dstnat` is rejected on output by nft 1.0.6). */
export const Priority = {
  raw: -300,
  mangle: -150,
  dstnat: -100,
  srcnat: 100,
} as const;
