// LoadBalancer Services on the local cluster, as cloud-provider-kind or MetalLB (L2 mode) do it:
// each Service of type LoadBalancer gets an address from a pool on the node fabric, written to
// status.loadBalancer.ingress; kube-proxy then serves that address on every node (its nftables
// rules match LoadBalancer IPs like ClusterIPs), and the first node answers ARP for it on the
// fabric by holding it as a /32 on its eth0, so the host (the `am-<name>` link, 10.211.S.1/24)
// and every node netns reach it.
import type { V1Service } from '@kubernetes/client-node';
import { errorMessage } from '@ambient-mesh/errors';
import type { CommandRunner } from '../exec.ts';
import { Informer, clientSource, type KubeClient } from '@ambient-mesh/kube';
import type { ClusterLayout, NodeLayout } from '../layout.ts';

/** Pool offsets in the fabric /24: 10.211.<slot>.200 … .249. */
const POOL_FIRST = 200;
const POOL_SIZE = 50;

/** The LoadBalancer address pool of a cluster. */
export function loadBalancerPool(layout: ClusterLayout): string[] {
  const prefix = layout.apiserverAddress.split('.').slice(0, 3).join('.');
  return Array.from({ length: POOL_SIZE }, (_, i) => `${prefix}.${POOL_FIRST + i}`);
}

const key = (s: V1Service): string => `${s.metadata?.namespace ?? ''}/${s.metadata?.name ?? ''}`;

/** Whether this controller owns the Service's address (type LoadBalancer, no other class). */
function ours(s: V1Service): boolean {
  return s.spec?.type === 'LoadBalancer' && (s.spec.loadBalancerClass ?? '') === '';
}

/**
 * The address each Service should have: its current one when it is in the pool and not taken,
 * else the one spec.loadBalancerIP asks for if free, else the lowest free one; undefined when the
 * pool is exhausted (or the requested address is outside the pool or taken). Services that are not
 * ours get no entry. Pure: the controller applies the difference.
 */
export function planLoadBalancers(
  services: readonly V1Service[],
  pool: readonly string[],
): Map<string, string | undefined> {
  const inPool = new Set(pool);
  const taken = new Set<string>();
  const plan = new Map<string, string | undefined>();
  const mine = services.filter(ours).sort((a, b) => key(a).localeCompare(key(b)));
  // Keep existing assignments first, so a new Service never moves an old one.
  for (const s of mine) {
    const ip = s.status?.loadBalancer?.ingress?.[0]?.ip;
    if (ip !== undefined && inPool.has(ip) && !taken.has(ip)) {
      const wanted = s.spec?.loadBalancerIP;
      if (wanted === undefined || wanted === '' || wanted === ip) {
        taken.add(ip);
        plan.set(key(s), ip);
      }
    }
  }
  for (const s of mine) {
    if (plan.has(key(s))) continue;
    const wanted = s.spec?.loadBalancerIP;
    if (wanted !== undefined && wanted !== '') {
      const ok = inPool.has(wanted) && !taken.has(wanted);
      if (ok) taken.add(wanted);
      plan.set(key(s), ok ? wanted : undefined);
      continue;
    }
    const free = pool.find(ip => !taken.has(ip));
    if (free !== undefined) taken.add(free);
    plan.set(key(s), free);
  }
  return plan;
}

export interface LoadBalancerControllerOptions {
  readonly client: KubeClient;
  readonly run: CommandRunner;
  readonly layout: ClusterLayout;
  /** The node that answers ARP for the pool addresses on the fabric. */
  readonly announcer: NodeLayout;
  readonly log: (msg: string) => void;
}

/** Watches Services and keeps their LoadBalancer status and the announced addresses in line with the plan. */
export class LoadBalancerController {
  private readonly opts: LoadBalancerControllerOptions;
  private readonly pool: string[];
  private readonly announced = new Set<string>();
  private informer: Informer<V1Service> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(opts: LoadBalancerControllerOptions) {
    this.opts = opts;
    this.pool = loadBalancerPool(opts.layout);
  }

  start(): void {
    const informer = new Informer<V1Service>({
      name: 'services (load balancer)',
      source: clientSource<V1Service>(this.opts.client, '/api/v1/services'),
      onError: e => {
        if (!this.stopped) this.opts.log(`load balancer: service watch: ${errorMessage(e)}`);
      },
    });
    const changed = (): void => {
      this.schedule();
    };
    informer.on({ add: changed, update: changed, delete: changed });
    this.informer = informer;
    void informer.start();
  }

  private schedule(): void {
    if (this.timer !== undefined || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.running
        .then(() => this.reconcile())
        .catch((e: unknown) => {
          this.opts.log(`load balancer: ${errorMessage(e)}`);
        });
    }, 50);
  }

  private async reconcile(): Promise<void> {
    if (this.stopped || this.informer === undefined) return;
    const services = new Map(this.informer.cache.list().map(s => [key(s), s]));
    const plan = planLoadBalancers([...services.values()], this.pool);
    const wanted = new Set([...plan.values()].filter((ip): ip is string => ip !== undefined));
    for (const ip of wanted) if (!this.announced.has(ip)) await this.address('add', ip);
    for (const ip of [...this.announced]) if (!wanted.has(ip)) await this.address('del', ip);
    for (const [k, ip] of plan) {
      const s = services.get(k);
      if (s === undefined || s.status?.loadBalancer?.ingress?.[0]?.ip === ip) continue;
      const [ns, name] = k.split('/') as [string, string];
      await this.opts.client
        .mergePatch(`/api/v1/namespaces/${ns}/services/${name}/status`, {
          status: {
            loadBalancer: ip === undefined ? { ingress: null } : { ingress: [{ ip, ipMode: 'VIP' }] },
          },
        })
        .catch((e: unknown) => {
          this.opts.log(`load balancer: status of ${k}: ${errorMessage(e)}`);
        });
      if (ip === undefined)
        this.opts.log(`load balancer: no address for ${k} (pool exhausted or address unavailable)`);
    }
  }

  private async address(op: 'add' | 'del', ip: string): Promise<void> {
    const { announcer } = this.opts;
    await this.opts.run(['ip', '-n', announcer.netns, 'addr', op, `${ip}/32`, 'dev', 'eth0'], {
      allowFailure: true,
    });
    if (op === 'add') this.announced.add(ip);
    else this.announced.delete(ip);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.informer?.stop();
    if (this.timer !== undefined) clearTimeout(this.timer);
    await this.running;
  }
}
