import { describe, expect, it } from 'vitest';
import {
  Annotation,
  EnrolmentReason,
  decideEnrolment,
  parseBoolAnnotation,
  ruleOptionsFor,
} from './enrolment.ts';
import type { NamespaceView, PodView } from './kube-types.ts';

function pod(overrides: Partial<PodView> = {}): PodView {
  return {
    uid: 'uid-1',
    name: 'app-1',
    namespace: 'apps',
    nodeName: 'node-a',
    serviceAccount: 'default',
    labels: {},
    annotations: {},
    ips: ['10.244.1.5'],
    phase: 'Running',
    deleting: false,
    hostNetwork: false,
    ...overrides,
  };
}
const ns = (name: string, labels: Record<string, string> = {}): NamespaceView => ({ name, labels });
const ambientNs = ns('apps', { 'istio.io/dataplane-mode': 'ambient' });
const ctx = { systemNamespace: 'istio-system' };

describe('decideEnrolment', () => {
  const cases: {
    name: string;
    pod: PodView;
    ns: NamespaceView | undefined;
    enrol: boolean;
    reason: string;
  }[] = [
    {
      name: 'namespace label ambient',
      pod: pod(),
      ns: ambientNs,
      enrol: true,
      reason: EnrolmentReason.namespaceLabel,
    },
    {
      name: 'pod label ambient in an unlabelled namespace',
      pod: pod({ labels: { 'istio.io/dataplane-mode': 'ambient' } }),
      ns: ns('apps'),
      enrol: true,
      reason: EnrolmentReason.podLabel,
    },
    {
      name: 'pod label ambient while the namespace is not known yet',
      pod: pod({ labels: { 'istio.io/dataplane-mode': 'ambient' } }),
      ns: undefined,
      enrol: true,
      reason: EnrolmentReason.podLabel,
    },
    {
      name: 'pod opt-out none in an ambient namespace',
      pod: pod({ labels: { 'istio.io/dataplane-mode': 'none' } }),
      ns: ambientNs,
      enrol: false,
      reason: EnrolmentReason.podOptOut,
    },
    {
      name: 'unlabelled pod and namespace',
      pod: pod(),
      ns: ns('apps'),
      enrol: false,
      reason: EnrolmentReason.notSelected,
    },
    {
      name: 'namespace label none',
      pod: pod(),
      ns: ns('apps', { 'istio.io/dataplane-mode': 'none' }),
      enrol: false,
      reason: EnrolmentReason.notSelected,
    },
    {
      name: 'namespace label with another value',
      pod: pod(),
      ns: ns('apps', { 'istio.io/dataplane-mode': 'Ambient' }),
      enrol: false,
      reason: EnrolmentReason.notSelected,
    },
    {
      name: 'sidecar pod in an ambient namespace',
      pod: pod({ annotations: { 'sidecar.istio.io/status': '{}' } }),
      ns: ambientNs,
      enrol: false,
      reason: EnrolmentReason.sidecar,
    },
    {
      name: 'sidecar pod with the ambient pod label',
      pod: pod({
        labels: { 'istio.io/dataplane-mode': 'ambient' },
        annotations: { 'sidecar.istio.io/status': '' },
      }),
      ns: ns('apps'),
      enrol: false,
      reason: EnrolmentReason.sidecar,
    },
    {
      name: 'ztunnel in the system namespace, even when labelled',
      pod: pod({
        namespace: 'istio-system',
        labels: { app: 'ztunnel', 'istio.io/dataplane-mode': 'ambient' },
      }),
      ns: ns('istio-system', { 'istio.io/dataplane-mode': 'ambient' }),
      enrol: false,
      reason: EnrolmentReason.ztunnel,
    },
    {
      name: 'an app=ztunnel pod outside the system namespace is an ordinary pod',
      pod: pod({ labels: { app: 'ztunnel' } }),
      ns: ambientNs,
      enrol: true,
      reason: EnrolmentReason.namespaceLabel,
    },
    {
      name: 'host-network pod',
      pod: pod({ hostNetwork: true }),
      ns: ambientNs,
      enrol: false,
      reason: EnrolmentReason.hostNetwork,
    },
    {
      name: 'succeeded pod',
      pod: pod({ phase: 'Succeeded' }),
      ns: ambientNs,
      enrol: false,
      reason: EnrolmentReason.terminal,
    },
    {
      name: 'failed pod',
      pod: pod({ phase: 'Failed' }),
      ns: ambientNs,
      enrol: false,
      reason: EnrolmentReason.terminal,
    },
    {
      name: 'pending pod',
      pod: pod({ phase: 'Pending', ips: [] }),
      ns: ambientNs,
      enrol: true,
      reason: EnrolmentReason.namespaceLabel,
    },
  ];
  for (const c of cases) {
    it(`${c.enrol ? 'enrols' : 'skips'}: ${c.name}`, () => {
      expect(decideEnrolment(c.pod, c.ns, ctx)).toEqual({ enrol: c.enrol, reason: c.reason });
    });
  }
});

describe('ruleOptionsFor', () => {
  const settings = { dnsCapture: true, ipv6: true, probeSnatV4: '169.254.7.127', probeSnatV6: 'fd16::1' };

  it('uses the global settings when the pod has no annotations', () => {
    expect(ruleOptionsFor(pod(), settings)).toEqual({
      dnsCapture: true,
      bypassInboundCapture: false,
      rerouteVirtualInterfaces: [],
      ipv4: true,
      ipv6: true,
      probeSnatV4: '169.254.7.127',
      probeSnatV6: 'fd16::1',
    });
  });

  const annotated: { name: string; annotations: Record<string, string>; expect: Record<string, unknown> }[] =
    [
      {
        name: 'dns-capture false turns DNS capture off',
        annotations: { [Annotation.dnsCapture]: 'false' },
        expect: { dnsCapture: false },
      },
      {
        name: 'dns-capture garbage keeps the global value',
        annotations: { [Annotation.dnsCapture]: 'nope' },
        expect: { dnsCapture: true },
      },
      {
        name: 'bypass-inbound-capture true gives ingress mode',
        annotations: { [Annotation.bypassInboundCapture]: 'true' },
        expect: { bypassInboundCapture: true },
      },
      {
        name: 'reroute-virtual-interfaces is a trimmed csv',
        annotations: { [Annotation.rerouteVirtualInterfaces]: ' tun0, tap1 ,,' },
        expect: { rerouteVirtualInterfaces: ['tun0', 'tap1'] },
      },
    ];
  for (const c of annotated) {
    it(c.name, () => {
      expect(ruleOptionsFor(pod({ annotations: c.annotations }), settings)).toMatchObject(c.expect);
    });
  }

  it('turns DNS capture on per pod when the global setting is off', () => {
    const options = ruleOptionsFor(pod({ annotations: { [Annotation.dnsCapture]: 'true' } }), {
      ...settings,
      dnsCapture: false,
    });
    expect(options.dnsCapture).toBe(true);
  });

  it('parses booleans like Go strconv.ParseBool', () => {
    expect(['1', 't', 'True'].map(parseBoolAnnotation)).toEqual([true, true, true]);
    expect(['0', 'F', 'false'].map(parseBoolAnnotation)).toEqual([false, false, false]);
    expect(parseBoolAnnotation('yes')).toBeUndefined();
    expect(parseBoolAnnotation(undefined)).toBeUndefined();
  });
});
