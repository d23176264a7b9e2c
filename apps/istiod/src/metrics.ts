/**
 * istiod's Prometheus metrics, in a registry of their own (so tests can create several), made by
 * the runtime's `createRegistry` (with the process metrics when istiod runs as a process).
 * Names follow upstream istiod where one exists (`pilot_xds_pushes`, `pilot_xds_push_time`,
 * `pilot_xds`, `pilot_total_xds_rejects`, `citadel_server_*`).
 */
import { createRegistry } from '@ambient-mesh/runtime';
import { Counter, Gauge, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';

export interface IstiodMetrics {
  readonly registry: Registry;
  readonly pushes: Counter<'type'>;
  readonly pushTime: Histogram<'type'>;
  readonly connectedProxies: Gauge;
  readonly nacks: Counter<'type'>;
  readonly policyErrors: Counter;
  readonly policyStatusWriteFailures: Counter;
  readonly csrCount: Counter;
  readonly certsIssued: Counter;
  readonly authFailures: Counter<'service'>;
}

export interface MetricsOptions {
  /** Add `process_*` and `nodejs_*` metrics; default false. */
  readonly processMetrics?: boolean;
}

export function createMetrics(options: MetricsOptions = {}): IstiodMetrics {
  const registry = createRegistry({ defaultMetrics: options.processMetrics ?? false });
  const registers = [registry];
  return {
    registry,
    pushes: new Counter({
      name: 'pilot_xds_pushes',
      help: 'Delta xDS responses sent, by type URL.',
      labelNames: ['type'],
      registers,
    }),
    pushTime: new Histogram({
      name: 'pilot_xds_push_time',
      help: 'Seconds from a Kubernetes change to its delta xDS response being written, by type URL.',
      labelNames: ['type'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 3, 5, 10, 20, 30],
      registers,
    }),
    connectedProxies: new Gauge({
      name: 'pilot_xds',
      help: 'Proxies connected to this istiod over delta xDS.',
      registers,
    }),
    nacks: new Counter({
      name: 'pilot_total_xds_rejects',
      help: 'Delta xDS responses rejected (NACKed) by proxies, by type URL.',
      labelNames: ['type'],
      registers,
    }),
    policyErrors: new Counter({
      name: 'istiod_policy_invalid_total',
      help: 'AuthorizationPolicy / PeerAuthentication objects rejected by validation.',
      registers,
    }),
    policyStatusWriteFailures: new Counter({
      name: 'istiod_policy_status_write_failures_total',
      help: 'AuthorizationPolicy status writes given up on (refused, or still failing after retries).',
      registers,
    }),
    csrCount: new Counter({
      name: 'citadel_server_csr_count',
      help: 'Certificate signing requests received.',
      registers,
    }),
    certsIssued: new Counter({
      name: 'citadel_server_success_cert_issuance_count',
      help: 'Certificates issued.',
      registers,
    }),
    authFailures: new Counter({
      name: 'istiod_authentication_failures_total',
      help: 'Callers refused at authentication, by service (xds, ca).',
      labelNames: ['service'],
      registers,
    }),
  };
}
