// The operator's reconcile metrics, named as controller-runtime's (which the Sail operator
// exports): counts by result, errors, and durations, per controller (the CR kind).
import { Counter, Histogram, type Registry } from 'prom-client';

export type ReconcileOutcomeLabel = 'success' | 'error' | 'requeue_after';

export class OperatorMetrics {
  readonly registry: Registry;
  readonly #total: Counter<'controller' | 'result'>;
  readonly #errors: Counter<'controller'>;
  readonly #time: Histogram<'controller'>;
  readonly #events: Counter<'controller' | 'type'>;

  constructor(registry: Registry) {
    this.registry = registry;
    this.#total = new Counter({
      name: 'controller_runtime_reconcile_total',
      help: 'Reconciles per controller (CR kind) and result.',
      labelNames: ['controller', 'result'],
      registers: [registry],
    });
    this.#errors = new Counter({
      name: 'controller_runtime_reconcile_errors_total',
      help: 'Reconciles that failed, per controller.',
      labelNames: ['controller'],
      registers: [registry],
    });
    this.#time = new Histogram({
      name: 'controller_runtime_reconcile_time_seconds',
      help: 'Time per reconcile, per controller.',
      labelNames: ['controller'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    });
    this.#events = new Counter({
      name: 'ambient_operator_events_total',
      help: 'Kubernetes Events the operator recorded on its CRs, per controller and type.',
      labelNames: ['controller', 'type'],
      registers: [registry],
    });
  }

  reconciled(controller: string, result: ReconcileOutcomeLabel, seconds: number): void {
    this.#total.inc({ controller, result });
    if (result === 'error') this.#errors.inc({ controller });
    this.#time.observe({ controller }, seconds);
  }

  event(controller: string, type: 'Normal' | 'Warning'): void {
    this.#events.inc({ controller, type });
  }
}
