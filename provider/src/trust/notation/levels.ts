/**
 * Notary Project verification levels (trust-store-trust-policy.md, "signatureVerification"), apart from
 * the verifier so that reading a trust policy does not load the envelope, timestamp and X.509 code.
 */
export type Validation = 'integrity' | 'authenticity' | 'authenticTimestamp' | 'expiry' | 'revocation';
export type Action = 'enforce' | 'log' | 'skip';
export type VerificationLevel = 'strict' | 'permissive' | 'audit' | 'skip';

/** trust-store-trust-policy.md, the table under "signatureVerification". */
export const LEVEL_ACTIONS: Readonly<Record<VerificationLevel, Readonly<Record<Validation, Action>>>> = {
  strict: {
    integrity: 'enforce',
    authenticity: 'enforce',
    authenticTimestamp: 'enforce',
    expiry: 'enforce',
    revocation: 'enforce',
  },
  permissive: {
    integrity: 'enforce',
    authenticity: 'enforce',
    authenticTimestamp: 'log',
    expiry: 'log',
    revocation: 'log',
  },
  audit: {
    integrity: 'enforce',
    authenticity: 'log',
    authenticTimestamp: 'log',
    expiry: 'log',
    revocation: 'log',
  },
  skip: {
    integrity: 'skip',
    authenticity: 'skip',
    authenticTimestamp: 'skip',
    expiry: 'skip',
    revocation: 'skip',
  },
};
