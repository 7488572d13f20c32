export {
  embeddedPublicGoodRoot,
  loadTrustedRootFile,
  overrideTrustedRoot,
  type TrustOverrides,
  parseTrustedRoot,
  trustMaterial,
  TrustedRootError,
} from './trusted-root.ts';
export { SigstoreTrust, type SigstoreTrustOptions } from './source.ts';
export {
  configureSigstore,
  TufRefresher,
  REFRESH_INTERVAL_MS,
  type ConfiguredSigstore,
  type TufRefreshOptions,
} from './tuf.ts';
