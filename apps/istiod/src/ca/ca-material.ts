/**
 * The names istiod's own TLS serving certificate carries. The certificate itself is signed by
 * the mesh CA (`CertificateAuthority.signServingCertificate` of `@ambient-mesh/spiffe-certs`).
 */

/** DNS names istiod serves as: `istiod.<ns>.svc` and its longer forms, plus ISTIOD_CUSTOM_HOST entries. */
export function servingDnsNames(namespace: string, domain: string, customHosts: readonly string[]): string[] {
  const base = [
    `istiod.${namespace}.svc`,
    `istiod.${namespace}.svc.${domain}`,
    `istiod.${namespace}`,
    'istiod',
  ];
  return [...new Set([...base, ...customHosts])];
}
