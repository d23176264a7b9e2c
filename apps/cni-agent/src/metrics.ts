/**
 * The agent's Prometheus metrics (prom-client), on the registry of the runtime's `Platform`.
 * Names carry the `istio_cni_` prefix of the upstream node agent where an equivalent exists.
 */
import { Counter, Gauge } from 'prom-client';
import type { Registry } from 'prom-client';

/** Why an enrolment or un-enrolment step failed (the `reason` label). */
export const FailureReason = {
  netns: 'netns',
  rules: 'rules',
  hostProbe: 'host_probe',
  zds: 'zds',
  annotation: 'annotation',
  kube: 'kube',
} as const;
export type FailureReason = (typeof FailureReason)[keyof typeof FailureReason];

export class AgentMetrics {
  readonly registry: Registry;
  readonly enrolledPods: Gauge;
  readonly pendingPods: Gauge;
  readonly failures: Counter<'reason'>;
  readonly driftRepairs: Counter;
  readonly ztunnelConnections: Gauge;
  readonly pluginEvents: Counter<'result'>;

  /** `registry`: the app's, from the runtime's `Platform`. */
  constructor(options: { readonly registry: Registry }) {
    this.registry = options.registry;
    const registers = [this.registry];
    this.enrolledPods = new Gauge({
      name: 'istio_cni_enrolled_pods',
      help: 'Pods on this node whose traffic is redirected (annotation enabled or pending).',
      registers,
    });
    this.pendingPods = new Gauge({
      name: 'istio_cni_pending_pods',
      help: 'Enrolled pods no ztunnel has acked yet.',
      registers,
    });
    this.failures = new Counter({
      name: 'istio_cni_enrolment_failures_total',
      help: 'Failed enrolment or un-enrolment steps, by reason.',
      labelNames: ['reason'],
      registers,
    });
    this.driftRepairs = new Counter({
      name: 'istio_cni_rule_drift_repairs_total',
      help: 'Times drifted in-pod rules were re-applied.',
      registers,
    });
    this.ztunnelConnections = new Gauge({
      name: 'istio_cni_ztunnel_connections',
      help: 'ztunnels connected over ZDS.',
      registers,
    });
    this.pluginEvents = new Counter({
      name: 'istio_cni_plugin_events_total',
      help: 'CNI plugin ADD events, by result.',
      labelNames: ['result'],
      registers,
    });
  }

  failure(reason: FailureReason): void {
    this.failures.inc({ reason });
  }
}
