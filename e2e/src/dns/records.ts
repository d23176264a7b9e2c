import { DnsRcode, type DnsQuestion } from './dns-message.ts';

export interface ServiceRecord {
  readonly name: string;
  readonly namespace: string;
  /** ClusterIP, or for headless services the ready endpoint addresses. */
  readonly addresses: readonly string[];
}

export interface Answer {
  readonly rcode: DnsRcode;
  readonly addresses: readonly string[];
}

/**
 * The cluster DNS's view: `<svc>.<ns>.svc.<domain>` → ClusterIP (or endpoint IPs for headless
 * services), `<a-b-c-d>.<ns>.pod.<domain>` → that IP. Names outside the domain are REFUSED
 * (nothing leaves the cluster), unknown names inside it NXDOMAIN, other types empty NOERROR.
 */
export class ClusterRecords {
  private readonly domain: string;
  private readonly services = new Map<string, readonly string[]>();

  constructor(domain = 'cluster.local') {
    this.domain = domain;
  }

  private static key(name: string, namespace: string): string {
    return `${name}.${namespace}`;
  }

  set(record: ServiceRecord): void {
    this.services.set(ClusterRecords.key(record.name, record.namespace), record.addresses);
  }

  remove(name: string, namespace: string): void {
    this.services.delete(ClusterRecords.key(name, namespace));
  }

  clear(): void {
    this.services.clear();
  }

  answer(q: DnsQuestion): Answer {
    const name = q.name.replace(/\.$/, '').toLowerCase();
    const suffix = `.${this.domain}`;
    if (!name.endsWith(suffix)) return { rcode: DnsRcode.Refused, addresses: [] };
    const parts = name.slice(0, -suffix.length).split('.');
    let addresses: readonly string[] | undefined;
    if (parts.length === 3 && parts[2] === 'svc') {
      addresses = this.services.get(ClusterRecords.key(parts[0]!, parts[1]!));
    } else if (parts.length === 3 && parts[2] === 'pod' && /^\d+-\d+-\d+-\d+$/.test(parts[0]!)) {
      addresses = [parts[0]!.replaceAll('-', '.')];
    } else if (parts.length <= 2 && (parts.at(-1) === 'svc' || parts.at(-1) === 'pod' || parts[0] === '')) {
      return { rcode: DnsRcode.NoError, addresses: [] };
    }
    if (addresses === undefined) return { rcode: DnsRcode.NXDomain, addresses: [] };
    if (q.type !== 'A' && q.type !== 'ANY') return { rcode: DnsRcode.NoError, addresses: [] };
    return { rcode: DnsRcode.NoError, addresses };
  }
}
