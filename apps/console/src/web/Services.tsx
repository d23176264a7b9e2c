// Services of a namespace, each with its waypoint and the workloads it selects, and a service's
// detail page with its inbound metric charts (L4 from ztunnel, L7 from the waypoint).
import { Label, PageSection, Title } from '@patternfly/react-core';
import { useServices } from './api.ts';
import { MetricsCharts } from './Charts.tsx';
import { LoadState, NamespaceHeader } from './controls.tsx';

const serviceHref = (ns: string, name: string): string =>
  `/services?namespace=${encodeURIComponent(ns)}&name=${encodeURIComponent(name)}`;
const workloadHref = (ns: string, name: string): string =>
  `/workloads?namespace=${encodeURIComponent(ns)}&workload=${encodeURIComponent(name)}`;

export function Services({
  namespace,
  name,
  onNamespace,
}: {
  readonly namespace: string;
  readonly name: string | undefined;
  readonly onNamespace: (ns: string) => void;
}) {
  const { data, error, isPending } = useServices(namespace);
  const selected = name === undefined ? undefined : data?.find(s => s.name === name);
  if (name !== undefined) {
    return (
      <PageSection data-testid="service-detail" data-service={`${namespace}/${name}`}>
        <Title headingLevel="h1">
          Service {namespace}/{name}{' '}
          {selected?.waypoint !== undefined && (
            <Label color="green" isCompact>
              L7
            </Label>
          )}
        </Title>
        {selected !== undefined && (
          <p style={{ margin: '8px 0' }}>
            workloads:{' '}
            {selected.workloads.length === 0
              ? 'none selected'
              : selected.workloads.map((w, i) => (
                  <span key={w}>
                    {i > 0 && ', '}
                    <a href={workloadHref(namespace, w)}>{w}</a>
                  </span>
                ))}
            {selected.waypoint !== undefined && (
              <>
                {' '}
                · waypoint:{' '}
                <a
                  href={`/waypoints?namespace=${encodeURIComponent(selected.waypoint.namespace)}&name=${encodeURIComponent(selected.waypoint.name)}`}
                >
                  {selected.waypoint.namespace}/{selected.waypoint.name}
                </a>{' '}
                (labelled by {selected.waypoint.labelledBy})
              </>
            )}
          </p>
        )}
        <Title headingLevel="h2">Inbound metrics</Title>
        <MetricsCharts kind="service" namespace={namespace} name={name} />
      </PageSection>
    );
  }
  return (
    <>
      <NamespaceHeader title="Services" namespace={namespace} onNamespace={onNamespace} />
      <PageSection>
        <LoadState what="services" isPending={isPending} error={error} />
        <table className="console-table" aria-label="services" data-testid="services">
          <thead>
            <tr>
              <th>Name</th>
              <th>Workloads</th>
              <th>Waypoint</th>
            </tr>
          </thead>
          <tbody>
            {(data ?? []).map(s => (
              <tr key={s.name} data-testid={`service-${s.name}`}>
                <td>
                  <a href={serviceHref(s.namespace, s.name)}>{s.name}</a>
                </td>
                <td>{s.workloads.join(', ') || '—'}</td>
                <td>{s.waypoint === undefined ? '—' : `${s.waypoint.namespace}/${s.waypoint.name}`}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </PageSection>
    </>
  );
}
