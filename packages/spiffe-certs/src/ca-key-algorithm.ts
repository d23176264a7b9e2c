/**
 * The key algorithms a CA can sign with. Kept apart from certificate-signer.ts so that the
 * published declarations never reach the X.509 toolkit's types (see x509-provider.ts).
 */
export const CA_KEY_ALGORITHMS = ['rsa-2048', 'ecdsa-p256'] as const;
export type CaKeyAlgorithm = (typeof CA_KEY_ALGORITHMS)[number];
