// The workloads of a namespace, virtualised: only the rows in view are in the DOM, so a namespace
// with thousands of workloads stays responsive.
import { PageSection } from '@patternfly/react-core';
import { useVirtualizer } from '@tanstack/react-virtual';
import { useRef } from 'react';
import { useWorkloads } from './api.ts';
import { ModeBadge } from './badges.tsx';
import { LoadState, NamespaceHeader } from './controls.tsx';

const ROW_HEIGHT = 40;

export function Workloads({
  namespace,
  onNamespace,
}: {
  readonly namespace: string;
  readonly onNamespace: (ns: string) => void;
}) {
  const { data, error, isPending } = useWorkloads(namespace);
  const scroller = useRef<HTMLDivElement>(null);
  const rows = data ?? [];
  const virtualizer = useVirtualizer({
    count: rows.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 10,
  });
  return (
    <>
      <NamespaceHeader title="Workloads" namespace={namespace} onNamespace={onNamespace} />
      <PageSection>
        <LoadState what="workloads" isPending={isPending} error={error} />
        <div role="table" aria-label="workloads" data-testid="workloads" data-count={rows.length}>
          <div role="row" className="console-row console-head">
            <span role="columnheader">Name</span>
            <span role="columnheader">Kind</span>
            <span role="columnheader">Pods</span>
            <span role="columnheader">Mesh</span>
            <span role="columnheader">Waypoint</span>
          </div>
          <div
            ref={scroller}
            style={{ height: 'calc(100vh - 260px)', minHeight: 300, overflow: 'auto' }}
            data-testid="workloads-scroller"
          >
            <div style={{ height: virtualizer.getTotalSize(), position: 'relative' }}>
              {virtualizer.getVirtualItems().map(item => {
                const w = rows[item.index];
                if (w === undefined) return null;
                return (
                  <div
                    key={`${w.kind}/${w.name}`}
                    role="row"
                    className="console-row"
                    data-testid={`workload-${w.name}`}
                    style={{
                      position: 'absolute',
                      top: 0,
                      left: 0,
                      right: 0,
                      height: ROW_HEIGHT,
                      transform: `translateY(${item.start}px)`,
                    }}
                  >
                    <span role="cell">
                      <a
                        href={`/workloads?namespace=${encodeURIComponent(w.namespace)}&workload=${encodeURIComponent(w.name)}`}
                      >
                        {w.name}
                      </a>
                    </span>
                    <span role="cell">{w.kind}</span>
                    <span role="cell">{w.pods}</span>
                    <span role="cell">
                      <ModeBadge mode={w.mode} />
                      {w.isZtunnel && ' ztunnel'}
                      {w.isWaypoint && ' waypoint'}
                    </span>
                    <span role="cell" data-testid="waypoint-link">
                      {w.waypoint !== undefined ? (
                        <a
                          href={`/waypoints?namespace=${encodeURIComponent(w.waypoint.namespace)}&name=${encodeURIComponent(w.waypoint.name)}`}
                          title={`labelled by ${w.waypoint.labelledBy}`}
                        >
                          {w.waypoint.namespace}/{w.waypoint.name}
                        </a>
                      ) : (
                        '—'
                      )}
                    </span>
                  </div>
                );
              })}
            </div>
          </div>
        </div>
      </PageSection>
    </>
  );
}
