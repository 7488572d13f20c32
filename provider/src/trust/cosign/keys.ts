/**
 * Public keys of cosign trust roots (`trustRoots[].key`), PEM SubjectPublicKeyInfo, verified with node's
 * crypto. The algorithms are those sigstore's `signature.LoadVerifier` accepts for cosign keys:
 * - ECDSA P-256 / P-384 / P-521, ASN.1 DER signatures over the curve's hash (SHA-256 / 384 / 512);
 *   SHA-256 is accepted on every curve because cosign's legacy signer hashed with SHA-256 throughout.
 * - RSA with PKCS#1 v1.5 or PSS padding over SHA-256 (an `RSASSA-PSS` key accepts only PSS).
 * - Ed25519, pure or Ed25519ph (RFC 8032), the latter being what cosign v3 signs with for Ed25519 keys.
 */
import { constants, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { verifyEd25519ph } from './ed25519ph.ts';

export type KeyAlgorithm = 'ecdsa-p256' | 'ecdsa-p384' | 'ecdsa-p521' | 'rsa' | 'rsa-pss' | 'ed25519';

export interface CosignPublicKey {
  readonly algorithm: KeyAlgorithm;
  readonly key: KeyObject;
  /** Whether `signature` is this key's signature over exactly `data`. Never throws. */
  verify(data: Buffer, signature: Buffer): boolean;
}

const CURVE_HASH = { prime256v1: 'sha256', secp384r1: 'sha384', secp521r1: 'sha512' } as const;
const CURVE_ALGORITHM = {
  prime256v1: 'ecdsa-p256',
  secp384r1: 'ecdsa-p384',
  secp521r1: 'ecdsa-p521',
} as const;

export class KeyFormatError extends Error {
  override readonly name = 'KeyFormatError';
}

/** Parses one PEM public key; refuses private keys, certificates and unsupported algorithms. */
export function parsePublicKey(pem: string): CosignPublicKey {
  const text = pem.trim();
  if (!text.startsWith('-----BEGIN PUBLIC KEY-----')) {
    throw new KeyFormatError(
      'expected a PEM public key ("-----BEGIN PUBLIC KEY-----"); KMS references are not supported',
    );
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: text, format: 'pem' });
  } catch (err) {
    throw new KeyFormatError(`not a valid PEM public key: ${(err as Error).message}`);
  }
  return fromKeyObject(key);
}

export function fromKeyObject(key: KeyObject): CosignPublicKey {
  const type = key.asymmetricKeyType;
  switch (type) {
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve ?? '';
      if (!(curve in CURVE_HASH)) throw new KeyFormatError(`unsupported ECDSA curve ${curve || 'unknown'}`);
      const c = curve as keyof typeof CURVE_HASH;
      const hashes = [...new Set([CURVE_HASH[c], 'sha256'])];
      return keyWith(CURVE_ALGORITHM[c], key, (data, sig) =>
        hashes.some((h) => safeVerify(h, data, key, sig)),
      );
    }
    case 'rsa':
      return keyWith(
        'rsa',
        key,
        (data, sig) => safeVerify('sha256', data, key, sig) || verifyPss(data, key, sig),
      );
    case 'rsa-pss':
      return keyWith('rsa-pss', key, (data, sig) => verifyPss(data, key, sig));
    case 'ed25519': {
      // The raw 32-byte key is the tail of its 44-byte SubjectPublicKeyInfo (RFC 8410).
      const raw = key.export({ type: 'spki', format: 'der' }).subarray(-32);
      return keyWith(
        'ed25519',
        key,
        (data, sig) => safeVerify(null, data, key, sig) || verifyEd25519ph(raw, data, sig),
      );
    }
    case 'dsa':
    case 'ed448':
    case 'x25519':
    case 'x448':
    case undefined:
      throw new KeyFormatError(
        `unsupported key type ${type ?? 'unknown'}: expected ECDSA (P-256/384/521), RSA or Ed25519`,
      );
  }
}

function keyWith(
  algorithm: KeyAlgorithm,
  key: KeyObject,
  check: (data: Buffer, signature: Buffer) => boolean,
): CosignPublicKey {
  return { algorithm, key, verify: check };
}

function verifyPss(data: Buffer, key: KeyObject, signature: Buffer): boolean {
  return safeVerify(
    'sha256',
    data,
    { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO },
    signature,
  );
}

function safeVerify(
  hash: string | null,
  data: Buffer,
  key: KeyObject | { key: KeyObject; padding: number; saltLength: number },
  signature: Buffer,
): boolean {
  try {
    return verify(hash, data, key, signature);
  } catch {
    // Malformed signatures (wrong length, bad DER) are simply not valid signatures.
    return false;
  }
}
