/**
 * The in-pod redirection ruleset: nftables `inet` tables equivalent to Istio 1.27's iptables
 * rules (docs/protocols.md#redirection-rules), laid out as the 1.28 nftables backend does (docs/protocols.md#redirection-nftables).
 *
 * Capture uses REDIRECT: outbound TCP to 15001, inbound TCP (except 15008) to 15006, DNS to
 * 15053. Packets marked 0x539 (ztunnel's own sockets) are never redirected; they set connmark
 * 0x111, whose replies get the mark back and are routed to `lo` by table 100 (see
 * policy-routing.ts), which lets ztunnel spoof the client's source towards the app.
 */
import { ChainName, Mark, Port, Priority, TableName } from './constants.ts';
import type { IpProto, NftExpr } from './nft-expr.ts';
import {
  accept,
  address,
  connMark,
  ifname,
  l4proto,
  nfproto,
  packetMark,
  port,
  redirect,
  restoreMarkFromConn,
  ret,
  setConnMark,
  setConnZone,
} from './nft-expr.ts';
import { resolveInpodOptions } from './redirection-options.ts';
import type { InpodRuleOptions, ResolvedInpodOptions } from './redirection-options.ts';
import type { BaseChainHook, RuleSpec, Ruleset, TableSpec } from './ruleset-model.ts';
import { baseChain } from './ruleset-model.ts';

const LOOPBACK: Record<IpProto, string> = { ip: '127.0.0.1', ip6: '::1' };

const Hook = {
  natPrerouting: { type: 'nat', hook: 'prerouting', priority: Priority.dstnat, priorityText: 'dstnat' },
  // nft 1.0.6 rejects the name 'dstnat' on the output hook; the number is the same.
  natOutput: {
    type: 'nat',
    hook: 'output',
    priority: Priority.dstnat,
    priorityText: String(Priority.dstnat),
  },
  manglePrerouting: { type: 'filter', hook: 'prerouting', priority: Priority.mangle, priorityText: 'mangle' },
  mangleOutput: { type: 'route', hook: 'output', priority: Priority.mangle, priorityText: 'mangle' },
  rawPrerouting: { type: 'filter', hook: 'prerouting', priority: Priority.raw, priorityText: 'raw' },
  rawOutput: { type: 'filter', hook: 'output', priority: Priority.raw, priorityText: 'raw' },
} as const satisfies Record<string, BaseChainHook>;

class RuleBuilder {
  readonly #protos: IpProto[];
  readonly #familyGuard: NftExpr[];

  constructor(o: ResolvedInpodOptions) {
    this.#protos = [...(o.ipv4 ? (['ip'] as const) : []), ...(o.ipv6 ? (['ip6'] as const) : [])];
    // A rule with no address match applies to both families of an inet table; with one family
    // off it must be limited to the other, as if only iptables or only ip6tables were set up.
    this.#familyGuard = o.ipv4 && o.ipv6 ? [] : [nfproto(o.ipv4 ? 'ipv4' : 'ipv6')];
  }

  /** A family-agnostic rule. */
  any(...exprs: NftExpr[]): RuleSpec[] {
    return [{ exprs: [...this.#familyGuard, ...exprs] }];
  }

  /** One rule per enabled family. */
  perFamily(make: (proto: IpProto) => NftExpr[]): RuleSpec[] {
    return this.#protos.map(p => ({ exprs: make(p) }));
  }
}

function mangleTable(o: ResolvedInpodOptions, r: RuleBuilder): TableSpec {
  const prerouting = o.bypassInboundCapture
    ? []
    : r.any(packetMark('==', Mark.ztunnel), setConnMark(Mark.connection));
  const output = r.any(connMark('==', Mark.connection), restoreMarkFromConn());
  return {
    name: TableName.mangle,
    mode: 'replace',
    sets: [],
    chains: [
      baseChain('prerouting', Hook.manglePrerouting, ChainName.prerouting),
      baseChain('output', Hook.mangleOutput, ChainName.output),
      { name: ChainName.prerouting, rules: prerouting },
      { name: ChainName.output, rules: output },
    ],
  };
}

function natTable(o: ResolvedInpodOptions, r: RuleBuilder): TableSpec {
  const snat = (p: IpProto): string => (p === 'ip' ? o.probeSnatV4 : o.probeSnatV6);
  const notZtunnel = packetMark('!=', Mark.ztunnel);

  const prerouting: RuleSpec[] = [];
  for (const name of o.rerouteVirtualInterfaces) {
    prerouting.push(...r.any(ifname('iifname', '==', name), l4proto('tcp'), redirect(Port.outbound)));
    prerouting.push(...r.any(ifname('iifname', '==', name), l4proto('tcp'), ret));
  }
  if (!o.bypassInboundCapture) {
    prerouting.push(...r.perFamily(p => [address(p, 'saddr', '==', snat(p)), l4proto('tcp'), accept]));
    prerouting.push(
      ...r.perFamily(p => [
        address(p, 'daddr', '!=', LOOPBACK[p]),
        port('tcp', 'dport', '!=', Port.hbone),
        notZtunnel,
        redirect(Port.inboundPlaintext),
      ]),
    );
  }

  const output: RuleSpec[] = [];
  output.push(...r.perFamily(p => [address(p, 'daddr', '==', snat(p)), l4proto('tcp'), accept]));
  if (o.dnsCapture) {
    output.push(
      ...r.any(
        ifname('oifname', '!=', 'lo'),
        port('udp', 'dport', '==', Port.dnsUpstream),
        notZtunnel,
        redirect(Port.dns),
      ),
    );
    output.push(
      ...r.perFamily(p => [
        address(p, 'daddr', '!=', LOOPBACK[p]),
        port('tcp', 'dport', '==', Port.dnsUpstream),
        notZtunnel,
        redirect(Port.dns),
      ]),
    );
  }
  output.push(...r.any(l4proto('tcp'), packetMark('==', Mark.connection), accept));
  output.push(
    ...r.perFamily(p => [address(p, 'daddr', '!=', LOOPBACK[p]), ifname('oifname', '==', 'lo'), accept]),
  );
  output.push(
    ...r.perFamily(p => [
      address(p, 'daddr', '!=', LOOPBACK[p]),
      l4proto('tcp'),
      notZtunnel,
      redirect(Port.outbound),
    ]),
  );

  return {
    name: TableName.nat,
    mode: 'replace',
    sets: [],
    chains: [
      baseChain('prerouting', Hook.natPrerouting, ChainName.prerouting),
      baseChain('output', Hook.natOutput, ChainName.output),
      { name: ChainName.prerouting, rules: prerouting },
      { name: ChainName.output, rules: output },
    ],
  };
}

function rawTable(r: RuleBuilder): TableSpec {
  const dns = Port.dnsUpstream;
  return {
    name: TableName.raw,
    mode: 'replace',
    sets: [],
    chains: [
      baseChain('prerouting', Hook.rawPrerouting, ChainName.prerouting),
      baseChain('output', Hook.rawOutput, ChainName.output),
      {
        name: ChainName.prerouting,
        rules: r.any(port('udp', 'sport', '==', dns), packetMark('!=', Mark.ztunnel), setConnZone(1)),
      },
      {
        name: ChainName.output,
        rules: r.any(port('udp', 'dport', '==', dns), packetMark('==', Mark.ztunnel), setConnZone(1)),
      },
    ],
  };
}

/**
 * The desired in-pod state for `options`. With DNS capture off the raw table is listed as
 * absent, so applying removes one left by an earlier configuration.
 */
export function inpodRuleset(options: InpodRuleOptions = {}): Ruleset {
  const o = resolveInpodOptions(options);
  const r = new RuleBuilder(o);
  const tables: TableSpec[] = [natTable(o, r), mangleTable(o, r)];
  if (o.dnsCapture) tables.push(rawTable(r));
  return { tables, absentTables: o.dnsCapture ? [] : [TableName.raw] };
}
