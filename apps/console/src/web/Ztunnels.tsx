// The ztunnels, one per node, and a ztunnel's detail page (Kiali's ztunnel tab, what
// `istioctl ztunnel-config` shows): the workloads, services, policies and certificates of its
// `/config_dump`, with namespace, this-node and search filters applied by the backend, and a Metrics
// tab with the ztunnel's own connections and bytes.
import {
  Alert,
  Flex,
  FlexItem,
  FormSelect,
  FormSelectOption,
  Label,
  PageSection,
  SearchInput,
  Spinner,
  Tab,
  TabTitleText,
  Tabs,
  Title,
} from '@patternfly/react-core';
import { useState } from 'react';
import type { ReactNode } from 'react';
import type { ZtunnelConfigView } from '../model.ts';
import { useOverview, useZtunnel, useZtunnels } from './api.ts';
import { MetricsCharts } from './Charts.tsx';
import { FlexCheckbox } from './controls.tsx';
import { ztunnelHref } from './WorkloadDetail.tsx';

function Table({
  label,
  head,
  rows,
}: {
  readonly label: string;
  readonly head: readonly string[];
  readonly rows: readonly { readonly key: string; readonly cells: readonly ReactNode[] }[];
}) {
  return (
    <table
      className="console-table"
      aria-label={label}
      data-testid={`ztunnel-${label}`}
      data-count={rows.length}
    >
      <thead>
        <tr>
          {head.map(h => (
            <th key={h}>{h}</th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rows.map(r => (
          <tr key={r.key} data-testid={`ztunnel-${label}-row`} data-key={r.key}>
            {r.cells.map((c, i) => (
              <td key={i}>{c}</td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function DumpTabs({ view }: { readonly view: ZtunnelConfigView }) {
  const { pod } = view;
  const [tab, setTab] = useState<string | number>('workloads');
  const count = (n: number, total: number): string => (n === total ? `${n}` : `${n} of ${total}`);
  return (
    <Tabs
      activeKey={tab}
      onSelect={(_e, k) => {
        setTab(k);
      }}
      aria-label="config dump"
    >
      <Tab
        eventKey="workloads"
        title={<TabTitleText>Workloads ({count(view.workloads.length, view.totals.workloads)})</TabTitleText>}
      >
        <Table
          label="workloads"
          head={['Namespace', 'Pod', 'Workload', 'Address', 'Node', 'Protocol', 'Waypoint', 'Status']}
          rows={view.workloads.map(w => ({
            key: `${w.namespace}/${w.name}`,
            cells: [
              w.namespace,
              w.name,
              w.workloadName,
              w.ips.join(', '),
              w.node,
              <Label key="p" isCompact color={w.protocol === 'HBONE' ? 'blue' : 'grey'}>
                {w.protocol}
              </Label>,
              w.waypoint ?? '—',
              w.status,
            ],
          }))}
        />
      </Tab>
      <Tab
        eventKey="services"
        title={<TabTitleText>Services ({count(view.services.length, view.totals.services)})</TabTitleText>}
      >
        <Table
          label="services"
          head={['Namespace', 'Service', 'VIPs', 'Ports', 'Endpoints', 'Waypoint']}
          rows={view.services.map(s => ({
            key: `${s.namespace}/${s.name}`,
            cells: [
              s.namespace,
              s.name,
              s.vips.join(', '),
              s.ports.join(', '),
              `${s.healthyEndpoints}/${s.endpoints}`,
              s.waypoint ?? '—',
            ],
          }))}
        />
      </Tab>
      <Tab
        eventKey="policies"
        title={<TabTitleText>Policies ({count(view.policies.length, view.totals.policies)})</TabTitleText>}
      >
        <Table
          label="policies"
          head={['Namespace', 'Policy', 'Scope', 'Action', 'Rules']}
          rows={view.policies.map(p => ({
            key: `${p.namespace}/${p.name}`,
            cells: [p.namespace, p.name, p.scope, `${p.action}${p.dryRun ? ' (dry run)' : ''}`, p.rules],
          }))}
        />
      </Tab>
      <Tab
        eventKey="certificates"
        title={
          <TabTitleText>
            Certificates ({count(view.certificates.length, view.totals.certificates)})
          </TabTitleText>
        }
      >
        <Table
          label="certificates"
          head={['Identity', 'State', 'Serial', 'Valid from', 'Expires', 'Chain / roots']}
          rows={view.certificates.map(c => ({
            key: c.identity,
            cells: [
              c.identity,
              c.state,
              c.serialNumber,
              c.validFrom,
              c.expirationTime,
              `${c.chain} / ${c.roots}`,
            ],
          }))}
        />
      </Tab>
      <Tab eventKey="metrics" title={<TabTitleText>Metrics</TabTitleText>}>
        {tab === 'metrics' && <MetricsCharts kind="ztunnel" namespace={pod.namespace} name={pod.name} />}
      </Tab>
    </Tabs>
  );
}

function Detail({ namespace, name }: { readonly namespace: string; readonly name: string }) {
  const overview = useOverview();
  const [filterNs, setFilterNs] = useState('');
  const [thisNode, setThisNode] = useState(false);
  const [search, setSearch] = useState('');
  const filter = {
    namespace: filterNs === '' ? undefined : filterNs,
    thisNode,
    search: search === '' ? undefined : search,
  };
  const { data, error, isPending } = useZtunnel(namespace, name, filter);
  return (
    <PageSection data-testid="ztunnel-detail" data-ztunnel={`${namespace}/${name}`}>
      <Title headingLevel="h1">
        ztunnel {name}{' '}
        <Label color="blue" isCompact>
          L4
        </Label>
      </Title>
      {data !== undefined && (
        <p style={{ margin: '8px 0' }} data-testid="ztunnel-node" data-node={data.pod.node ?? ''}>
          node: {data.pod.node ?? '—'} · {data.pod.ready ? 'ready' : 'not ready'} · from its /config_dump
          (port 15000)
        </p>
      )}
      <Flex style={{ margin: '8px 0' }} alignItems={{ default: 'alignItemsCenter' }}>
        <FlexItem>
          <FormSelect
            value={filterNs}
            onChange={(_e, v) => {
              setFilterNs(v);
            }}
            aria-label="filter namespace"
            style={{ minWidth: 200 }}
          >
            <FormSelectOption value="" label="All namespaces" />
            {(overview.data?.namespaces ?? []).map(ns => (
              <FormSelectOption key={ns.name} value={ns.name} label={ns.name} />
            ))}
          </FormSelect>
        </FlexItem>
        <FlexCheckbox
          id="this-node"
          label="Only workloads on this node"
          checked={thisNode}
          onChange={setThisNode}
        />
        <FlexItem>
          <SearchInput
            aria-label="search"
            placeholder="Name, address or identity"
            value={search}
            onChange={(_e, v) => {
              setSearch(v);
            }}
            onClear={() => {
              setSearch('');
            }}
          />
        </FlexItem>
      </Flex>
      {isPending && <Spinner aria-label="loading the config dump" />}
      {error !== null && (
        <Alert variant="danger" title="Cannot load the ztunnel" isInline>
          {error.message}
        </Alert>
      )}
      {data?.error !== undefined && (
        <>
          <Alert variant="warning" title="Config dump unavailable" isInline data-testid="ztunnel-error">
            {data.error.message}
          </Alert>
          <Title headingLevel="h2" style={{ marginTop: 16 }}>
            Metrics
          </Title>
          <MetricsCharts kind="ztunnel" namespace={namespace} name={name} />
        </>
      )}
      {data !== undefined && data.error === undefined && <DumpTabs view={data} />}
    </PageSection>
  );
}

export function Ztunnels({
  selected,
}: {
  readonly selected: { readonly namespace: string; readonly name: string } | undefined;
}) {
  const { data, error, isPending } = useZtunnels();
  if (selected !== undefined) return <Detail key={`${selected.namespace}/${selected.name}`} {...selected} />;
  return (
    <>
      <PageSection>
        <Title headingLevel="h1">ztunnels</Title>
        <p>One per node: each carries the L4 traffic of the node's ambient pods.</p>
      </PageSection>
      <PageSection>
        {isPending && <Spinner aria-label="loading ztunnels" />}
        {error !== null && (
          <Alert variant="danger" title="Cannot load ztunnels" isInline>
            {error.message}
          </Alert>
        )}
        <table className="console-table" aria-label="ztunnels" data-testid="ztunnels">
          <thead>
            <tr>
              <th>Node</th>
              <th>ztunnel</th>
              <th>Ready</th>
            </tr>
          </thead>
          <tbody>
            {(data ?? []).map(z => (
              <tr key={z.name} data-testid={`ztunnel-${z.name}`}>
                <td>{z.node ?? '—'}</td>
                <td>
                  <a href={ztunnelHref(z)}>{z.name}</a>
                </td>
                <td>{z.ready ? 'yes' : 'no'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </PageSection>
    </>
  );
}
