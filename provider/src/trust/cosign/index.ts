export {
  fromKeyObject,
  KeyFormatError,
  parsePublicKey,
  type CosignPublicKey,
  type KeyAlgorithm,
} from './keys.ts';
