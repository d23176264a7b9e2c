// A pod's hostname and domain name, as the kubelet derives them (pkg/kubelet: GeneratePodHostNameAndDomain).
import type { V1Pod } from '@kubernetes/client-node';

export interface PodHostname {
  /** What `hostname` prints in the pod: spec.hostname or the pod name (63 chars at most). */
  readonly hostname: string;
  /** `<hostname>.<subdomain>.<namespace>.svc.<cluster domain>` when spec.subdomain is set. */
  readonly fqdn: string | undefined;
  /** The UTS hostname: the FQDN when spec.setHostnameAsFQDN asks for it, else `hostname`. */
  readonly uts: string;
}

/** Kubernetes truncates a pod name used as hostname to 63 bytes, without a trailing '-' or '.'. */
function truncate(name: string): string {
  return name.length <= 63 ? name : name.slice(0, 63).replace(/[-.]+$/, '');
}

export function podHostname(pod: V1Pod, clusterDomain: string): PodHostname {
  const hostname = truncate(pod.spec?.hostname || pod.metadata?.name || 'localhost');
  const subdomain = pod.spec?.subdomain;
  const ns = pod.metadata?.namespace ?? 'default';
  const fqdn = subdomain ? `${hostname}.${subdomain}.${ns}.svc.${clusterDomain}` : undefined;
  const uts = pod.spec?.setHostnameAsFQDN === true && fqdn !== undefined ? fqdn : hostname;
  return { hostname, fqdn, uts };
}

/** The pod's /etc/hosts, in the kubelet's layout: localhost lines, then the pod's own names. */
export function podHostsFile(ip: string | undefined, names: PodHostname): string {
  const own = names.fqdn === undefined ? names.hostname : `${names.fqdn}\t${names.hostname}`;
  return [
    '# Kubernetes-managed hosts file.',
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    ...(ip === undefined || ip === '' ? [] : [`${ip}\t${own}`]),
    '',
  ].join('\n');
}
