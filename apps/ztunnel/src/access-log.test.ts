import { describe, expect, it } from 'vitest';
import { AccessLog } from './access-log.ts';
import { captureLogs } from '@ambient-mesh/runtime/testing';

describe('AccessLog', () => {
  it('writes upstream field names with component access, omitting missing identities', () => {
    const { logs, records } = captureLogs();
    const log = new AccessLog(logs.for('access'));
    const ends = {
      'src.addr': '10.0.0.1:40000',
      'src.workload': 'pod-a',
      'src.namespace': 'default',
      'src.identity': undefined,
      'dst.addr': '10.0.0.2:15008',
      'dst.hbone_addr': '10.0.0.2:8080',
      direction: 'outbound' as const,
    };
    log.opened(ends);
    log.complete(ends, { bytesSent: 5, bytesRecv: 7, durationMs: 12.4 });
    log.complete(ends, { bytesSent: 0, bytesRecv: 0, durationMs: 1, error: 'http status: 401 Unauthorized' });
    log.failed(ends, 'policy rejection');
    expect(records.map(r => [r.level, r.msg])).toEqual([
      ['debug', 'connection opened'],
      ['info', 'connection complete'],
      ['error', 'connection complete'],
      ['warn', 'connection failed'],
    ]);
    expect(records[1]).toMatchObject({
      component: 'access',
      'src.addr': '10.0.0.1:40000',
      'src.workload': 'pod-a',
      'dst.hbone_addr': '10.0.0.2:8080',
      direction: 'outbound',
      bytes_sent: 5,
      bytes_recv: 7,
      duration: '12ms',
    });
    expect(records[1]).not.toHaveProperty('src.identity');
    expect(records[2]?.error).toBe('http status: 401 Unauthorized');
    expect(Object.keys(records[3] ?? {}).sort()).toEqual(
      ['direction', 'dst.addr', 'error', 'level', 'msg', 'src.addr', 'component', 'time'].sort(),
    );
  });

  it('above info, writes only the connections that ended in an error', () => {
    const { logs, records } = captureLogs('warn');
    const log = new AccessLog(logs.for('access'));
    const ends = {
      'src.addr': '10.0.0.1:40000',
      'dst.addr': '10.0.0.2:15008',
      direction: 'inbound' as const,
    };
    log.opened(ends);
    log.complete(ends, { bytesSent: 5, bytesRecv: 7, durationMs: 3 });
    log.complete(ends, { bytesSent: 0, bytesRecv: 0, durationMs: 1, error: 'connection refused' });
    expect(records.map(r => [r.level, r.msg, r.error])).toEqual([
      ['error', 'connection complete', 'connection refused'],
    ]);
  });
});
