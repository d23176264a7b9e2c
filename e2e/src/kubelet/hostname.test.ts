/* eslint-disable @typescript-eslint/no-unsafe-class-instance-assignment -- client-node's models are classes; the tests build plain objects of those shapes. */
import { describe, expect, it } from 'vitest';
import { podHostname, podHostsFile } from './hostname.ts';

describe('podHostname', () => {
  it('is the pod name by default', () => {
    const h = podHostname({ metadata: { name: 'echo-1', namespace: 'ns' } }, 'cluster.local');
    expect(h).toEqual({ hostname: 'echo-1', fqdn: undefined, uts: 'echo-1' });
  });

  it('takes spec.hostname and spec.subdomain', () => {
    const h = podHostname(
      {
        metadata: { name: 'p', namespace: 'ns' },
        spec: { containers: [], hostname: 'web-0', subdomain: 'web' },
      },
      'cluster.local',
    );
    expect(h.hostname).toBe('web-0');
    expect(h.fqdn).toBe('web-0.web.ns.svc.cluster.local');
    expect(h.uts).toBe('web-0');
  });

  it('uses the FQDN as UTS hostname when setHostnameAsFQDN is set', () => {
    const h = podHostname(
      {
        metadata: { name: 'p', namespace: 'ns' },
        spec: { containers: [], subdomain: 's', setHostnameAsFQDN: true },
      },
      'cluster.local',
    );
    expect(h.uts).toBe('p.s.ns.svc.cluster.local');
  });

  it('truncates long pod names to 63 characters without a trailing dash', () => {
    const name = `${'a'.repeat(62)}-bbbb`;
    expect(podHostname({ metadata: { name } }, 'cluster.local').hostname).toBe('a'.repeat(62));
  });
});

describe('podHostsFile', () => {
  it('maps the pod IP to its FQDN and hostname', () => {
    const text = podHostsFile('10.244.0.5', {
      hostname: 'web-0',
      fqdn: 'web-0.web.ns.svc.cluster.local',
      uts: 'web-0',
    });
    expect(text).toContain('127.0.0.1\tlocalhost\n');
    expect(text).toContain('10.244.0.5\tweb-0.web.ns.svc.cluster.local\tweb-0\n');
  });
});
