import {
  Alert,
  Card,
  CardBody,
  CardTitle,
  Gallery,
  PageSection,
  Spinner,
  Title,
} from '@patternfly/react-core';
import { useOverview } from './api.ts';
import { AmbientBadge } from './badges.tsx';
import { ztunnelHref } from './WorkloadDetail.tsx';

export function Overview({ onOpenNamespace }: { readonly onOpenNamespace: (ns: string) => void }) {
  const { data, error, isPending } = useOverview();
  if (isPending) return <Spinner aria-label="loading the overview" />;
  if (error !== null)
    return (
      <Alert variant="danger" title="Cannot load the overview" isInline>
        {error.message}
      </Alert>
    );
  const cp = data.controlPlane;
  return (
    <>
      <PageSection>
        <Title headingLevel="h1">Overview</Title>
      </PageSection>
      <PageSection>
        <Card data-testid="control-plane">
          <CardTitle>
            Control plane <code>{cp.namespace}</code> {cp.ambient && <AmbientBadge />}
          </CardTitle>
          <CardBody>
            istiod pods: {cp.istiodPods} · ztunnels: {cp.ztunnels.length} (
            {cp.ztunnels.filter(z => z.ready).length} ready, on{' '}
            {cp.ztunnels.length === 0
              ? 'no node'
              : cp.ztunnels.map((z, i) => (
                  <span key={z.name}>
                    {i > 0 && ', '}
                    <a href={ztunnelHref(z)} data-testid="ztunnel-link">
                      {z.node ?? '?'}
                    </a>
                  </span>
                ))}
            )
          </CardBody>
        </Card>
      </PageSection>
      <PageSection>
        <Gallery hasGutter minWidths={{ default: '260px' }}>
          {data.namespaces.map(ns => (
            <Card key={ns.name} data-testid={`namespace-${ns.name}`} isClickable isCompact>
              <CardTitle>
                <a
                  href={`/workloads?namespace=${ns.name}`}
                  onClick={e => {
                    e.preventDefault();
                    onOpenNamespace(ns.name);
                  }}
                >
                  {ns.name}
                </a>{' '}
                {ns.ambient && <AmbientBadge />}
              </CardTitle>
              <CardBody>
                {ns.workloads} workload{ns.workloads === 1 ? '' : 's'}
                {ns.waypoint !== undefined && (
                  <div>
                    waypoint: {ns.waypoint.namespace}/{ns.waypoint.name}
                    {!ns.waypoint.exists && ' (missing)'}
                  </div>
                )}
              </CardBody>
            </Card>
          ))}
        </Gallery>
      </PageSection>
    </>
  );
}
