/* eslint-disable @typescript-eslint/no-unsafe-class-instance-assignment -- client-node's models are classes; the tests build plain objects of those shapes. */
import type { V1Service } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { clusterLayout } from '../layout.ts';
import { loadBalancerPool, planLoadBalancers } from './load-balancer.ts';

const svc = (name: string, spec: V1Service['spec'], ip?: string): V1Service => ({
  metadata: { name, namespace: 'ns' },
  spec,
  ...(ip === undefined ? {} : { status: { loadBalancer: { ingress: [{ ip }] } } }),
});
const lb = { type: 'LoadBalancer' } as const;
const pool = ['10.0.0.200', '10.0.0.201', '10.0.0.202'];

describe('loadBalancerPool', () => {
  it('is .200-.249 of the fabric subnet of the slot', () => {
    const p = loadBalancerPool(clusterLayout('x', 14, '/tmp/none'));
    expect([p[0], p.at(-1), p.length]).toEqual(['10.211.14.200', '10.211.14.249', 50]);
  });
});

describe('planLoadBalancers', () => {
  it('keeps existing addresses, gives new Services the lowest free one, ignores other types and classes', () => {
    const plan = planLoadBalancers(
      [
        svc('b', lb, '10.0.0.200'),
        svc('a', lb),
        svc('c', { type: 'ClusterIP' }),
        svc('d', { ...lb, loadBalancerClass: 'other.io/lb' }),
      ],
      pool,
    );
    expect([...plan.entries()].sort()).toEqual([
      ['ns/a', '10.0.0.201'],
      ['ns/b', '10.0.0.200'],
    ]);
  });

  it('honours spec.loadBalancerIP inside the pool and refuses one outside it or taken', () => {
    const plan = planLoadBalancers(
      [
        svc('a', { ...lb, loadBalancerIP: '10.0.0.202' }),
        svc('b', { ...lb, loadBalancerIP: '192.0.2.1' }),
        svc('c', { ...lb, loadBalancerIP: '10.0.0.202' }),
      ],
      pool,
    );
    expect(plan.get('ns/a')).toBe('10.0.0.202');
    expect(plan.get('ns/b')).toBeUndefined();
    expect(plan.get('ns/c')).toBeUndefined();
  });

  it('leaves Services without an address when the pool is exhausted, and never hands one out twice', () => {
    const plan = planLoadBalancers(
      ['a', 'b', 'c', 'd'].map(n => svc(n, lb)),
      pool,
    );
    const ips = [...plan.values()];
    expect(ips.filter(ip => ip !== undefined)).toHaveLength(3);
    expect(new Set(ips.filter(ip => ip !== undefined)).size).toBe(3);
    expect(plan.get('ns/d')).toBeUndefined();
  });
});
