import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '@ambient-mesh/runtime';
import { issue, SourceIssueCode } from '../wds/source-issues.ts';
import { httpError, settle } from '../testing/status-writer.ts';
import { systemTimers as timers } from '../xds/push-queue.ts';
import {
  SourceStatusWriter,
  sourceConditions,
  sourceStatusHandlers,
  type SourceStatus,
} from './source-status.ts';

interface Call {
  readonly key: string;
  readonly status: SourceStatus;
  resolve(): void;
  reject(err: unknown): void;
}

function heldPatcher(): {
  patch: ConstructorParameters<typeof SourceStatusWriter>[0]['patch'];
  calls: Call[];
} {
  const calls: Call[] = [];
  return {
    calls,
    patch: (plural, namespace, name, status) =>
      new Promise<boolean>((resolve, reject) => {
        calls.push({
          key: `${plural}/${namespace}/${name}`,
          status,
          resolve: () => {
            resolve(true);
          },
          reject,
        });
      }),
  };
}

describe('sourceConditions', () => {
  it('is empty for an applied object, and Invalid or AddressConflict with every issue otherwise', () => {
    expect(sourceConditions([], 3)).toEqual([]);
    const invalid = sourceConditions(
      [
        issue(SourceIssueCode.INVALID_HOST, 'spec.hosts[0]', '"x y" is bad'),
        issue(SourceIssueCode.INVALID_PORT, 'spec.ports[0].number', '0'),
      ],
      3,
    );
    expect(invalid).toEqual([
      {
        type: 'ZtunnelAccepted',
        status: 'False',
        reason: 'Invalid',
        message: 'spec.hosts[0]: "x y" is bad; spec.ports[0].number: 0',
        observedGeneration: 3,
      },
    ]);
    expect(
      sourceConditions([issue(SourceIssueCode.ADDRESS_CONFLICT, 'spec.addresses', 'taken')], undefined)[0]
        ?.reason,
    ).toBe('AddressConflict');
  });
});

describe('SourceStatusWriter', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('writes the latest status per object after the one in flight, keeping a queued address decision', async () => {
    const held = heldPatcher();
    const writer = new SourceStatusWriter({ patch: held.patch, logger: silentLogger(), timers });
    const addresses = [{ host: 'a.example.com', value: '240.240.0.1' }];
    writer.enqueue('serviceentries', 'demo', 'se', { conditions: [], addresses });
    writer.enqueue('serviceentries', 'demo', 'se', { conditions: [] });
    writer.enqueue('serviceentries', 'demo', 'se', {
      conditions: sourceConditions([issue(SourceIssueCode.INVALID_HOST, 'spec.hosts[0]', 'bad')], 1),
    });
    expect(held.calls).toHaveLength(1);
    held.calls[0]!.resolve();
    await settle();
    expect(held.calls).toHaveLength(2);
    expect(held.calls[1]!.status.addresses).toEqual(addresses);
    expect(held.calls[1]!.status.conditions[0]?.reason).toBe('Invalid');
    held.calls[1]!.resolve();
    await settle();
    expect(writer.pending).toBe(0);
  });

  it('retries a transient failure with back-off and gives up on a permanent one', async () => {
    const held = heldPatcher();
    const writer = new SourceStatusWriter({
      patch: held.patch,
      logger: silentLogger(),
      timers,
      initialBackoffMs: 100,
    });
    writer.enqueue('workloadentries', 'demo', 'vm', { conditions: [] });
    held.calls[0]!.reject(httpError(503));
    await settle();
    expect(held.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(100);
    expect(held.calls).toHaveLength(2);
    held.calls[1]!.reject(httpError(404));
    await settle();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(held.calls).toHaveLength(2);
    expect(writer.pending).toBe(0);
  });

  it('queues nothing for an applied object that carries no condition of ours', () => {
    const held = heldPatcher();
    const { handlers } = sourceStatusHandlers({ patch: held.patch, logger: silentLogger(), timers });
    handlers.onSourceStatus?.({
      kind: 'WorkloadEntry',
      object: { metadata: { name: 'vm', namespace: 'demo' } },
      issues: [],
    });
    expect(held.calls).toHaveLength(0);
    handlers.onSourceStatus?.({
      kind: 'ServiceEntry',
      object: { metadata: { name: 'se', namespace: 'demo' }, spec: { hosts: ['a.example.com'] } },
      issues: [],
      addresses: [{ host: 'a.example.com', value: '240.240.0.1' }],
    });
    expect(held.calls.map(c => c.key)).toEqual(['serviceentries/demo/se']);
  });

  it('forgets a deleted object: no retry after its back-off, and nothing replayed for a new leader', async () => {
    const held = heldPatcher();
    let leader = true;
    const { handlers, replay } = sourceStatusHandlers({
      patch: held.patch,
      logger: silentLogger(),
      timers,
      isLeader: () => leader,
    });
    const invalid = (name: string) => ({
      kind: 'ServiceEntry' as const,
      object: { metadata: { name, namespace: 'demo', generation: 1 }, spec: { hosts: ['bad host'] } },
      issues: [issue(SourceIssueCode.INVALID_HOST, 'spec.hosts[0]', 'bad')],
    });
    handlers.onSourceStatus?.(invalid('gone'));
    handlers.onSourceStatus?.(invalid('kept'));
    expect(held.calls.map(c => c.key)).toEqual(['serviceentries/demo/gone', 'serviceentries/demo/kept']);
    // The first write fails transiently; the object is deleted during the back-off.
    held.calls[0]!.reject(httpError(503));
    held.calls[1]!.resolve();
    await settle();
    handlers.onSourceDeleted?.('ServiceEntry', 'demo', 'gone');
    await vi.advanceTimersByTimeAsync(10_000);
    expect(held.calls).toHaveLength(2);
    // Another replica led meanwhile; this one takes over and replays only what still exists.
    leader = false;
    handlers.onSourceStatus?.(invalid('gone'));
    handlers.onSourceDeleted?.('ServiceEntry', 'demo', 'gone');
    leader = true;
    replay();
    expect(held.calls.slice(2).map(c => c.key)).toEqual(['serviceentries/demo/kept']);
  });
});
