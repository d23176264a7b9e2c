// Controls the pages share: the head of a per-namespace list page (Services, Workloads) with its
// namespace picker, the loading spinner and error of a query, and a checkbox toggle in a filter bar.
import {
  Alert,
  Checkbox,
  FlexItem,
  FormSelect,
  FormSelectOption,
  PageSection,
  Spinner,
  Title,
} from '@patternfly/react-core';
import { useOverview } from './api.ts';

/** The title of a per-namespace list page and its namespace picker. */
export function NamespaceHeader({
  title,
  namespace,
  onNamespace,
}: {
  readonly title: string;
  readonly namespace: string;
  readonly onNamespace: (ns: string) => void;
}) {
  const overview = useOverview();
  return (
    <PageSection>
      <Title headingLevel="h1">{title}</Title>
      <FormSelect
        value={namespace}
        onChange={(_e, v) => {
          onNamespace(v);
        }}
        aria-label="namespace"
        style={{ maxWidth: 320, marginTop: 8 }}
      >
        {(overview.data?.namespaces ?? [{ name: namespace }]).map(ns => (
          <FormSelectOption key={ns.name} value={ns.name} label={ns.name} />
        ))}
      </FormSelect>
    </PageSection>
  );
}

/** The spinner while `what` loads, and the inline alert when it cannot. */
export function LoadState({
  what,
  isPending,
  error,
}: {
  readonly what: string;
  readonly isPending: boolean;
  readonly error: Error | null;
}) {
  return (
    <>
      {isPending && <Spinner aria-label={`loading ${what}`} />}
      {error !== null && (
        <Alert variant="danger" title={`Cannot load ${what}`} isInline>
          {error.message}
        </Alert>
      )}
    </>
  );
}

/** A checkbox in a filter bar (a `Flex` item) that turns a boolean on and off. */
export function FlexCheckbox({
  id,
  label,
  checked,
  onChange,
}: {
  readonly id: string;
  readonly label: string;
  readonly checked: boolean;
  readonly onChange: (checked: boolean) => void;
}) {
  return (
    <FlexItem>
      <Checkbox
        id={id}
        label={label}
        isChecked={checked}
        onChange={(_e, c) => {
          onChange(c);
        }}
      />
    </FlexItem>
  );
}
