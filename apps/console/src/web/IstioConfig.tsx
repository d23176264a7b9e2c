import { Alert, Label, PageSection, Spinner, Title } from '@patternfly/react-core';
import type { Severity } from '../model.ts';
import { useIstioConfig } from './api.ts';

const SEVERITY_COLOR: Record<Severity, 'red' | 'orange' | 'blue'> = {
  error: 'red',
  warning: 'orange',
  info: 'blue',
};

export function IstioConfig() {
  const { data, error, isPending } = useIstioConfig();
  if (isPending) return <Spinner aria-label="loading Istio config" />;
  if (error !== null)
    return (
      <Alert variant="danger" title="Cannot load Istio config" isInline>
        {error.message}
      </Alert>
    );
  return (
    <>
      <PageSection>
        <Title headingLevel="h1">Istio config</Title>
      </PageSection>
      <PageSection>
        <table className="console-table" aria-label="Istio config">
          <thead>
            <tr>
              <th>Kind</th>
              <th>Namespace</th>
              <th>Name</th>
              <th>Conditions</th>
              <th>Validations</th>
            </tr>
          </thead>
          <tbody>
            {data.objects.map(o => (
              <tr
                key={`${o.kind}/${o.namespace}/${o.name}`}
                data-testid={`config-${o.kind}-${o.namespace}-${o.name}`}
              >
                <td>{o.kind}</td>
                <td>{o.namespace}</td>
                <td>{o.name}</td>
                <td>{o.conditions.map(c => `${c.type}=${c.status}`).join(', ') || '—'}</td>
                <td>
                  {o.error !== undefined && (
                    <Label color="red" isCompact title={o.error.message} data-testid="config-error">
                      Invalid
                    </Label>
                  )}
                  {o.validations.length === 0 && o.error === undefined ? (
                    <Label color="green" isCompact>
                      Valid
                    </Label>
                  ) : (
                    o.validations.map(v => (
                      <Label key={v.code} color={SEVERITY_COLOR[v.severity]} isCompact title={v.message}>
                        {v.code}
                      </Label>
                    ))
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </PageSection>
      {data.objects
        .filter(o => o.error !== undefined)
        .map(o => (
          <PageSection key={`err/${o.kind}/${o.namespace}/${o.name}`}>
            <Alert
              isInline
              variant="danger"
              title={`${o.kind} ${o.namespace}/${o.name} is malformed and is not applied`}
              data-testid="config-error-detail"
              data-object={`${o.kind}/${o.namespace}/${o.name}`}
            >
              {o.error !== undefined && o.error.fields.length === 0 && o.error.message}
              <ul>
                {o.error?.fields.map(f => (
                  <li key={f.path}>
                    <code>{f.path}</code>: {f.message}
                  </li>
                ))}
              </ul>
            </Alert>
          </PageSection>
        ))}
      <PageSection>
        <Title headingLevel="h2">Ambient validations</Title>
        {data.validations.length === 0 && <p>No findings.</p>}
        {data.validations.map(v => (
          <Alert
            key={`${v.code}/${v.kind}/${v.namespace}/${v.name}`}
            isInline
            isPlain
            variant={v.severity === 'error' ? 'danger' : v.severity}
            title={`${v.code} ${v.kind} ${v.namespace}/${v.name}`}
            data-testid="validation"
            data-code={v.code}
          >
            {v.message}
          </Alert>
        ))}
      </PageSection>
    </>
  );
}
