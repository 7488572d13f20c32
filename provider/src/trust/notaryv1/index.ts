/** Notary v1 (Docker Content Trust): the server client and the TUF chain verification. */
export { NotaryClient, notaryBaseUrl, type NotaryClientOptions, type NotaryCredentials } from './client.ts';
export { canonicalJson } from './canonical.ts';
export { parseTrustRootKey, parseTufKey, spki, tufKeyId, verifySignature, type TufKey } from './keys.ts';
export { signedDigest } from './select.ts';
export { VersionMemory } from './versions.ts';
export {
  RELEASES_ROLE,
  verifyTrustData,
  type MetadataSource,
  type PinnedKey,
  type TrustDataRequest,
  type TrustedRepository,
} from './verify.ts';
