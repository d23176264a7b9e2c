/**
 * The ports of an ambient mesh (Istio 1.27). Every component and test takes them from here;
 * `docs/protocols.md` says what flows on each.
 */
export const Port = {
  /** ztunnel in-pod: outbound capture (plain TCP from the app, redirected). */
  ztunnelOutbound: 15001,
  /** ztunnel in-pod: inbound plaintext capture (passthrough, no HBONE). */
  ztunnelInboundPlaintext: 15006,
  /** HBONE: HTTP/2 CONNECT over mTLS, on ztunnel (in the pod) and on waypoints. */
  hbone: 15008,
  /** ztunnel in-pod DNS proxy (UDP and TCP). */
  dns: 15053,
  /** Admin, loopback only: ztunnel `/config_dump`, `/logging`; Envoy-style admin on waypoints. */
  admin: 15000,
  /** Prometheus metrics (`/metrics`, also `/stats/prometheus`) of ztunnel and waypoints. */
  stats: 15020,
  /** Readiness (`/healthz/ready`) of ztunnel and waypoints. */
  readiness: 15021,
  /** istiod: plaintext xDS (not served by ambient profiles, listed for completeness). */
  istiodXdsPlaintext: 15010,
  /** istiod: xDS and the CA over gRPC with TLS. */
  istiodXds: 15012,
  /** istiod: monitoring (`/metrics`, `/version`, `/debug/*`). */
  istiodMonitoring: 15014,
  /** istiod: webhooks (HTTPS). */
  istiodWebhook: 15017,
  /** istiod: readiness (`/ready`). */
  istiodReadiness: 8080,
  /** Upstream DNS port that the in-pod rules capture. */
  dnsUpstream: 53,
} as const;
export type Port = (typeof Port)[keyof typeof Port];

/** The ports ztunnel listens on in a pod; traffic to them is never captured again. */
export const ZTUNNEL_INPOD_PORTS: ReadonlySet<number> = new Set([
  Port.ztunnelOutbound,
  Port.ztunnelInboundPlaintext,
  Port.hbone,
]);
