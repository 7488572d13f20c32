export {
  fromKeyObject,
  KeyFormatError,
  parsePublicKey,
  type CosignPublicKey,
  type KeyAlgorithm,
} from './keys.ts';
export { compileIdentityPattern, IdentityPatternError, type IdentityPattern } from './identity-pattern.ts';
