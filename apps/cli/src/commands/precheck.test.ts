import { describe, expect, it } from 'vitest';
import {
  GATEWAY_API_CRDS,
  INSTALL_ACCESS,
  formatFindings,
  precheckFindings,
  type PrecheckInput,
} from './precheck.ts';

const ready: PrecheckInput = {
  serverVersion: 'v1.33.2',
  crds: GATEWAY_API_CRDS.map(name => ({ name, bundleVersion: 'v1.4.1', channel: 'experimental' })),
  access: INSTALL_ACCESS.map(a => ({ ...a, allowed: true })),
};

describe('x precheck', () => {
  it('finds nothing to fix on a ready cluster', () => {
    const findings = precheckFindings(ready);
    expect(findings.every(f => f.level === 'ok')).toBe(true);
    expect(formatFindings(findings, 'table')).toMatch(/✔ No issues found/);
  });

  it('flags an old or too new Kubernetes', () => {
    expect(precheckFindings({ ...ready, serverVersion: 'v1.27.4' })[0]).toMatchObject({
      level: 'error',
      check: 'kubernetes-version',
    });
    expect(precheckFindings({ ...ready, serverVersion: 'v1.35.0' })[0]).toMatchObject({ level: 'warning' });
  });

  it('flags missing or old Gateway API CRDs, saying what to install', () => {
    const missing = precheckFindings({ ...ready, crds: [] }).filter(f => f.level === 'error');
    expect(missing).toHaveLength(3);
    expect(missing[0]?.message).toMatch(
      /gatewayclasses.* is not installed; install the Gateway API CRDs \(v1.3.0 or newer\)/,
    );
    const old = precheckFindings({
      ...ready,
      crds: GATEWAY_API_CRDS.map(name => ({ name, bundleVersion: 'v1.1.0' })),
    });
    expect(old.filter(f => f.level === 'error').map(f => f.message)[0]).toMatch(/v1.1.0, older than v1.3.0/);
  });

  it('names the permissions that are denied', () => {
    const access = INSTALL_ACCESS.map(a => ({ ...a, allowed: a.resource !== 'clusterroles' }));
    const f = precheckFindings({ ...ready, access }).find(x => x.check === 'permissions');
    expect(f).toMatchObject({ level: 'error' });
    expect(f?.message).toMatch(
      /may not create clusterroles.rbac.authorization.k8s.io; use a cluster-admin kubeconfig/,
    );
    expect(formatFindings(precheckFindings({ ...ready, access }), 'table')).toMatch(/✘ 1 issue to fix/);
  });

  it('flags Cilium settings that conflict with the mesh, and a ConfigMap it cannot read', () => {
    const cni = (cilium?: Record<string, string>, cniReadError?: string): string[] =>
      precheckFindings({ ...ready, cilium, cniReadError })
        .filter(f => f.check === 'cni-conflicts')
        .map(f => `${f.level}: ${f.message}`);
    expect(cni()).toEqual(['ok: no known conflicting CNI configuration']);
    expect(cni({ 'cni-exclusive': 'false' })).toEqual(['ok: Cilium is configured to chain with the mesh']);
    expect(cni({ 'cni-exclusive': 'true' })[0]).toMatch(/^error: .*install Cilium with cni.exclusive=false$/);
    expect(cni({ 'kube-proxy-replacement': 'true' })[0]).toMatch(
      /^warning: .*install Cilium with socketLB.hostNamespaceOnly=true$/,
    );
    expect(cni({ 'kube-proxy-replacement': 'true', 'bpf-lb-sock-hostns-only': 'true' })).toHaveLength(1);
    expect(cni(undefined, 'forbidden')[0]).toMatch(
      /^warning: cannot read kube-system\/cilium-config \(forbidden\)/,
    );
  });
});
