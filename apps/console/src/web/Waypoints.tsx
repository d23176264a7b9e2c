// Waypoints (Kiali's waypoint detail): each waypoint with its Programmed status and proxies, and
// the xDS sync state of its proxies (istiod's, as `istioctl proxy-status`), and tabs for the services
// and workloads it serves, each with what enrols it ("labelled by").
import { Alert, Label, PageSection, Spinner, Tab, TabTitleText, Tabs, Title } from '@patternfly/react-core';
import { useState } from 'react';
import type { WaypointView } from '../model.ts';
import { useWaypoints } from './api.ts';

function Status({ wp }: { readonly wp: WaypointView }) {
  const ok = wp.programmed?.status === 'True';
  return (
    <Label
      color={ok ? 'green' : 'orange'}
      isCompact
      data-testid="waypoint-programmed"
      data-status={wp.programmed?.status ?? ''}
    >
      {ok
        ? 'Programmed'
        : `Not programmed${wp.programmed?.reason === undefined ? '' : `: ${wp.programmed.reason}`}`}
    </Label>
  );
}

const SYNC_COLOR: Readonly<Record<string, 'green' | 'orange' | 'red' | 'grey'>> = {
  SYNCED: 'green',
  STALE: 'orange',
  ERROR: 'red',
  'NOT SENT': 'grey',
};
/** istioctl's order of the xDS types (CDS, LDS, EDS, RDS, ECDS, SDS), others after by name. */
const TYPE_ORDER = ['CDS', 'LDS', 'EDS', 'RDS', 'ECDS', 'SDS'];
const typeRank = (t: string): number => (TYPE_ORDER.includes(t) ? TYPE_ORDER.indexOf(t) : TYPE_ORDER.length);

/** Its proxies' xDS sync state per type, as `istioctl proxy-status` shows it, from istiod. */
function ProxyStatus({ wp }: { readonly wp: WaypointView }) {
  const sync = wp.sync;
  if (sync === undefined) return null;
  const types = [...new Set(sync.proxies.flatMap(p => Object.keys(p.types)))].sort(
    (a, b) => typeRank(a) - typeRank(b) || a.localeCompare(b),
  );
  return (
    <div data-testid="waypoint-proxy-status" style={{ margin: '8px 0 16px' }}>
      <Title headingLevel="h3">Proxy status (xDS, from istiod)</Title>
      {sync.error !== undefined && (
        <Alert variant="warning" title="xDS sync state unavailable" isInline data-testid="sync-error">
          {sync.error.message}
        </Alert>
      )}
      <table className="console-table" aria-label="proxy status">
        <thead>
          <tr>
            <th>Proxy</th>
            {types.map(t => (
              <th key={t}>{t}</th>
            ))}
            <th>istiod</th>
          </tr>
        </thead>
        <tbody>
          {sync.proxies.map(p => (
            <tr key={p.pod} data-testid="proxy-sync" data-pod={p.pod} data-connected={String(p.connected)}>
              <td>{p.pod}</td>
              {types.map(t => {
                const state = p.types[t];
                return (
                  <td key={t} data-testid="proxy-sync-type" data-type={t} data-state={state ?? 'IGNORED'}>
                    {state === undefined ? (
                      <Label isCompact color="blue">
                        IGNORED
                      </Label>
                    ) : (
                      <Label isCompact color={SYNC_COLOR[state] ?? 'grey'}>
                        {state}
                      </Label>
                    )}
                  </td>
                );
              })}
              <td>{p.connected ? p.istiod : 'not connected to any istiod'}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Detail({ wp }: { readonly wp: WaypointView }) {
  const [tab, setTab] = useState<string | number>('services');
  return (
    <PageSection data-testid="waypoint-detail" data-waypoint={`${wp.namespace}/${wp.name}`}>
      <Title headingLevel="h2">
        {wp.namespace}/{wp.name}{' '}
        <Label color="green" isCompact>
          L7
        </Label>{' '}
        <Status wp={wp} />
      </Title>
      <p style={{ margin: '8px 0' }}>
        For: {wp.waypointFor} · proxies: {wp.readyPods}/{wp.pods} ready
        {wp.programmed?.message === undefined ? '' : ` · ${wp.programmed.message}`}
      </p>
      <ProxyStatus wp={wp} />
      <Tabs
        activeKey={tab}
        onSelect={(_e, k) => {
          setTab(k);
        }}
        aria-label="enrolled"
      >
        <Tab
          eventKey="services"
          title={<TabTitleText>Enrolled services ({wp.services.length})</TabTitleText>}
          data-testid="tab-services"
        >
          <table className="console-table" aria-label="enrolled services" data-testid="enrolled-services">
            <thead>
              <tr>
                <th>Namespace</th>
                <th>Service</th>
                <th>Labelled by</th>
              </tr>
            </thead>
            <tbody>
              {wp.services.map(s => (
                <tr
                  key={`${s.namespace}/${s.name}`}
                  data-testid={`enrolled-service-${s.name}`}
                  data-labelled-by={s.labelledBy}
                >
                  <td>{s.namespace}</td>
                  <td>{s.name}</td>
                  <td>{s.labelledBy}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {wp.services.length === 0 && <p>No service uses this waypoint.</p>}
        </Tab>
        <Tab
          eventKey="workloads"
          title={<TabTitleText>Enrolled workloads ({wp.workloads.length})</TabTitleText>}
          data-testid="tab-workloads"
        >
          <table className="console-table" aria-label="enrolled workloads" data-testid="enrolled-workloads">
            <thead>
              <tr>
                <th>Namespace</th>
                <th>Workload</th>
                <th>Kind</th>
                <th>Pods</th>
                <th>Labelled by</th>
              </tr>
            </thead>
            <tbody>
              {wp.workloads.map(w => (
                <tr
                  key={`${w.namespace}/${w.kind}/${w.name}`}
                  data-testid={`enrolled-workload-${w.name}`}
                  data-labelled-by={w.labelledBy}
                >
                  <td>{w.namespace}</td>
                  <td>
                    <a
                      href={`/workloads?namespace=${encodeURIComponent(w.namespace)}&workload=${encodeURIComponent(w.name)}`}
                    >
                      {w.name}
                    </a>
                  </td>
                  <td>{w.kind}</td>
                  <td>{w.pods}</td>
                  <td>{w.labelledBy}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {wp.workloads.length === 0 && <p>No workload uses this waypoint.</p>}
        </Tab>
      </Tabs>
    </PageSection>
  );
}

export function Waypoints({
  selected,
  onSelect,
}: {
  readonly selected: { readonly namespace: string; readonly name: string } | undefined;
  readonly onSelect: (namespace: string, name: string) => void;
}) {
  const { data, error, isPending } = useWaypoints();
  if (isPending) return <Spinner aria-label="loading waypoints" />;
  if (error !== null)
    return (
      <Alert variant="danger" title="Cannot load waypoints" isInline>
        {error.message}
      </Alert>
    );
  const current =
    selected === undefined
      ? undefined
      : data.find(w => w.namespace === selected.namespace && w.name === selected.name);
  return (
    <>
      <PageSection>
        <Title headingLevel="h1">Waypoints</Title>
        {data.length === 0 && <p>No waypoint (no Gateway of class istio-waypoint).</p>}
        <table className="console-table" aria-label="waypoints" data-testid="waypoints">
          <thead>
            <tr>
              <th>Namespace</th>
              <th>Name</th>
              <th>Status</th>
              <th>Services</th>
              <th>Workloads</th>
            </tr>
          </thead>
          <tbody>
            {data.map(w => (
              <tr key={`${w.namespace}/${w.name}`} data-testid={`waypoint-${w.namespace}-${w.name}`}>
                <td>{w.namespace}</td>
                <td>
                  <a
                    href={`/waypoints?namespace=${encodeURIComponent(w.namespace)}&name=${encodeURIComponent(w.name)}`}
                    onClick={e => {
                      e.preventDefault();
                      onSelect(w.namespace, w.name);
                    }}
                  >
                    {w.name}
                  </a>
                </td>
                <td>
                  <Status wp={w} />
                </td>
                <td>{w.services.length}</td>
                <td>{w.workloads.length}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </PageSection>
      {selected !== undefined && current === undefined && (
        <PageSection>
          <Alert variant="warning" title={`No waypoint ${selected.namespace}/${selected.name}`} isInline />
        </PageSection>
      )}
      {current !== undefined && <Detail key={`${current.namespace}/${current.name}`} wp={current} />}
    </>
  );
}
