/**
 * istiod's Gateway controller: the single writer of the Gateway API side.
 *
 * - GatewayClasses `istio` and `istio-waypoint` are created when missing and marked Accepted.
 * - For each Gateway of one of our classes it server-side applies a ServiceAccount, Deployment
 *   and Service (`render.ts`), owned by the Gateway so that deleting it garbage-collects them
 *   (kube-controller-manager's garbage collector; the local cluster runs it).
 * - It writes the Gateway's `Accepted`/`Programmed` conditions, addresses and listener status with
 *   `attachedRoutes` (`status.ts`; the counts from `attachedRoutes`, see `routesChanged`).
 * - Gateways of any other class are ignored.
 *
 * Informers (GatewayClass, Gateway, and the Services it generated) feed validated models; each
 * event enqueues one reconcile of the affected Gateway. Writes go through `WriteQueue` (latest
 * wins, transient failures retried). Writers run only while `isLeader()` answers true; call
 * `resync()` when leadership is gained.
 */
import { errorMessage } from '@ambient-mesh/errors';
import type { Condition } from '@ambient-mesh/kube';
import { Label } from '@ambient-mesh/mesh-api';
import type { Logger, Timers } from '@ambient-mesh/runtime';
import { applyEvents, type KindInformer } from '../kube/informers.ts';
import type { KubeObject, Service } from '../kube/objects.ts';
import {
  BUILTIN_CLASSES,
  classInfoFor,
  gatewayClassConditions,
  gatewayClassObject,
  type GatewayClassInfo,
} from './classes.ts';
import {
  gatewayKey,
  statusViewOf,
  validateGateway,
  validateGatewayClass,
  type GatewayClassModel,
  type GatewayListener,
  type GatewayModel,
} from './model.ts';
import {
  applyCustomizations,
  CLASS_DEFAULTS_LABEL,
  classDefaultsFor,
  CUSTOMIZATION_KEYS,
  parseCustomization,
  parametersRefProblem,
  type Customization,
} from './customization.ts';
import { deploymentName, renderGateway, type RenderOptions, type RenderedObject } from './render.ts';
import {
  gatewayStatus,
  invalidGatewayStatus,
  statusEqual,
  type GatewayStatus,
  type ServiceView,
} from './status.ts';
import type { IngressInformerKind } from './ingress-routes.ts';
import type { ListenerRefs } from './listener-status.ts';
import { RevisionScope } from './revision-scope.ts';
import { WriteQueue } from './write-queue.ts';

/** The field manager of everything the controller applies (upstream's controller name). */
export const GATEWAY_FIELD_MANAGER = 'istio.io/gateway-controller';

/** The Kubernetes writes the controller makes; `kube-gateway-api.ts` has the real one. */
export interface GatewayKubeApi {
  /** Server-side apply (create or update) of a generated object or GatewayClass. */
  apply(obj: RenderedObject | ReturnType<typeof gatewayClassObject>): Promise<void>;
  patchGatewayStatus(namespace: string, name: string, status: GatewayStatus): Promise<void>;
  patchGatewayClassStatus(name: string, conditions: readonly Condition[]): Promise<void>;
}

/** `Namespace` and `RevisionTag` (the tags' MutatingWebhookConfigurations) feed the revision scope. */
/** `ConfigMap`: class defaults (`gateway.istio.io/defaults-for-class`) and `infrastructure.parametersRef`. */
/** The ingress route index's kinds (`ingress-routes.ts`) come from the same factory. */
export type GatewayInformerKind =
  | 'GatewayClass'
  | 'Gateway'
  | 'GatewayService'
  | 'Namespace'
  | 'RevisionTag'
  | 'ConfigMap'
  | IngressInformerKind;
export type GatewayInformerFactory = (kind: GatewayInformerKind) => KindInformer;

export interface GatewayControllerOptions {
  readonly api: GatewayKubeApi;
  readonly informers: GatewayInformerFactory;
  readonly render: RenderOptions;
  readonly domain: string;
  /** istiod's revision: only Gateways selecting it or one of its tags are deployed (default `default`). */
  readonly revision?: string;
  readonly logger: Logger;
  readonly timers: Timers;
  /** Leader gating seam: writes happen only while this answers true (default: always). */
  readonly isLeader?: () => boolean;
  /** Called when a write failed for good (a metric). */
  readonly onWriteFailure?: () => void;
  /** Routes accepted on a listener of the Gateway (`namespace/name`); default none. */
  readonly attachedRoutes?: (gateway: string, listener: GatewayListener) => number;
  /** istiod's namespace, where class-defaults ConfigMaps live (default `istio-system`). */
  readonly systemNamespace?: string;
  /**
   * Secrets and ReferenceGrants for the listener checks of ingress Gateways (certificateRefs);
   * without it every listener reports no errors.
   */
  readonly listenerRefs?: ListenerRefs;
}

function serviceView(svc: Service): ServiceView {
  const ips = svc.spec?.clusterIPs ?? (svc.spec?.clusterIP === undefined ? [] : [svc.spec.clusterIP]);
  return {
    name: svc.metadata?.name ?? '',
    type: svc.spec?.type ?? 'ClusterIP',
    clusterIPs: ips,
    ports: (svc.spec?.ports ?? []).map(p => p.port),
    loadBalancer: (svc.status?.loadBalancer?.ingress ?? []).flatMap(i =>
      i.ip !== undefined ? [i.ip] : i.hostname !== undefined ? [i.hostname] : [],
    ),
  };
}

export class GatewayController {
  readonly #opts: GatewayControllerOptions;
  readonly #classes = new Map<string, GatewayClassModel>();
  readonly #gateways = new Map<string, GatewayModel>();
  /** Gateways of our classes that failed validation: key -> generation and errors. */
  readonly #invalid = new Map<
    string,
    { generation: number; errors: readonly string[]; status: GatewayModel['status'] }
  >();
  readonly #services = new Map<string, ServiceView>();
  /** ConfigMaps that may customise generated objects (labelled class defaults, or with our keys). */
  readonly #configMaps = new Map<string, KubeObject>();
  /** `namespace/name` of every ConfigMap (a `parametersRef` to one without customisations is valid). */
  readonly #configMapKeys = new Set<string>();
  /** What was last applied per Gateway (JSON of the rendered objects), to skip no-op applies. */
  readonly #applied = new Map<string, string>();
  readonly #informers: KindInformer[] = [];
  readonly #queue: WriteQueue;
  #classesSynced = false;
  /** Until the namespaces and tags have listed, no Gateway is known to be someone else's. */
  #scopeSynced = false;
  /** Until the ConfigMaps have listed, a Gateway would be deployed without its customisation. */
  #configMapsSynced = false;
  #stopped = false;
  readonly #scope: RevisionScope;

  constructor(opts: GatewayControllerOptions) {
    this.#opts = opts;
    this.#scope = new RevisionScope(opts.revision);
    this.#queue = new WriteQueue({
      timers: opts.timers,
      onGiveUp: (key, err, attempts) => {
        opts.onWriteFailure?.();
        opts.logger.warn({ key, err: errorMessage(err), attempts }, 'gateway controller write failed');
      },
    });
  }

  /** Gateways istiod manages (the debug view and tests). */
  gateways(): readonly GatewayModel[] {
    return [...this.#gateways.values()].filter(g => this.#classOf(g) !== undefined);
  }

  get #leader(): boolean {
    return this.#opts.isLeader?.() ?? true;
  }

  /** Starts the informers; resolves once each has listed (or on stop). */
  async start(): Promise<void> {
    const wire = (
      kind: GatewayInformerKind,
      apply: (obj: KubeObject, deleted: boolean) => void,
    ): Promise<void> => {
      const informer = this.#opts.informers(kind);
      this.#informers.push(informer);
      applyEvents(informer, apply, err => {
        this.#opts.logger.error({ kind, err: errorMessage(err) }, 'failed to apply a Gateway API event');
      });
      return informer.start().catch(() => undefined);
    };
    const classes = wire('GatewayClass', (o, d) => {
      this.#onClass(o, d);
    }).then(() => {
      this.#classesSynced = true;
      this.#ensureClasses();
    });
    const scope = Promise.all([
      wire('Namespace', (o, d) => {
        if (this.#scope.onNamespace(o, d)) {
          const ns = o.metadata?.name ?? '';
          for (const [key, gw] of this.#gateways) if (gw.namespace === ns) this.#reconcile(key);
        }
      }),
      wire('RevisionTag', (o, d) => {
        if (this.#scope.onTag(o, d)) {
          this.#opts.logger.info(
            { revision: this.#scope.revision, tags: [...this.#scope.myTags()] },
            'revision tags changed',
          );
          for (const key of this.#gateways.keys()) this.#reconcile(key);
        }
      }),
    ]).then(() => {
      this.#scopeSynced = true;
      for (const key of this.#gateways.keys()) this.#reconcile(key);
    });
    await Promise.all([
      classes,
      scope,
      wire('Gateway', (o, d) => {
        this.#onGateway(o, d);
      }),
      wire('GatewayService', (o, d) => {
        this.#onService(o, d);
      }),
      wire('ConfigMap', (o, d) => {
        this.#onConfigMap(o, d);
      }).then(() => {
        this.#configMapsSynced = true;
        for (const key of this.#gateways.keys()) this.#reconcile(key);
      }),
    ]);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#queue.close();
    await Promise.all(this.#informers.map(i => i.stop()));
  }

  /** Re-runs every reconcile (call when this istiod becomes the leader). */
  resync(): void {
    this.#applied.clear();
    this.#ensureClasses();
    for (const key of [...this.#gateways.keys(), ...this.#invalid.keys()]) this.#reconcile(key);
  }

  /** The routes attached to these Gateways (`namespace/name`) changed: their status is rewritten. */
  routesChanged(gateways: Iterable<string>): void {
    for (const key of gateways) this.#reconcile(key);
  }

  /** Secrets or ReferenceGrants changed: every Gateway's listener status is checked again. */
  refsChanged(): void {
    for (const key of this.#gateways.keys()) this.#reconcile(key);
  }

  /** Resolves when no write is pending (tests). */
  idle(): Promise<void> {
    return this.#queue.idle();
  }

  #classOf(gw: GatewayModel): GatewayClassInfo | undefined {
    return classInfoFor(gw.className, name => this.#classes.get(name));
  }

  #onClass(obj: KubeObject, deleted: boolean): void {
    const name = obj.metadata?.name ?? '';
    if (deleted) {
      this.#classes.delete(name);
      this.#ensureClasses();
    } else {
      const v = validateGatewayClass(obj);
      if (!v.ok) {
        this.#opts.logger.warn(
          { gatewayClass: name, errors: v.errors },
          'GatewayClass is invalid and was ignored',
        );
        return;
      }
      this.#classes.set(name, v.value);
      this.#writeClassStatus(v.value);
    }
    for (const [key, gw] of this.#gateways) if (gw.className === name) this.#reconcile(key);
  }

  /** Creates our GatewayClasses that are missing (once the class informer has listed). */
  #ensureClasses(): void {
    if (!this.#classesSynced || this.#stopped || !this.#leader) return;
    for (const info of BUILTIN_CLASSES) {
      if (this.#classes.has(info.name)) continue;
      this.#queue.enqueue(`GatewayClass/${info.name}`, async () => {
        if (this.#classes.has(info.name) || !this.#leader) return;
        await this.#opts.api.apply(gatewayClassObject(info));
        this.#opts.logger.info({ gatewayClass: info.name }, 'created GatewayClass');
      });
    }
  }

  #writeClassStatus(cls: GatewayClassModel): void {
    if (!BUILTIN_CLASSES.some(c => c.controllerName === cls.controllerName) || !this.#leader) return;
    const want = gatewayClassConditions(cls.generation);
    const have = cls.conditions.find(c => c.type === 'Accepted');
    const w = want[0]!;
    if (
      have?.status === w.status &&
      have.reason === w.reason &&
      have.message === w.message &&
      have.observedGeneration === w.observedGeneration
    )
      return;
    this.#queue.enqueue(`GatewayClass/${cls.name}/status`, () =>
      this.#opts.api.patchGatewayClassStatus(cls.name, want),
    );
  }

  #onGateway(obj: KubeObject, deleted: boolean): void {
    const key = `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
    if (deleted) {
      this.#gateways.delete(key);
      this.#invalid.delete(key);
      this.#applied.delete(key);
      // The generated objects are owned by the Gateway: the garbage collector removes them.
      return;
    }
    const v = validateGateway(obj);
    if (v.ok) {
      this.#invalid.delete(key);
      this.#gateways.set(key, v.value);
    } else {
      this.#gateways.delete(key);
      const className = (obj as { spec?: { gatewayClassName?: unknown } }).spec?.gatewayClassName;
      if (typeof className !== 'string' || classInfoFor(className, n => this.#classes.get(n)) === undefined)
        return;
      this.#opts.logger.warn({ gateway: key, errors: v.errors }, 'Gateway is invalid and was not deployed');
      this.#invalid.set(key, {
        generation: obj.metadata?.generation ?? 0,
        errors: v.errors,
        status: statusViewOf(obj),
      });
    }
    this.#reconcile(key);
  }

  #onService(obj: KubeObject, deleted: boolean): void {
    const ns = obj.metadata?.namespace ?? '';
    const key = `${ns}/${obj.metadata?.name ?? ''}`;
    if (deleted) this.#services.delete(key);
    else this.#services.set(key, serviceView(obj));
    const gwName = obj.metadata?.labels?.[Label.gatewayName];
    if (gwName !== undefined) {
      const gwKey = `${ns}/${gwName}`;
      // A deleted generated Service of a live Gateway is re-created.
      if (deleted) this.#applied.delete(gwKey);
      this.#reconcile(gwKey);
    }
  }

  #onConfigMap(obj: KubeObject, deleted: boolean): void {
    const ns = obj.metadata?.namespace ?? '';
    const name = obj.metadata?.name ?? '';
    const key = `${ns}/${name}`;
    const data = (obj as { data?: Record<string, unknown> }).data ?? {};
    const relevant =
      obj.metadata?.labels?.[CLASS_DEFAULTS_LABEL] !== undefined ||
      CUSTOMIZATION_KEYS.some(k => data[k] !== undefined);
    const had = this.#configMaps.has(key);
    const existed = this.#configMapKeys.has(key);
    if (deleted) this.#configMapKeys.delete(key);
    else this.#configMapKeys.add(key);
    if (deleted || !relevant) this.#configMaps.delete(key);
    else this.#configMaps.set(key, obj);
    const system = this.#opts.systemNamespace ?? 'istio-system';
    for (const [gwKey, gw] of this.#gateways) {
      const ref = gw.infrastructure?.parametersRef;
      if (gw.namespace === ns && ref?.name === name) {
        // A referenced ConfigMap appearing or going changes the Gateway's Accepted condition.
        if (had || existed !== !deleted || this.#configMaps.has(key)) this.#reconcile(gwKey);
      } else if (ns === system && (had || this.#configMaps.has(key))) this.#reconcile(gwKey);
    }
  }

  /** The customisations of a Gateway's objects: its class defaults, then its `parametersRef`. */
  #customizations(gw: GatewayModel): Customization[] {
    const out: Customization[] = [];
    const use = (cm: KubeObject | undefined, what: string): void => {
      if (cm === undefined) return;
      const parsed = parseCustomization(cm);
      const source = `${cm.metadata?.namespace ?? ''}/${cm.metadata?.name ?? ''}`;
      if (!parsed.ok) {
        this.#opts.logger.warn(
          { gateway: gatewayKey(gw), configMap: source, errors: parsed.errors },
          `${what} ConfigMap is invalid and was not applied`,
        );
        return;
      }
      if (parsed.value.unsupported.length > 0)
        this.#opts.logger.info(
          { gateway: gatewayKey(gw), configMap: source, keys: parsed.value.unsupported },
          `${what} ConfigMap keys for objects istiod does not generate were ignored`,
        );
      out.push(parsed.value);
    };
    use(
      classDefaultsFor(gw.className, this.#configMaps.values(), this.#opts.systemNamespace ?? 'istio-system'),
      'class defaults',
    );
    const ref = gw.infrastructure?.parametersRef;
    if (ref !== undefined) {
      const cm =
        ref.group === '' && ref.kind === 'ConfigMap'
          ? this.#configMaps.get(`${gw.namespace}/${ref.name}`)
          : undefined;
      const problem = this.#parametersProblem(gw);
      if (problem !== undefined)
        this.#opts.logger.warn(
          { gateway: gatewayKey(gw), parametersRef: ref, err: problem },
          'infrastructure.parametersRef does not resolve (Accepted=False, InvalidParameters); the class defaults alone are applied',
        );
      else use(cm, 'parametersRef');
    }
    return out;
  }

  /** The message of the `InvalidParameters` condition when the Gateway's `parametersRef` does not resolve. */
  #parametersProblem(gw: GatewayModel): string | undefined {
    const ref = gw.infrastructure?.parametersRef;
    if (ref === undefined) return undefined;
    const key = `${gw.namespace}/${ref.name}`;
    return parametersRefProblem(gw.namespace, ref, this.#configMaps.get(key), this.#configMapKeys.has(key));
  }

  #reconcile(key: string): void {
    if (this.#stopped || !this.#leader) return;
    const invalid = this.#invalid.get(key);
    if (invalid !== undefined) {
      const status = invalidGatewayStatus(invalid.generation, invalid.errors);
      if (!statusEqual(invalid.status, status)) {
        const [ns, name] = key.split('/') as [string, string];
        this.#queue.enqueue(`${key}/status`, () => this.#opts.api.patchGatewayStatus(ns, name, status));
      }
      return;
    }
    const gw = this.#gateways.get(key);
    if (gw === undefined) return;
    const cls = this.#classOf(gw);
    if (cls === undefined) return; // not one of our classes: ignored
    if (!this.#scopeSynced || !this.#configMapsSynced) return;
    if (!this.#scope.isMine(gw.namespace, gw.labels)) {
      // Another revision's: left to it (and applied again should it come back to this one).
      if (this.#applied.delete(key))
        this.#opts.logger.info(
          {
            gateway: key,
            selects: this.#scope.selection(gw.namespace, gw.labels),
            revision: this.#scope.revision,
          },
          'gateway now belongs to another revision',
        );
      return;
    }
    const classLabels = this.#classes.get(gw.className)?.labels ?? {};
    const rendered = applyCustomizations(
      renderGateway(gw, cls, this.#opts.render, classLabels),
      this.#customizations(gw),
    );
    const fingerprint = JSON.stringify(rendered);
    if (this.#applied.get(key) !== fingerprint) {
      this.#queue.enqueue(`${key}/objects`, async () => {
        for (const o of [rendered.serviceAccount, rendered.deployment, rendered.service])
          await this.#opts.api.apply(o);
        this.#applied.set(key, fingerprint);
        this.#opts.logger.info({ gateway: key, class: gw.className }, 'gateway deployment applied');
      });
    }
    const svc = this.#services.get(`${gw.namespace}/${deploymentName(gw, cls)}`);
    const attached = this.#opts.attachedRoutes;
    const status = gatewayStatus(
      gw,
      cls,
      svc,
      this.#opts.domain,
      l => attached?.(key, l) ?? 0,
      this.#opts.listenerRefs,
      this.#parametersProblem(gw),
    );
    if (!statusEqual(gw.status, status)) {
      this.#queue.enqueue(`${key}/status`, async () => {
        const current = this.#gateways.get(key);
        if (current === undefined) return;
        await this.#opts.api.patchGatewayStatus(gw.namespace, gw.name, status);
      });
    }
  }
}

export { gatewayKey };
