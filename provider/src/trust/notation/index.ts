export { LEVEL_ACTIONS, verifySignature } from './verify.ts';
export type {
  Action,
  Failure,
  PolicyOptions,
  SignatureOutcome,
  TrustedCertificate,
  Validation,
  VerificationLevel,
} from './verify.ts';
export { COSE_MEDIA_TYPE, JWS_MEDIA_TYPE, SIGNATURE_ARTIFACT_TYPE } from './envelope.ts';
export { parseCertificates } from './trust-roots.ts';
export type { RevocationFetch } from './revocation.ts';
export {
  identityTrusted,
  InvalidTrustPolicy,
  parseTrustPolicies,
  policyFor,
  type TrustPolicy,
} from './trust-policy.ts';
