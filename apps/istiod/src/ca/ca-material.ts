/**
 * The names istiod's own TLS serving certificate carries. The certificate itself is signed by
 * the mesh CA (`CertificateAuthority.signServingCertificate` of `@ambient-mesh/spiffe-certs`).
 */

/**
 * DNS names istiod serves as: `istiod.<ns>.svc` and its longer forms (the `default` tag's Service
 * names a revisioned istiod so), for a revision also `istiod-<revision>.<ns>.svc` and its forms,
 * plus ISTIOD_CUSTOM_HOST entries.
 */
export function servingDnsNames(
  namespace: string,
  domain: string,
  customHosts: readonly string[],
  revision = 'default',
): string[] {
  const forms = (service: string): string[] => [
    `${service}.${namespace}.svc`,
    `${service}.${namespace}.svc.${domain}`,
    `${service}.${namespace}`,
    service,
  ];
  const base = [
    ...forms('istiod'),
    ...(revision === 'default' || revision === '' ? [] : forms(`istiod-${revision}`)),
  ];
  return [...new Set([...base, ...customHosts])];
}
