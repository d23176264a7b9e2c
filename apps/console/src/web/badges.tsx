// Kiali's ambient badges: "Ambient" on namespaces and the control plane, L4/L7/sidecar/out of mesh
// on workloads.
import { Label } from '@patternfly/react-core';
import type { MeshMode } from '../model.ts';

export function AmbientBadge() {
  return (
    <Label color="blue" isCompact data-testid="ambient-badge">
      Ambient
    </Label>
  );
}

const MODE_COLOR = { L7: 'green', L4: 'blue', sidecar: 'purple', 'out-of-mesh': 'grey' } as const;
const MODE_TEXT: Record<MeshMode, string> = {
  L7: 'L7',
  L4: 'L4',
  sidecar: 'Sidecar',
  'out-of-mesh': 'Out of mesh',
};

export function ModeBadge({ mode }: { readonly mode: MeshMode }) {
  return (
    <Label color={MODE_COLOR[mode]} isCompact data-testid="mode-badge" data-mode={mode}>
      {MODE_TEXT[mode]}
    </Label>
  );
}
