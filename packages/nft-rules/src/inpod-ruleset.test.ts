import { describe, expect, it } from 'vitest';
import { ChainName, TableName } from './constants.ts';
import { InvalidRuleOptionsError } from './errors.ts';
import { hostProbeRuleset, renderProbeSetUpdate } from './host-probe-ruleset.ts';
import { inpodRuleset } from './inpod-ruleset.ts';
import type { InpodRuleOptions } from './redirection-options.ts';
import { renderJsonBatch, renderScript } from './ruleset-model.ts';
import { optionMatrix } from './testing/option-matrix.ts';

function chainRules(options: InpodRuleOptions, table: string, chain: string): string[] {
  const t = inpodRuleset(options).tables.find(x => x.name === table);
  return (t?.chains.find(c => c.name === chain)?.rules ?? []).map(r => r.exprs.map(e => e.text).join(' '));
}

describe('inpodRuleset golden files', () => {
  for (const { name, options } of optionMatrix()) {
    it(`renders ${name} exactly as its golden script`, async () => {
      await expect(renderScript(inpodRuleset(options))).toMatchFileSnapshot(`testdata/inpod-${name}.nft`);
    });
  }

  it('renders the default JSON batch exactly as its golden file', async () => {
    const json = `${JSON.stringify(renderJsonBatch(inpodRuleset()), null, 2)}\n`;
    await expect(json).toMatchFileSnapshot('testdata/inpod-default.json');
  });

  it('renders the host probe rules for a kubelet uid and for local sources as their golden scripts', async () => {
    await expect(renderScript(hostProbeRuleset({ kubelet: { kind: 'uid', uid: 0 } }))).toMatchFileSnapshot(
      'testdata/host-probe-uid.nft',
    );
    await expect(
      renderScript(hostProbeRuleset({ kubelet: { kind: 'local-source' }, ipv6: false })),
    ).toMatchFileSnapshot('testdata/host-probe-local-source-v4.nft');
  });
});

describe('inpodRuleset semantics', () => {
  it('redirects outbound TCP to 15001 and inbound TCP except 15008 to 15006, skipping mark 0x539', () => {
    const output = chainRules({}, TableName.nat, ChainName.output);
    expect(output).toContain(
      'ip daddr != 127.0.0.1 meta l4proto tcp meta mark & 0xfff != 0x539 redirect to :15001',
    );
    const prerouting = chainRules({}, TableName.nat, ChainName.prerouting);
    expect(prerouting).toContain(
      'ip daddr != 127.0.0.1 tcp dport != 15008 meta mark & 0xfff != 0x539 redirect to :15006',
    );
  });

  it('accepts the probe SNAT source before the inbound redirect', () => {
    const prerouting = chainRules({ probeSnatV4: '169.254.9.9' }, TableName.nat, ChainName.prerouting);
    const accept = prerouting.indexOf('ip saddr 169.254.9.9 meta l4proto tcp accept');
    const redirect = prerouting.findIndex(r => r.endsWith('redirect to :15006'));
    expect(accept).toBeGreaterThanOrEqual(0);
    expect(accept).toBeLessThan(redirect);
  });

  it('omits DNS rules and lists the raw table as absent when DNS capture is off', () => {
    const ruleset = inpodRuleset({ dnsCapture: false });
    expect(ruleset.tables.map(t => t.name)).toEqual([TableName.nat, TableName.mangle]);
    expect(ruleset.absentTables).toEqual([TableName.raw]);
    expect(chainRules({ dnsCapture: false }, TableName.nat, ChainName.output).join('\n')).not.toContain(
      '15053',
    );
  });

  it('drops the connmark rule, the probe accept and the 15006 redirect in bypass-inbound mode', () => {
    const o = { bypassInboundCapture: true };
    expect(chainRules(o, TableName.mangle, ChainName.prerouting)).toEqual([]);
    expect(chainRules(o, TableName.nat, ChainName.prerouting)).toEqual([]);
  });

  it('puts the virtual-interface reroute first in nat prerouting', () => {
    const rules = chainRules({ rerouteVirtualInterfaces: ['tun0'] }, TableName.nat, ChainName.prerouting);
    expect(rules.slice(0, 2)).toEqual([
      'iifname "tun0" meta l4proto tcp redirect to :15001',
      'iifname "tun0" meta l4proto tcp return',
    ]);
  });

  it('limits family-agnostic rules to the one enabled family', () => {
    expect(chainRules({ ipv6: false }, TableName.mangle, ChainName.output)).toEqual([
      'meta nfproto ipv4 ct mark & 0xfff == 0x111 meta mark set ct mark',
    ]);
    expect(chainRules({ ipv4: false }, TableName.nat, ChainName.output).join('\n')).not.toMatch(/\bip daddr/);
  });

  it('rejects options that cannot produce a ruleset', () => {
    expect(() => inpodRuleset({ ipv4: false, ipv6: false })).toThrow(InvalidRuleOptionsError);
    expect(() => inpodRuleset({ rerouteVirtualInterfaces: ['bad"name'] })).toThrow(
      /not a valid interface name/,
    );
    expect(() => inpodRuleset({ probeSnatV4: 'fd00::1' })).toThrow(/not an IPv4 literal/);
    expect(() => hostProbeRuleset({ kubelet: { kind: 'uid', uid: -1 } })).toThrow(/not a valid uid/);
  });

  it('renders probe-set updates per family with the pod uid as comment', () => {
    expect(renderProbeSetUpdate('add', [{ ip: '10.1.0.7', podUid: 'uid-1' }, { ip: 'fd00::7' }])).toBe(
      'add element inet istio-ambient-nat istio-inpod-probes-v4 { 10.1.0.7 comment "uid-1" }\n' +
        'add element inet istio-ambient-nat istio-inpod-probes-v6 { fd00::7 }\n',
    );
    expect(() => renderProbeSetUpdate('add', [{ ip: 'pod-a' }])).toThrow(InvalidRuleOptionsError);
  });
});
