// One workload: its mesh mode, redirection and waypoint, its pods (node, HBONE or TCP, and a link
// to that node's ztunnel), a Metrics tab (L4 and L7 series apart), the Logs tab that merges its app log
// with the ztunnel lines about it (from every node) and its waypoints' access-log lines, ordered by
// time, colour-coded by source, with a toggle per source, and the Traces tab: the waypoints' spans
// about it with each end linked to its workload page.
import {
  Alert,
  Checkbox,
  Flex,
  FlexItem,
  PageSection,
  Spinner,
  Tab,
  TabTitleText,
  Tabs,
  Title,
} from '@patternfly/react-core';
import { useState } from 'react';
import type { LogSource, WorkloadRef } from '../model.ts';
import { useLogs, useTraces, useWorkloadDetail, useWorkloads } from './api.ts';
import { ModeBadge } from './badges.tsx';
import { MetricsCharts } from './Charts.tsx';

export const ztunnelHref = (z: { readonly namespace: string; readonly name: string }): string =>
  `/ztunnels?namespace=${encodeURIComponent(z.namespace)}&name=${encodeURIComponent(z.name)}`;

function Pods({ namespace, workload }: { readonly namespace: string; readonly workload: string }) {
  const { data } = useWorkloadDetail(namespace, workload);
  if (data === undefined) return null;
  return (
    <table className="console-table" aria-label="pods" data-testid="pods" style={{ marginBottom: 12 }}>
      <thead>
        <tr>
          <th>Pod</th>
          <th>Node</th>
          <th>Address</th>
          <th>Protocol</th>
          <th>ztunnel</th>
        </tr>
      </thead>
      <tbody>
        {data.pods.map(p => (
          <tr key={p.name} data-testid={`pod-${p.name}`} data-protocol={p.protocol}>
            <td>
              {p.name} {p.ready ? '' : '(not ready)'}
            </td>
            <td>{p.node ?? '—'}</td>
            <td>{p.ip ?? '—'}</td>
            <td>{p.protocol}</td>
            <td>
              {p.ztunnel === undefined ? (
                'none on this node'
              ) : (
                <a href={ztunnelHref(p.ztunnel)} data-testid="ztunnel-link">
                  {p.ztunnel.name}
                </a>
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export const LOG_COLORS: Record<LogSource, string> = {
  app: '#151515',
  ztunnel: '#0066cc',
  waypoint: '#3e8635',
};
const SOURCES: readonly LogSource[] = ['app', 'ztunnel', 'waypoint'];

function Logs({ namespace, workload }: { readonly namespace: string; readonly workload: string }) {
  const [shown, setShown] = useState<ReadonlySet<LogSource>>(new Set(SOURCES));
  const { data, error, isPending } = useLogs(namespace, workload, true);
  if (isPending) return <Spinner aria-label="loading logs" />;
  if (error !== null)
    return (
      <Alert variant="danger" title="Cannot load the logs" isInline>
        {error.message}
      </Alert>
    );
  const lines = data.lines.filter(l => shown.has(l.source));
  return (
    <>
      <Flex style={{ margin: '8px 0' }}>
        {SOURCES.map(s => (
          <FlexItem key={s}>
            <Checkbox
              id={`log-${s}`}
              label={<span style={{ color: LOG_COLORS[s], fontWeight: 600 }}>{s}</span>}
              isChecked={shown.has(s)}
              onChange={(_e, checked) => {
                const next = new Set(shown);
                if (checked) next.add(s);
                else next.delete(s);
                setShown(next);
              }}
            />
          </FlexItem>
        ))}
      </Flex>
      {data.errors.map(e => (
        <Alert
          key={e.pod}
          variant="warning"
          isInline
          isPlain
          title={`Cannot read the log of ${e.source} ${e.pod}`}
        >
          {e.message}
        </Alert>
      ))}
      <div className="console-logs" data-testid="logs" data-count={lines.length}>
        {lines.length === 0 && <div>No log lines in the last 5 minutes.</div>}
        {lines.map((l, i) => (
          <div
            key={i}
            data-testid="log-line"
            data-source={l.source}
            data-pod={l.pod}
            style={{ color: LOG_COLORS[l.source] }}
          >
            <span className="console-log-time">{l.time}</span>{' '}
            <span className="console-log-source">
              [{l.source} {l.pod}]
            </span>{' '}
            {l.text}
          </div>
        ))}
      </div>
    </>
  );
}

const workloadHref = (w: WorkloadRef): string =>
  `/workloads?namespace=${encodeURIComponent(w.namespace)}&workload=${encodeURIComponent(w.name)}`;

function WorkloadLink({ w, role }: { readonly w: WorkloadRef | undefined; readonly role: string }) {
  if (w === undefined) return <span style={{ color: '#6a6e73' }}>unknown</span>;
  return (
    <a href={workloadHref(w)} data-testid={`span-${role}`} data-workload={`${w.namespace}/${w.name}`}>
      {w.namespace}/{w.name}
    </a>
  );
}

/** The waypoints' spans about this workload, each end linked to its workload page. */
function Traces({ namespace, workload }: { readonly namespace: string; readonly workload: string }) {
  const { data, error } = useTraces(namespace, workload);
  if (error !== null)
    return (
      <Alert variant="danger" title="Cannot load traces" isInline>
        {error.message}
      </Alert>
    );
  if (data === undefined) return <Spinner aria-label="loading traces" />;
  return (
    <div data-testid="traces" data-count={data.spans.length} style={{ marginTop: 8 }}>
      {data.tracingUnavailable !== undefined && (
        <Alert
          variant="warning"
          title="Traces unavailable"
          isInline
          data-testid="tracing-unavailable"
          data-code={data.tracingUnavailable.code}
        >
          {data.tracingUnavailable.message}
        </Alert>
      )}
      {data.note !== undefined && <p>{data.note}</p>}
      {data.services.length > 0 && data.tracingUnavailable === undefined && (
        <p style={{ fontSize: 12, color: '#6a6e73' }}>
          Spans of the waypoints {data.services.join(', ')} (only waypoints produce spans; ztunnel is L4),
          with each end resolved to its workload from the span's addresses.
        </p>
      )}
      {data.spans.length > 0 && (
        <table className="console-table" aria-label="spans">
          <thead>
            <tr>
              <th>Time</th>
              <th>Request</th>
              <th>Status</th>
              <th>Duration</th>
              <th>Source</th>
              <th>Destination</th>
              <th>Proxy</th>
              <th>Trace</th>
            </tr>
          </thead>
          <tbody>
            {data.spans.map(s => (
              <tr
                key={`${s.traceId}/${s.spanId}`}
                data-testid="span"
                data-span={s.spanId}
                data-error={String(s.error)}
              >
                <td>{new Date(s.startMs).toISOString().slice(11, 23)}</td>
                <td>
                  {s.method ?? ''} {s.url ?? s.operation}
                </td>
                <td style={{ color: s.error || (s.statusCode ?? 0) >= 500 ? '#c9190b' : undefined }}>
                  {s.statusCode ?? ''}
                </td>
                <td>{s.durationMs.toFixed(1)} ms</td>
                <td>
                  <WorkloadLink w={s.source} role="source" />
                </td>
                <td>
                  <WorkloadLink w={s.destination} role="destination" />
                </td>
                <td>{s.proxy}</td>
                <td>
                  <code>{s.traceId.slice(0, 16)}</code>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {data.spans.length === 0 && data.tracingUnavailable === undefined && data.note === undefined && (
        <p>No span about this workload in the last hour.</p>
      )}
    </div>
  );
}

export function WorkloadDetail({
  namespace,
  workload,
}: {
  readonly namespace: string;
  readonly workload: string;
}) {
  const [tab, setTab] = useState<string | number>('logs');
  const { data } = useWorkloads(namespace);
  const w = data?.find(x => x.name === workload);
  return (
    <PageSection data-testid="workload-detail">
      <Title headingLevel="h1">
        {namespace}/{workload} {w !== undefined && <ModeBadge mode={w.mode} />}
      </Title>
      {w !== undefined && (
        <p style={{ margin: '8px 0' }}>
          {w.kind} · pods: {w.pods} · redirection: {w.redirected ? 'enabled (HBONE)' : 'not installed (TCP)'}
          {w.waypoint !== undefined && (
            <>
              {' '}
              · waypoint:{' '}
              <a
                href={`/waypoints?namespace=${encodeURIComponent(w.waypoint.namespace)}&name=${encodeURIComponent(w.waypoint.name)}`}
              >
                {w.waypoint.namespace}/{w.waypoint.name}
              </a>{' '}
              (labelled by {w.waypoint.labelledBy})
            </>
          )}
        </p>
      )}
      <Pods namespace={namespace} workload={workload} />
      <Tabs
        activeKey={tab}
        onSelect={(_e, k) => {
          setTab(k);
        }}
        aria-label="workload"
      >
        <Tab eventKey="logs" title={<TabTitleText>Logs</TabTitleText>}>
          {tab === 'logs' && <Logs namespace={namespace} workload={workload} />}
        </Tab>
        <Tab eventKey="metrics" title={<TabTitleText>Metrics</TabTitleText>}>
          {tab === 'metrics' && <MetricsCharts kind="workload" namespace={namespace} name={workload} />}
        </Tab>
        <Tab eventKey="traces" title={<TabTitleText>Traces</TabTitleText>}>
          {tab === 'traces' && <Traces namespace={namespace} workload={workload} />}
        </Tab>
      </Tabs>
    </PageSection>
  );
}
