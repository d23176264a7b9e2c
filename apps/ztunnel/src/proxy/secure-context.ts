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
  /** The identity served, once known; until then the pod's WDS identity. */
  let served: string | undefined;
  return {
    async identity(signal) {
      const { certificate } = await local.ready(signal);
      served = certificate.identity.uri;
      return hboneIdentity(certificate);
    },
    onRenewed(listener) {
      // A renewal, and also a new certificate after the previous one expired (the cache calls
      // that `issued`): either way the server must present it. The pod's identity is compared
      // with the one served, not looked up in WDS at that moment, so a workload update that is
      // in flight cannot make the server miss a certificate.
      const forward = (event: { identity: { uri: string }; certificate: WorkloadCertificate }): void => {
        if (event.identity.uri === (served ?? local.current()?.identity)) {
          listener(hboneIdentity(event.certificate));
        }
      };
      certificates.cache.on('renewed', forward);
      certificates.cache.on('issued', forward);
      return () => {
        certificates.cache.off('renewed', forward);
        certificates.cache.off('issued', forward);
      };
    },
  };
}
