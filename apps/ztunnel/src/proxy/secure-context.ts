/**
 * The HBONE identity of one pod: its workload certificate as `@ambient-mesh/hbone` takes it, and
 * the secure-context provider the inbound HBONE server is built with (awaits the pod's
 * certificate, then follows its renewals).
 */
import type { SecureContextProvider } from '@ambient-mesh/proxy-core';
import type { HboneIdentity } from '@ambient-mesh/hbone';
import type { WorkloadCertificate } from '@ambient-mesh/spiffe-certs';
import type { CertManager } from '../identity/cert-manager.ts';
import type { LocalWorkload } from './local-workload.ts';

/**
 * One identity object per certificate: hbone checks an identity (leaf parse, SAN, fingerprint) and
 * builds its secure context once per object, so a fresh object per connection would redo that work
 * on every connect.
 */
const identities = new WeakMap<WorkloadCertificate, HboneIdentity>();

export function hboneIdentity(cert: WorkloadCertificate): HboneIdentity {
  let identity = identities.get(cert);
  if (identity === undefined) {
    identity = { id: cert.identity.uri, ...cert.tlsCredentials };
    identities.set(cert, identity);
  }
  return identity;
}

export function podSecureContext(local: LocalWorkload, certificates: CertManager): SecureContextProvider {
  return {
    async identity(signal) {
      const { certificate } = await local.ready(signal);
      return hboneIdentity(certificate);
    },
    onRenewed(listener) {
      const onRenewed = (event: { identity: { uri: string }; certificate: WorkloadCertificate }): void => {
        if (event.identity.uri === local.current()?.identity) listener(hboneIdentity(event.certificate));
      };
      certificates.cache.on('renewed', onRenewed);
      return () => {
        certificates.cache.off('renewed', onRenewed);
      };
    },
  };
}
