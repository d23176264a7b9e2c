import { describe, expect, it } from 'vitest';
import { logTargets, mergeByTime, parseStampedLog, workloadLogs } from './logs.ts';
import { sampleSnapshot } from './testing/fixtures.ts';
import { recordedLogs } from './testing/sources.ts';

describe('merged logs', () => {
  it('reads the workload pods, every ztunnel and the waypoints serving it', () => {
    const targets = logTargets(sampleSnapshot(), 'sample', 'echo')!;
    expect(targets.map(t => `${t.source}:${t.pod}`)).toEqual([
      'app:echo-7d9f8b6c5-x1',
      'ztunnel:ztunnel-a',
      'ztunnel:ztunnel-b',
      'waypoint:waypoint-7d9f8b6c5-x1',
    ]);
    expect(logTargets(sampleSnapshot(), 'sample', 'nope')).toBeUndefined();
  });

  it('keeps ztunnel text-format lines by their src/dst workload and namespace', async () => {
    const text = [
      '2026-12-06T10:00:01Z 2026-12-06T10:00:01.000000Z\tinfo\taccess\tconnection complete\tsrc.addr=10.2.0.5:4000 src.workload=client-1 src.namespace=sample dst.addr=10.2.0.6:15008 dst.workload=echo-7d9f8b6c5-x1 dst.namespace=sample direction=inbound',
      '2026-12-06T10:00:02Z 2026-12-06T10:00:02.000000Z\tinfo\taccess\tconnection complete\tsrc.addr=10.2.0.5:4001 src.workload=client-1 src.namespace=sample dst.workload=echo-7d9f8b6c5-x1 dst.namespace=other',
      '2026-12-06T10:00:03Z 2026-12-06T10:00:03.000000Z\tinfo\taccess\tconnection complete\tdst.workload="echo" dst.namespace=sample',
    ].join('\n');
    const view = (await workloadLogs(
      sampleSnapshot(),
      (_ns, pod) => Promise.resolve(pod === 'ztunnel-a' ? text : ''),
      'sample',
      'echo',
      { sinceSeconds: 60, tailLines: 10 },
    ))!;
    expect(view.lines.map(l => l.time)).toEqual(['2026-12-06T10:00:01Z', '2026-12-06T10:00:03Z']);
  });

  it('orders lines by the kubelet time, with nanoseconds, and keeps a line without a time after the previous one', () => {
    const a = parseStampedLog(
      '2026-12-06T10:00:00.5Z a1\n  continued\n2026-12-06T10:00:02Z a2\n',
      'app',
      'p',
    );
    const b = parseStampedLog(
      '2026-12-06T10:00:00.000000002Z b1\n2026-12-06T10:00:01.999999999Z b2',
      'ztunnel',
      'z',
    );
    expect(mergeByTime([a, b]).map(l => l.text)).toEqual(['b1', 'a1', '  continued', 'b2', 'a2']);
  });

  it('merges the app line, the ztunnel line and the waypoint line of one connection; other workloads and unreadable pods are left out', async () => {
    const view = (await workloadLogs(sampleSnapshot(), recordedLogs(), 'sample', 'echo', {
      sinceSeconds: 300,
      tailLines: 100,
    }))!;
    expect(view.lines.map(l => `${l.source}:${l.text.slice(0, 10)}`)).toEqual([
      'app:echo liste',
      'ztunnel:{"level":3',
      'waypoint:{"componen',
      'app:GET /hello',
    ]);
    expect(view.lines[1]!.text).toContain('"dst.workload":"echo-7d9f8b6c5-x1"');
    expect(view.errors).toEqual([
      { source: 'ztunnel', pod: 'ztunnel-b', message: 'the node is unreachable' },
    ]);
  });
});
