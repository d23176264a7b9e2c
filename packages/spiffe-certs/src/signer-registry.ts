/**
 * The signing key material behind each CertificateAuthority, kept out of the public surface: the
 * CA and the `testing` entry reach it here. Nothing the package index exports refers to `Signer`,
 * so consumers' declaration checks never load the X.509 toolkit's types.
 */
import type { Signer } from './certificate-signer.ts';

const SIGNERS = new WeakMap<object, Signer>();

export function registerSigner(owner: object, signer: Signer): void {
  SIGNERS.set(owner, signer);
}

/** Internal (not exported from the package index): the signer behind a CA. */
export function signerOf(owner: object): Signer {
  const signer = SIGNERS.get(owner);
  if (signer === undefined) throw new Error('BUG: no signer registered for this certificate authority');
  return signer;
}
