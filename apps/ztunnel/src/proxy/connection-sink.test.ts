import { createRegistry } from '@ambient-mesh/runtime';
import { describe, expect, it } from 'vitest';
import { AccessLog } from '../access-log.ts';
import type { ConnectionEnds } from '../access-log.ts';
import { ZtunnelMetrics } from '../metrics.ts';
import { captureLogs } from '@ambient-mesh/runtime/testing';
import { LiveConnectionSet, ztunnelConnectionSink } from './connection-sink.ts';
import type { ZtunnelConnection } from './connection-sink.ts';

function connection(direction: ConnectionEnds['direction']): ZtunnelConnection {
  return {
    parties: {
      reporter: direction === 'outbound' ? 'source' : 'destination',
      source: undefined,
      sourcePrincipal: 'spiffe://cluster.local/ns/default/sa/a',
      destination: undefined,
      destinationPrincipal: 'spiffe://cluster.local/ns/default/sa/b',
      service: undefined,
      mtls: true,
    },
    ends: { 'src.addr': '10.0.0.1:40000', 'dst.addr': '10.0.0.2:15008', direction },
  };
}

function sink() {
  const { logs, records } = captureLogs();
  const metrics = new ZtunnelMetrics({ registry: createRegistry() });
  return { records, metrics, sink: ztunnelConnectionSink(metrics, new AccessLog(logs.for('access'))) };
}

function sample(text: string, metric: string, flags: string): number | undefined {
  const line = text
    .split('\n')
    .find(l => l.startsWith(`${metric}{`) && l.includes(`response_flags="${flags}"`));
  return line === undefined ? undefined : Number(line.split(' ').at(-1));
}

describe('ztunnelConnectionSink', () => {
  it('counts an established connection once opened and once closed, bytes from the client side', async () => {
    const { records, metrics, sink: s } = sink();
    const c = connection('inbound');
    s.opened(c);
    s.completed(c, { fromClient: 11, toClient: 7, durationMs: 3 });
    const text = await metrics.render();
    expect(sample(text, 'istio_tcp_connections_opened_total', '-')).toBe(1);
    expect(sample(text, 'istio_tcp_connections_closed_total', '-')).toBe(1);
    expect(sample(text, 'istio_tcp_received_bytes_total', '-')).toBe(11);
    expect(sample(text, 'istio_tcp_sent_bytes_total', '-')).toBe(7);
    // The destination hop sends the response and receives the request.
    expect(records.find(r => r.msg === 'connection complete')).toMatchObject({
      bytes_sent: 7,
      bytes_recv: 11,
      direction: 'inbound',
    });
  });

  it('logs outbound bytes from the source hop: it sends the request', () => {
    const { records, sink: s } = sink();
    const c = connection('outbound');
    s.opened(c);
    s.completed(c, { fromClient: 11, toClient: 7, durationMs: 3 });
    expect(records.find(r => r.msg === 'connection complete')).toMatchObject({
      bytes_sent: 11,
      bytes_recv: 7,
    });
  });

  it('counts a refused connection as opened and closed with its flag, logging the error', async () => {
    const { records, metrics, sink: s } = sink();
    s.completed(connection('inbound'), {
      fromClient: 0,
      toClient: 0,
      durationMs: 1,
      error: 'policy rejection: denied (default/deny)',
      refused: 'DENY',
    });
    const text = await metrics.render();
    expect(sample(text, 'istio_tcp_connections_opened_total', 'DENY')).toBe(1);
    expect(sample(text, 'istio_tcp_connections_closed_total', 'DENY')).toBe(1);
    expect(sample(text, 'istio_tcp_connections_opened_total', '-')).toBeUndefined();
    expect(records.map(r => [r.level, r.msg, r.error])).toEqual([
      ['error', 'connection complete', 'policy rejection: denied (default/deny)'],
    ]);
  });

  it('logs an early failure with the addresses only', () => {
    const { records, sink: s } = sink();
    s.failed({ src: '10.0.0.1:1', dst: 'unknown', direction: 'outbound' }, 'no original destination');
    expect(records).toEqual([
      expect.objectContaining({
        msg: 'connection failed',
        'src.addr': '10.0.0.1:1',
        'dst.addr': 'unknown',
        direction: 'outbound',
        error: 'no original destination',
      }),
    ]);
  });

  it('keeps the open connections for the config dump until they complete', () => {
    const { logs } = captureLogs();
    const live = new LiveConnectionSet();
    const s = ztunnelConnectionSink(
      new ZtunnelMetrics({ registry: createRegistry() }),
      new AccessLog(logs.for('access')),
      live,
    );
    const inbound = connection('inbound');
    const outbound: ZtunnelConnection = {
      ...connection('outbound'),
      ends: {
        'src.addr': '10.0.0.1:40001',
        'dst.addr': '10.0.0.3:15008',
        'dst.hbone_addr': '10.96.0.10:80',
        direction: 'outbound',
      },
    };
    s.opened(inbound);
    s.opened(outbound);
    expect(live.snapshot()).toEqual({
      inbound: [
        {
          src: '10.0.0.1:40000',
          originalDst: '10.0.0.2:15008',
          actualDst: '10.0.0.2:15008',
          protocol: 'HBONE',
        },
      ],
      outbound: [
        {
          src: '10.0.0.1:40001',
          originalDst: '10.96.0.10:80',
          actualDst: '10.0.0.3:15008',
          protocol: 'HBONE',
        },
      ],
    });
    s.completed(inbound, { fromClient: 1, toClient: 1, durationMs: 1 });
    expect(live.snapshot().inbound).toEqual([]);
    expect(live.snapshot().outbound).toHaveLength(1);
  });
});
