/**
 * istiod's Prometheus metrics, on the registry of the runtime's `Platform` (tests pass their own;
 * the executable's carries the process metrics).
 * Names follow upstream istiod where one exists (`pilot_xds_pushes`, `pilot_xds_push_time`,
 * `pilot_xds`, `pilot_total_xds_rejects`, `citadel_server_*`, `istio_build`, `pilot_info`,
 * `pilot_services`, `pilot_proxy_convergence_time`).
 */
import { Counter, Gauge, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';
import { buildInfo, versionString, type BuildInfo } from './build-info.ts';

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
  /** Updates of Secret `cacerts`, by result (`replaced`, `refused`, `unchanged`, ...). */
  readonly cacertsUpdates: Counter<'result'>;
  readonly authFailures: Counter<'service'>;
  /** Seconds from a change to every connected proxy having been sent it (upstream's name). */
  readonly convergenceTime: Histogram;
  /** Services known to istiod; set by the composition root (`setServiceCount`). */
  readonly services: Gauge;
  /** JWKS fetches of `jwksUri`s (upstream's `pilot_jwks_resolver_network_fetch_*_total`). */
  readonly jwksFetchSuccess: Counter;
  readonly jwksFetchFailure: Counter;
}

export interface MetricsOptions {
  /** The app's registry, from the runtime's `Platform` (with process metrics when the executable made it). */
  readonly registry: Registry;
  /** The build reported by `istio_build` and `pilot_info`; default this package's. */
  readonly build?: BuildInfo;
}

export function createMetrics(options: MetricsOptions): IstiodMetrics {
  const registry = options.registry;
  const registers = [registry];
  const build = options.build ?? buildInfo;
  new Gauge({
    name: 'istio_build',
    help: 'Istio component build info',
    labelNames: ['component', 'tag'],
    registers,
  }).set({ component: 'pilot', tag: build.gitTag }, 1);
  new Gauge({
    name: 'pilot_info',
    help: 'Pilot version and build information.',
    labelNames: ['version'],
    registers,
  }).set({ version: versionString(build) }, 1);
  return {
    registry,
    jwksFetchSuccess: new Counter({
      name: 'pilot_jwks_resolver_network_fetch_success_total',
      help: 'Total number of successfully network fetch by pilot jwks resolver',
      registers,
    }),
    jwksFetchFailure: new Counter({
      name: 'pilot_jwks_resolver_network_fetch_fail_total',
      help: 'Total number of failed network fetch by pilot jwks resolver',
      registers,
    }),
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
    cacertsUpdates: new Counter({
      name: 'istiod_cacerts_updates_total',
      help: 'Updates of the plug-in CA Secret cacerts seen, by result (replaced, staged, refused, unchanged, ...).',
      labelNames: ['result'],
      registers,
    }),
    authFailures: new Counter({
      name: 'istiod_authentication_failures_total',
      help: 'Callers refused at authentication, by service (xds, ca).',
      labelNames: ['service'],
      registers,
    }),
    convergenceTime: new Histogram({
      name: 'pilot_proxy_convergence_time',
      help: 'Delay in seconds between config change and a proxy receiving all required configuration.',
      buckets: [0.1, 0.5, 1, 3, 5, 10, 20, 30],
      registers,
    }),
    services: new Gauge({
      name: 'pilot_services',
      help: 'Total services known to pilot.',
      registers,
    }),
  };
}
