import { createRegistry } from '@ambient-mesh/runtime';
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { TRAFFIC_LABELS, trafficLabels, xdsTerminationReason, ZtunnelMetrics } from './metrics.ts';

const PACKAGE_VERSION = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

describe('ZtunnelMetrics', () => {
  it('exposes the upstream traffic counters with every label in upstream order', async () => {
    const metrics = new ZtunnelMetrics({ registry: createRegistry() });
    const labels = trafficLabels({
      reporter: 'destination',
      source_workload: 'app-a',
      source_principal: 'spiffe://cluster.local/ns/default/sa/sa-a',
      destination_workload: 'app-b',
      connection_security_policy: 'mutual_tls',
    });
    metrics.connectionOpened(labels);
    metrics.connectionClosed(labels, { fromClient: 10, toClient: 20 });
    const text = await metrics.render();
    const line = text.split('\n').find(l => l.startsWith('istio_tcp_connections_opened_total{'));
    expect(line).toBeDefined();
    const names = [...(line ?? '').matchAll(/(\w+)="/g)].map(m => m[1]);
    expect(names).toEqual([...TRAFFIC_LABELS]);
    expect(line).toContain('reporter="destination"');
    expect(line).toContain('source_canonical_service="unknown"');
    expect(line).toContain('request_protocol="tcp"');
    expect(line).toContain('response_flags="-"');
    expect(line?.endsWith(' 1')).toBe(true);
    expect(text).toMatch(/^istio_tcp_connections_closed_total\{.*\} 1$/m);
    expect(text).toMatch(/^istio_tcp_received_bytes_total\{.*\} 10$/m);
    expect(text).toMatch(/^istio_tcp_sent_bytes_total\{.*\} 20$/m);
  });

  it('adds connections up between scrapes and merges equal label values, over thousands of label-set objects', async () => {
    const metrics = new ZtunnelMetrics({ registry: createRegistry() });
    const opened = (text: string, workload: string): number | undefined => {
      const line = text
        .split('\n')
        .find(
          l =>
            l.startsWith('istio_tcp_connections_opened_total{') &&
            l.includes(`source_workload="${workload}"`),
        );
      return line === undefined ? undefined : Number(line.split(' ').at(-1));
    };
    // Two objects with equal values (a workload WDS sent again) are one series.
    metrics.connectionOpened(trafficLabels({ reporter: 'source', source_workload: 'a' }));
    metrics.connectionOpened(trafficLabels({ reporter: 'source', source_workload: 'a' }));
    expect(opened(await metrics.render(), 'a')).toBe(2);
    metrics.connectionOpened(trafficLabels({ reporter: 'source', source_workload: 'a' }));
    expect(opened(await metrics.render(), 'a')).toBe(3);
    // 3,000 label-set objects between two scrapes (past the pending bound): every one counted.
    for (let i = 0; i < 3000; i++) {
      metrics.connectionOpened(trafficLabels({ reporter: 'source', source_workload: `w${i % 3}` }));
    }
    const text = await metrics.render();
    expect([opened(text, 'w0'), opened(text, 'w1'), opened(text, 'w2')]).toEqual([1000, 1000, 1000]);
  });

  it('exposes build, xDS and workload-manager metrics under their upstream names', async () => {
    const metrics = new ZtunnelMetrics({ registry: createRegistry() });
    metrics.observeWorkloadManager({ activeCount: 3, pendingCount: 1 });
    metrics.xdsMessage('type.googleapis.com/istio.workload.Address', 120);
    metrics.xdsTerminated('error');
    metrics.proxyStarted();
    const text = await metrics.render();
    expect(text).toContain(`istio_build{component="ztunnel",tag="${PACKAGE_VERSION}"} 1`);
    expect(text).toContain('istio_xds_message_total{url="type.googleapis.com/istio.workload.Address"} 1');
    expect(text).toContain(
      'istio_xds_message_bytes_total{url="type.googleapis.com/istio.workload.Address"} 120',
    );
    expect(text).toContain('istio_xds_connection_terminations_total{reason="Error"} 1');
    expect(text).toContain('workload_manager_active_proxy_count 3');
    expect(text).toContain('workload_manager_pending_proxy_count 1');
    expect(text).toContain('workload_manager_proxies_started_total 1');
    expect(text).toContain('workload_manager_proxies_stopped_total 0');
  });

  it("maps xDS stream ends onto upstream's termination reasons", () => {
    expect(xdsTerminationReason('connect')).toBe('ConnectionError');
    expect(xdsTerminationReason('error')).toBe('Error');
    expect(xdsTerminationReason('end')).toBe('Complete');
    expect(xdsTerminationReason('close')).toBe('Complete');
    expect(xdsTerminationReason('reconnect')).toBe('Reconnect');
  });

  it('exposes process_open_fds and process_max_fds when asked for process metrics', async () => {
    const text = await new ZtunnelMetrics({
      registry: createRegistry({ defaultMetrics: true }),
      version: '9.9.9',
    }).render();
    expect(text).toMatch(/^process_open_fds \d+$/m);
    expect(text).toMatch(/^process_max_fds \d+$/m);
    expect(text).toContain('istio_build{component="ztunnel",tag="9.9.9"} 1');
    expect(await new ZtunnelMetrics({ registry: createRegistry() }).render()).not.toContain(
      'process_open_fds',
    );
  });
});
