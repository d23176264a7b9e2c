// The console's shell: a PatternFly page with a sidebar and its views, routed by the URL path.
import {
  Masthead,
  MastheadBrand,
  MastheadMain,
  Nav,
  NavItem,
  NavList,
  Page,
  PageSidebar,
  PageSidebarBody,
} from '@patternfly/react-core';
import { useEffect, useState } from 'react';
import { GraphPage } from './Graph.tsx';
import { IstioConfig } from './IstioConfig.tsx';
import { Overview } from './Overview.tsx';
import { Waypoints } from './Waypoints.tsx';
import { WorkloadDetail } from './WorkloadDetail.tsx';
import { Workloads } from './Workloads.tsx';
import { Services } from './Services.tsx';
import { Ztunnels } from './Ztunnels.tsx';
import './console.css';

type View = 'overview' | 'workloads' | 'services' | 'waypoints' | 'ztunnels' | 'graph' | 'istio';
const VIEWS: readonly { readonly id: View; readonly title: string }[] = [
  { id: 'overview', title: 'Overview' },
  { id: 'workloads', title: 'Workloads' },
  { id: 'services', title: 'Services' },
  { id: 'waypoints', title: 'Waypoints' },
  { id: 'ztunnels', title: 'ztunnels' },
  { id: 'graph', title: 'Traffic graph' },
  { id: 'istio', title: 'Istio config' },
];

interface Location {
  readonly view: View;
  readonly params: URLSearchParams;
}

function readLocation(): Location {
  const id = window.location.pathname.replace(/^\/+/, '').split('/')[0] ?? '';
  const view = VIEWS.find(v => v.id === id)?.id ?? 'overview';
  return { view, params: new URLSearchParams(window.location.search) };
}

export function App() {
  const [loc, setLoc] = useState<Location>(readLocation);
  useEffect(() => {
    const onPop = (): void => {
      setLoc(readLocation());
    };
    window.addEventListener('popstate', onPop);
    return () => {
      window.removeEventListener('popstate', onPop);
    };
  }, []);
  const go = (path: string): void => {
    window.history.pushState(null, '', path);
    setLoc(readLocation());
  };
  const namespace = loc.params.get('namespace') ?? 'default';
  const masthead = (
    <Masthead>
      <MastheadMain>
        <MastheadBrand>
          <strong style={{ fontSize: 18 }}>Ambient Mesh console</strong>
        </MastheadBrand>
      </MastheadMain>
    </Masthead>
  );
  const sidebar = (
    <PageSidebar>
      <PageSidebarBody>
        <Nav aria-label="views">
          <NavList>
            {VIEWS.map(v => (
              <NavItem
                key={v.id}
                isActive={loc.view === v.id}
                to={`/${v.id}`}
                onClick={e => {
                  e.preventDefault();
                  go(`/${v.id}`);
                }}
              >
                {v.title}
              </NavItem>
            ))}
          </NavList>
        </Nav>
      </PageSidebarBody>
    </PageSidebar>
  );
  return (
    <Page masthead={masthead} sidebar={sidebar} isManagedSidebar>
      {loc.view === 'overview' && (
        <Overview
          onOpenNamespace={ns => {
            go(`/workloads?namespace=${encodeURIComponent(ns)}`);
          }}
        />
      )}
      {loc.view === 'workloads' && loc.params.get('workload') !== null && (
        <WorkloadDetail
          key={`${namespace}/${loc.params.get('workload') ?? ''}`}
          namespace={namespace}
          workload={loc.params.get('workload') ?? ''}
        />
      )}
      {loc.view === 'waypoints' && (
        <Waypoints
          selected={
            loc.params.get('name') === null
              ? undefined
              : { namespace: loc.params.get('namespace') ?? '', name: loc.params.get('name') ?? '' }
          }
          onSelect={(ns, name) => {
            go(`/waypoints?namespace=${encodeURIComponent(ns)}&name=${encodeURIComponent(name)}`);
          }}
        />
      )}
      {loc.view === 'workloads' && loc.params.get('workload') === null && (
        <Workloads
          key={namespace}
          namespace={namespace}
          onNamespace={ns => {
            go(`/workloads?namespace=${encodeURIComponent(ns)}`);
          }}
        />
      )}
      {loc.view === 'services' && (
        <Services
          key={`${namespace}/${loc.params.get('name') ?? ''}`}
          namespace={namespace}
          name={loc.params.get('name') ?? undefined}
          onNamespace={ns => {
            go(`/services?namespace=${encodeURIComponent(ns)}`);
          }}
        />
      )}
      {loc.view === 'ztunnels' && (
        <Ztunnels
          selected={
            loc.params.get('name') === null
              ? undefined
              : { namespace: loc.params.get('namespace') ?? '', name: loc.params.get('name') ?? '' }
          }
        />
      )}
      {loc.view === 'graph' && (
        <GraphPage
          initial={(loc.params.get('namespaces') ?? '').split(',').filter(s => s !== '')}
          initialTraffic={
            (['all', 'tcp', 'http'] as const).find(t => t === loc.params.get('traffic')) ?? 'all'
          }
        />
      )}
      {loc.view === 'istio' && <IstioConfig />}
    </Page>
  );
}
