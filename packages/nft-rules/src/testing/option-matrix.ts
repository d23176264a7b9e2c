import type { InpodRuleOptions } from '../redirection-options.ts';

/** Every combination of the in-pod options, with a file-friendly name. */
export function optionMatrix(): { name: string; options: InpodRuleOptions }[] {
  const out: { name: string; options: InpodRuleOptions }[] = [];
  for (const dnsCapture of [true, false]) {
    for (const bypassInboundCapture of [false, true]) {
      for (const reroute of [[], ['vif0', 'vif1']]) {
        for (const [fam, ipv4, ipv6] of [
          ['dual', true, true],
          ['v4', true, false],
          ['v6', false, true],
        ] as const) {
          const name = [
            dnsCapture ? 'dns' : 'nodns',
            bypassInboundCapture ? 'bypass' : 'inbound',
            reroute.length > 0 ? 'reroute' : 'noreroute',
            fam,
          ].join('-');
          out.push({
            name,
            options: { dnsCapture, bypassInboundCapture, rerouteVirtualInterfaces: reroute, ipv4, ipv6 },
          });
        }
      }
    }
  }
  return out;
}
