/**
 * Host-side rules for kubelet health probes (docs/protocols.md#redirection-host-probes): probes from kubelet to a
 * pod in the mesh are SNATed to a link-local address, which the in-pod rules let through
 * without redirect. nftables has no `--socket-exists`, so kubelet is recognised either by the
 * uid owning its socket or by a source address of the host itself (configurable).
 *
 * The pod-IP sets are created empty and kept across re-applies; the CNI agent fills them with
 * {@link renderProbeSetUpdate}.
 */
import { isIP } from 'node:net';
import { ChainName, Priority, ProbeSet, TableName } from './constants.ts';
import { InvalidRuleOptionsError } from './errors.ts';
import type { IpProto, NftExpr } from './nft-expr.ts';
import { addressInSet, l4proto, localSource, snat, socketUid } from './nft-expr.ts';
import { resolveHostProbeOptions } from './redirection-options.ts';
import type { HostProbeOptions } from './redirection-options.ts';
import type { RuleSpec, Ruleset, SetSpec } from './ruleset-model.ts';
import { FAMILY, baseChain } from './ruleset-model.ts';

/** The desired host state for `options`. */
export function hostProbeRuleset(options: HostProbeOptions): Ruleset {
  const o = resolveHostProbeOptions(options);
  const kubelet: NftExpr = o.kubelet.kind === 'uid' ? socketUid(o.kubelet.uid) : localSource();
  const protos: IpProto[] = [...(o.ipv4 ? (['ip'] as const) : []), ...(o.ipv6 ? (['ip6'] as const) : [])];
  const sets: SetSpec[] = protos.map(p =>
    p === 'ip' ? { name: ProbeSet.v4, type: 'ipv4_addr' } : { name: ProbeSet.v6, type: 'ipv6_addr' },
  );
  const rules: RuleSpec[] = protos.map(p => ({
    exprs: [
      l4proto('tcp'),
      kubelet,
      addressInSet(p, 'daddr', p === 'ip' ? ProbeSet.v4 : ProbeSet.v6),
      snat(p, p === 'ip' ? o.probeSnatV4 : o.probeSnatV6),
    ],
  }));
  return {
    tables: [
      {
        name: TableName.nat,
        mode: 'keep-sets',
        sets,
        chains: [
          { name: ChainName.postrouting, rules },
          baseChain(
            'postrouting',
            { type: 'nat', hook: 'postrouting', priority: Priority.srcnat, priorityText: 'srcnat' },
            ChainName.postrouting,
          ),
        ],
      },
    ],
    absentTables: [],
  };
}

/**
 * An `nft -f` script that adds (`add`) or removes (`delete`) pod IPs in the probe sets. The
 * comment records the pod uid, as Istio's ipset entries do.
 */
export function renderProbeSetUpdate(
  action: 'add' | 'delete',
  entries: readonly { readonly ip: string; readonly podUid?: string }[],
): string {
  return entries
    .map(({ ip, podUid }) => {
      const family = isIP(ip);
      if (family === 0) throw new InvalidRuleOptionsError(`'${ip}' is not an IP literal`);
      if (podUid !== undefined && !/^[A-Za-z0-9._-]{1,128}$/.test(podUid)) {
        throw new InvalidRuleOptionsError(`pod uid '${podUid}' has characters nft comments cannot carry`);
      }
      const set = family === 4 ? ProbeSet.v4 : ProbeSet.v6;
      const comment = action === 'add' && podUid !== undefined ? ` comment "${podUid}"` : '';
      return `${action} element ${FAMILY} ${TableName.nat} ${set} { ${ip}${comment} }\n`;
    })
    .join('');
}
