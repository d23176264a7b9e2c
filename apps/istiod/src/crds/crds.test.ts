import { describe, expect, it } from 'vitest';
import { readFile, readdir } from 'node:fs/promises';
import { Ajv, type ValidateFunction } from 'ajv';
import { parse } from 'yaml';
import {
  destinationRuleExamples,
  envoyFilterExamples,
  invalidDestinationRules,
  invalidEnvoyFilters,
  invalidIstioGateways,
  invalidProxyConfigs,
  invalidSidecars,
  invalidTelemetries,
  invalidVirtualServices,
  invalidWasmPlugins,
  invalidWorkloadGroups,
  istioGatewayExamples,
  proxyConfigExamples,
  sidecarExamples,
  telemetryExamples,
  virtualServiceExamples,
  wasmPluginExamples,
  workloadGroupExamples,
  authorizationPolicyExamples,
  gatewayClassExamples,
  gatewayExamples,
  invalidGatewayClasses,
  invalidGateways,
  invalidAuthorizationPolicies,
  invalidPeerAuthentications,
  invalidRequestAuthentications,
  invalidServiceEntries,
  invalidWorkloadEntries,
  peerAuthenticationExamples,
  requestAuthenticationExamples,
  serviceEntryExamples,
  workloadEntryExamples,
} from './crd-examples.ts';

interface Crd {
  metadata: { name: string; annotations?: Record<string, string> };
  spec: {
    group: string;
    names: { kind: string; plural: string };
    versions: {
      name: string;
      served: boolean;
      storage: boolean;
      schema: { openAPIV3Schema: Record<string, unknown> };
    }[];
  };
}

const CRD_DIR = new URL('../../../../deploy/crds/', import.meta.url);

async function loadCrd(file: string): Promise<Crd> {
  return parse(await readFile(new URL(file, CRD_DIR), 'utf8')) as Crd;
}

/** OpenAPI v3 structural schema → JSON Schema (drop Kubernetes extensions). */
function toJsonSchema(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(toJsonSchema);
  if (typeof node !== 'object' || node === null) return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) {
    if (k.startsWith('x-kubernetes-')) continue;
    out[k] = toJsonSchema(v);
  }
  return out;
}

function validators(crd: Crd): Map<string, ValidateFunction> {
  const ajv = new Ajv({ strict: false, allErrors: true });
  return new Map(
    crd.spec.versions.map(v => [v.name, ajv.compile(toJsonSchema(v.schema.openAPIV3Schema) as object)]),
  );
}

/** Served versions, as upstream serves them: Istio's networking kinds also as v1alpha3. */
const V1_V1BETA1 = ['v1', 'v1beta1'];
const V1_V1ALPHA3_V1BETA1 = ['v1', 'v1alpha3', 'v1beta1'];

const cases: {
  file: string;
  kind: string;
  versions: readonly string[];
  /** The storage version; default v1. */
  storage?: string;
  valid: readonly object[];
  invalid: readonly object[];
}[] = [
  {
    file: 'security.istio.io_authorizationpolicies.yaml',
    kind: 'AuthorizationPolicy',
    versions: V1_V1BETA1,
    valid: authorizationPolicyExamples,
    invalid: invalidAuthorizationPolicies,
  },
  {
    file: 'security.istio.io_peerauthentications.yaml',
    kind: 'PeerAuthentication',
    versions: V1_V1BETA1,
    valid: peerAuthenticationExamples,
    invalid: invalidPeerAuthentications,
  },
  {
    file: 'security.istio.io_requestauthentications.yaml',
    kind: 'RequestAuthentication',
    versions: V1_V1BETA1,
    valid: requestAuthenticationExamples,
    invalid: invalidRequestAuthentications,
  },
  {
    file: 'networking.istio.io_serviceentries.yaml',
    kind: 'ServiceEntry',
    versions: V1_V1ALPHA3_V1BETA1,
    valid: serviceEntryExamples,
    invalid: invalidServiceEntries,
  },
  {
    file: 'networking.istio.io_workloadentries.yaml',
    kind: 'WorkloadEntry',
    versions: V1_V1ALPHA3_V1BETA1,
    valid: workloadEntryExamples,
    invalid: invalidWorkloadEntries,
  },
  {
    file: 'gateway.networking.k8s.io_gateways.yaml',
    kind: 'Gateway',
    versions: V1_V1BETA1,
    valid: gatewayExamples,
    invalid: invalidGateways,
  },
  {
    file: 'gateway.networking.k8s.io_gatewayclasses.yaml',
    kind: 'GatewayClass',
    versions: V1_V1BETA1,
    valid: gatewayClassExamples,
    invalid: invalidGatewayClasses,
  },
  {
    file: 'networking.istio.io_virtualservices.yaml',
    kind: 'VirtualService',
    versions: V1_V1ALPHA3_V1BETA1,
    valid: virtualServiceExamples,
    invalid: invalidVirtualServices,
  },
  {
    file: 'networking.istio.io_destinationrules.yaml',
    kind: 'DestinationRule',
    versions: V1_V1ALPHA3_V1BETA1,
    valid: destinationRuleExamples,
    invalid: invalidDestinationRules,
  },
  {
    file: 'networking.istio.io_gateways.yaml',
    kind: 'Gateway',
    versions: V1_V1ALPHA3_V1BETA1,
    valid: istioGatewayExamples,
    invalid: invalidIstioGateways,
  },
  {
    file: 'networking.istio.io_sidecars.yaml',
    kind: 'Sidecar',
    versions: V1_V1ALPHA3_V1BETA1,
    valid: sidecarExamples,
    invalid: invalidSidecars,
  },
  {
    file: 'networking.istio.io_envoyfilters.yaml',
    kind: 'EnvoyFilter',
    versions: ['v1alpha3'],
    storage: 'v1alpha3',
    valid: envoyFilterExamples,
    invalid: invalidEnvoyFilters,
  },
  {
    file: 'networking.istio.io_workloadgroups.yaml',
    kind: 'WorkloadGroup',
    versions: V1_V1ALPHA3_V1BETA1,
    valid: workloadGroupExamples,
    invalid: invalidWorkloadGroups,
  },
  {
    file: 'networking.istio.io_proxyconfigs.yaml',
    kind: 'ProxyConfig',
    versions: ['v1beta1'],
    storage: 'v1beta1',
    valid: proxyConfigExamples,
    invalid: invalidProxyConfigs,
  },
  {
    file: 'telemetry.istio.io_telemetries.yaml',
    kind: 'Telemetry',
    versions: ['v1', 'v1alpha1'],
    storage: 'v1alpha1',
    valid: telemetryExamples,
    invalid: invalidTelemetries,
  },
  {
    file: 'extensions.istio.io_wasmplugins.yaml',
    kind: 'WasmPlugin',
    versions: ['v1alpha1'],
    storage: 'v1alpha1',
    valid: wasmPluginExamples,
    invalid: invalidWasmPlugins,
  },
];

describe('our CRDs', () => {
  it('are each checked below against examples', async () => {
    const files = (await readdir(CRD_DIR)).filter(f => f.endsWith('.yaml')).sort();
    expect(cases.map(c => c.file).sort()).toEqual(files);
  });

  it('carry the api-approved.kubernetes.io annotation the apiserver requires for *.k8s.io groups', async () => {
    for (const file of [
      'gateway.networking.k8s.io_gateways.yaml',
      'gateway.networking.k8s.io_gatewayclasses.yaml',
    ]) {
      const crd = await loadCrd(file);
      expect(crd.spec.group.endsWith('.k8s.io')).toBe(true);
      expect(crd.metadata.annotations?.['api-approved.kubernetes.io']).toMatch(/^https:\/\//);
    }
  });

  it.each(cases)(
    '$kind ($file): serves its versions as upstream, with a status subresource',
    async ({ file, kind, versions, storage = 'v1' }) => {
      const crd = await loadCrd(file);
      expect(file.startsWith(`${crd.spec.group}_`)).toBe(true);
      expect(crd.spec.names.kind).toBe(kind);
      expect(crd.spec.versions.map(v => [v.name, v.served, v.storage])).toEqual(
        versions.map(v => [v, true, v === storage]),
      );
    },
  );

  it.each(cases)(
    '$kind: accepts every documented example and rejects bad values',
    async ({ file, valid, invalid }) => {
      for (const [version, validate] of validators(await loadCrd(file))) {
        for (const spec of valid) {
          const ok = validate({ spec });
          expect(ok, `${version} ${JSON.stringify(spec)}: ${JSON.stringify(validate.errors)}`).toBe(true);
        }
        for (const spec of invalid)
          expect(validate({ spec }), `${version} ${JSON.stringify(spec)}`).toBe(false);
      }
    },
  );
});
