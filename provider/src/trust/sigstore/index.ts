export {
  embeddedPublicGoodRoot,
  loadTrustedRootFile,
  parseTrustedRoot,
  trustMaterial,
  TrustedRootError,
} from './trusted-root.ts';
export { SigstoreTrust, type SigstoreTrustOptions } from './source.ts';
